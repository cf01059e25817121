"""Training, preprocessing, checkpoints and prediction for the desktop image classifier.

A plain library: no Qt, no work at import time. Heavy modules (Keras) are imported inside the
functions that need them so that importing this package stays cheap.
"""

__version__ = "0.2.0"  # the app's version (Help > About, the packaged archive's name); = pyproject
