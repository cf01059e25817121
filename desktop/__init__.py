"""The Qt face of the classifier: turns Qt events into meaningful signals and calls `training/`."""
