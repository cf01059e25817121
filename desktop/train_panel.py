"""The Train tab: pick data, read its check, choose settings, then watch the run learn.

The panel composes the data check, the settings form, the augmentation preview and the run
side (:mod:`desktop.run_view`: live chart, progress, buttons), and turns clicks into calls on a
:class:`TrainController`; it never trains or reads data itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QVBoxLayout, QWidget

from training.batches import augment
from training.recipes import (ARCHITECTURE_FIELDS, REFERENCE_SPEED, TrainConfig,
                              expected_seconds, speed_key)

from .data_check_view import PREVIEW_COUNT, AugmentPreview, DataCheckView
from .run_view import RunView
from .stored import stored
from .styling import hand_over
from .train_settings import TrainSettingsForm
from .trainer import TrainController


# A run's speed is remembered for later estimates only when it ran this long: in a shorter one,
# starting up (building, tracing) is most of the time and would make every estimate far too long.
MIN_MEASURED_S = 60.0


def format_minutes(seconds: float) -> str:
    """"about 5 min", "about 2 h 05 min", or "under a minute"."""
    if seconds < 30:
        return "under a minute"
    minutes = max(int(round(seconds / 60)), 1)
    return f"about {minutes} min" if minutes < 90 else f"about {minutes // 60} h {minutes % 60:02d} min"


class TrainPanel(QWidget):
    """Data check, settings, augmentation preview, live chart, progress and Start/Pause/Stop."""

    checkpoint_trained = Signal(object)  # TrainResult: the window offers it as the active one

    def __init__(self, controller: TrainController, settings: QSettings, active_checkpoint,
                 parent=None) -> None:
        """``active_checkpoint()`` returns (path, CheckpointInfo or None) of the model in use."""
        super().__init__(parent)
        self.controller, self.settings = controller, settings
        self.active_checkpoint = active_checkpoint
        self._preview_index = np.zeros(0, int)
        self._keys_back_to_start = False  # Start re-reads the data: the keyboard comes back after
        self.data_view = DataCheckView()
        self.data_view.path_edit.setText(stored(settings, "train/data_path", ""))
        self.form = TrainSettingsForm(settings)
        self.preview = AugmentPreview()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        for box in (self.data_view, self.form, self.preview):
            left_layout.addWidget(box)
        left_layout.addStretch(1)
        # not a Tab stop: focus on the area itself showed nothing and no key did anything there
        scroll = QScrollArea(widgetResizable=True, focusPolicy=Qt.FocusPolicy.NoFocus)
        scroll.setWidget(left)
        scroll.setMinimumWidth(420)
        scroll.setMaximumWidth(470)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        self.run_view = RunView(controller)
        layout.addWidget(self.run_view, 1)
        view = self.run_view  # what tests and the window reach through the panel
        self.chart, self.progress, self.rate_label = view.chart, view.progress, view.rate_label
        self.estimate_label, self.result_label = view.estimate_label, view.result_label
        self.start_button, self.pause_button = view.start_button, view.pause_button
        self.stop_button = view.stop_button
        self._connect()
        self._set_running(False)

    def _connect(self) -> None:
        c = self.controller
        self.data_view.check_requested.connect(self.check_data)
        self.form.start_changed.connect(self._update_transfer_note)
        self.form.augment_changed.connect(self.refresh_preview)
        for changed in (self.form.start_changed, self.form.val_fraction_changed,
                        self.form.epochs.valueChanged, self.form.batch_size.valueChanged):
            changed.connect(self.update_estimate)
        self.form.val_fraction_changed.connect(self.show_split)
        self.preview.shuffle_button.clicked.connect(self.refresh_preview)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        c.data_loading.connect(self.data_view.show_loading)
        c.data_checked.connect(self._on_data_checked)
        c.data_failed.connect(self._on_data_failed)
        c.run_finished.connect(self._on_finished)  # after the run view's own slots
        c.running_changed.connect(self._set_running)

    # -- data ------------------------------------------------------------------------------------
    def set_data_path(self, path: str | Path) -> None:
        if self.controller.running():  # the run keeps its data; the box keeps showing it
            self.result_label.setText(f"A run is going: {Path(path).name} can be checked "
                                      "when it ends.")
            return
        self.data_view.set_path(path)

    def check_data(self, path: str | None = None) -> None:
        path = path or self.data_view.path()
        if self.controller.running():
            return
        if not path:  # Check pressed with nothing to check: nothing stays ready, say what it needs
            self.forget_checked_data()
            self._update_transfer_note()
            self.data_view.show_idle("Nothing to check yet: choose the data with Archive… or "
                                     "Folder…, or type its path above.")
            return
        self.settings.setValue("train/data_path", path)
        self.data_view.clear()
        self.form.n_images = None
        self._update_transfer_note()  # nothing said about the data checked before stays
        self.update_estimate()
        hand_over([self.start_button], [self.data_view.check_button])  # (the keyboard too)
        from training.splits import split_rule
        # the draws under the model in use's split seed too: a fine-tune of it may keep its split
        _, info = self.active_checkpoint()
        theirs = split_rule(info) if info is not None else None
        self.controller.check(path, self.needed_policy(), self.form.val_fraction.value(),
                              self.form.config().seed,
                              (theirs["seed"],) if theirs and theirs["by_content"] else ())

    def forget_checked_data(self) -> None:
        """Another run's data takes the box (a resume): what was checked before is not offered
        to Start; to train on the box's data after that run, Check reads it."""
        if self.controller.check_job is not None:
            self.controller.check_job.cancel()
            self.controller.check_job = None
        self.controller.data, self.controller.data_path = None, ""
        self.data_view.clear()
        self.data_view.show_idle("Not checked: a resumed run reads its own data; Check reads "
                                 "this box's data after it.")
        self.form.n_images = None
        self.estimate_label.clear()
        self.start_button.setEnabled(False)

    def model_changed(self) -> None:
        """The model in use changed (on any tab): what 'start from it' says and costs follows."""
        self._update_transfer_note()
        self.update_estimate()

    def needed_policy(self):
        """How the data must be decoded for the run the form describes: as the model in use
        reads images when fine-tuning it, the default 32x32 policy for a new network."""
        from training.preprocessing import Preprocessing
        _, info = self.active_checkpoint()
        if self.form.start_mode() == "active" and info is not None:
            return info.preprocessing
        return Preprocessing()

    def _on_data_failed(self, reason: str) -> None:
        self._keys_back_to_start = False
        self.data_view.show_failed(reason)
        self.form.n_images = None
        self._update_transfer_note()
        self.update_estimate()
        self.start_button.setEnabled(False)

    def _on_data_checked(self, data, check) -> None:
        self.form.data_checked(len(data))
        self.data_view.show_check(check, data.source, self.form.val_fraction.value())
        rng = np.random.default_rng(0)
        self._preview_index = rng.choice(len(data), min(PREVIEW_COUNT, len(data)), replace=False)
        self.refresh_preview()
        self._update_transfer_note()
        self.update_estimate()
        self.start_button.setEnabled(not self.controller.running())
        if self._keys_back_to_start and self.data_view.check_button.hasFocus():
            self.start_button.setFocus(Qt.FocusReason.OtherFocusReason)  # Start, read again, ends
        self._keys_back_to_start = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.model_changed()  # the model in use may have changed on another tab

    def _update_transfer_note(self) -> None:
        path, info = self.active_checkpoint()
        name = Path(path).stem  # its file's (the sidecar's may be older: renamed by hand)
        if info is not None:  # name it: "cifar10, the model in use (fine-tune)"
            self.form.start_combo.setItemText(0, f"{name}, the model in use (fine-tune)")
        check = self.data_view.check
        if self.form.start_mode() != "active":
            note = "A new network with random weights."
        elif info is None:
            note = ""
        else:
            note = f"Starts from {name}."
            if check is not None and tuple(check.class_names) != tuple(info.class_names):
                note += (f" Your {len(check.class_names)} classes differ from its "
                         f"{len(info.class_names)}: a new final layer is trained on its learned "
                         "features (transfer learning).")
        self.form.transfer_note.setText(note)
        self.show_split()

    def show_split(self, *_) -> None:
        """The data check's split line and warnings for the split Start would use now:
        :func:`training.lineage.split_rule_for`'s, as the run derives it (a fine-tune keeps the
        split of the model in use: on its own data that very split, on other data its seed and
        at most its share). Where the run reads the images otherwise than the check did
        (Start reads them again first), the data's own split at the share, said to be "about"."""
        from training.lineage import split_rule_for
        check = self.data_view.check
        if check is None:
            return
        config = self.form.config()
        if self.controller.data_policy != self.needed_policy():
            self.data_view.show_split(config.val_fraction, None, read_alike=False)
            return
        _, info = self.active_checkpoint()
        parent = info if self.form.start_mode() == "active" else None
        rule = split_rule_for(config, parent, check.fingerprint, None, config.teachers)
        self.data_view.show_split(config.val_fraction, rule)

    def run_config(self) -> TrainConfig:
        """The form's config with the network a run would really train: the active
        checkpoint's when starting from it."""
        config = self.form.config()
        _, info = self.active_checkpoint()
        if self.form.start_mode() == "active" and info is not None:
            try:
                config = TrainConfig.from_dict({**config.to_dict(), **{
                    k: v for k, v in info.config.items() if k in ARCHITECTURE_FIELDS}})
            except ValueError:  # an imported sidecar's odd record: estimated as the form says
                pass
        return config

    def update_estimate(self) -> None:
        """Expected wall time of a run with these settings on the checked data: at this
        computer's speed measured by its last finished run of the same network, else at the
        reference machine's."""
        if self.form.n_images is None:
            self.estimate_label.clear()
            return
        config = self.run_config()
        key = speed_key(config)
        measured = stored(self.settings, f"train/speed/{key}", 0.0)
        if measured > 0:
            rate, source = measured, "this computer's last run of this network"
        elif REFERENCE_SPEED.get(key):
            rate, source = REFERENCE_SPEED[key], "measured on the reference 2-core CPU"
        else:
            self.estimate_label.setText("Expected time: known after the first batches (no run of "
                                        "this network measured on this computer yet).")
            return
        seconds = expected_seconds(config, self.form.n_images, rate)
        self.estimate_label.setText(f"Expected time: {format_minutes(seconds)} "
                                    f"({config.epochs} epochs at {rate:,.0f} training images/s, "
                                    f"{source}).")

    def refresh_preview(self) -> None:
        data = self.controller.data
        if data is None or not len(self._preview_index):
            self.preview.show_images(np.zeros((0, 32, 32, 3), np.uint8))
            return
        self.preview.show_images(augment(data.images[self._preview_index], np.random.default_rng(),
                                         self.form.flip.isChecked(), self.form.translate.value()))

    # -- run -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.controller.data is None or self.controller.running():
            return
        if self.controller.data_policy != self.needed_policy():
            # "Start from" (or the model in use) changed since the check, and with it how
            # images are read: read the data again that way first
            self.check_data()
            self._keys_back_to_start = self.data_view.check_button.hasFocus()
            self.result_label.setText("The data is read again as the chosen start reads images "
                                      "(its size or resizing differs); press Start when the "
                                      "check is done.")
            return
        path, _ = self.active_checkpoint()
        parent = str(path) if self.form.start_mode() == "active" else None
        self.controller.start(self.form.config(), parent, self.form.fine_tune())

    def stop(self) -> None:
        self.controller.stop()
        self.rate_label.setText("Stopping at the next batch…")

    def _toggle_pause(self) -> None:
        if self.controller.paused():
            self.controller.unpause()
        else:
            self.controller.pause()

    def _on_finished(self, result) -> None:
        self.run_view.show_finished(result)
        info = result.info
        wall, epochs = info.config.get("wall_time_s"), info.config.get("epochs_run")
        if (info.config.get("stopped") in (None, "early") and epochs  # whole epochs
                and (wall or 0) >= MIN_MEASURED_S
                and info.config.get("fine_tune", "full") == "full"):  # head-only runs are faster
            rate = info.metrics.get("train_images", 0) * epochs / wall  # start-up, validation, saves in
            self.settings.setValue(f"train/speed/{speed_key(TrainConfig.from_dict(info.config))}", rate)
            self.update_estimate()
        self.checkpoint_trained.emit(result)

    def _set_running(self, running: bool) -> None:
        """Start, or Pause and Stop, become pressable; the keyboard stays on the buttons."""
        self.data_view.set_running(running)
        self.form.set_running(running)
        if running:  # the keyboard stays on the run's buttons: Start -> Pause -> Start
            hand_over([self.start_button], [self.pause_button, self.stop_button])
        else:
            ready = self.controller.data is not None
            if not ready:
                self.start_button.setEnabled(False)  # until data is checked
            # the keyboard goes to Start, or to Check where Start waits for it (not the tab bar)
            hand_over([self.pause_button, self.stop_button],
                      [self.start_button if ready else self.data_view.check_button])
            self.pause_button.setText("Pause")
