"""The Train panel: pick data, read its check, choose settings, then watch the run learn.

The panel turns clicks into calls on a :class:`TrainController` and shows what it reports; it
never trains or reads data itself. Settings are remembered per starting point (QSettings).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea,
                               QSizePolicy, QSpinBox, QTableView, QVBoxLayout, QWidget)

from training.batches import augment
from training.train import RECIPES, TrainConfig, fit_to_data

from .items import to_qimage
from .train_chart import TrainingChart
from .trainer import TrainController

PREVIEW_COUNT, PREVIEW_SCALE = 10, 2
STARTS = (("active", "The active checkpoint (fine-tune)"), ("scratch", "Scratch (a new network)"))
RECIPE_FOR = {"active": "fine-tune", "scratch": "fast"}


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "estimating time left"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"


class TrainPanel(QWidget):
    """Data check, settings, augmentation preview, live chart, progress and Start/Pause/Stop."""

    checkpoint_trained = Signal(object)  # TrainResult: the window offers it as the active one

    def __init__(self, controller: TrainController, settings: QSettings, active_checkpoint,
                 parent=None) -> None:
        """``active_checkpoint()`` returns (path, CheckpointInfo or None) of the model in use."""
        super().__init__(parent)
        self.controller, self.settings = controller, settings
        self.active_checkpoint = active_checkpoint
        self.recipes = dict(RECIPES)  # tests swap in a tiny network here
        self.check = None
        self._preview_index = np.zeros(0, int)
        self._loading_mode = False
        self._build()
        self._connect()
        self._load_settings(self.start_mode())
        self.path_edit.setText(str(settings.value("train/data_path", "")))
        self._set_running(False)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        # data
        self.path_edit = QLineEdit(placeholderText="CIFAR-10 archive, batches folder or class folders")
        self.path_edit.setAccessibleName("Training data path")
        self.archive_button = QPushButton("Archive…")
        self.folder_button = QPushButton("Folder…")
        self.check_button = QPushButton("Check")
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        for button in (self.archive_button, self.folder_button, self.check_button):
            row.addWidget(button)
        self.data_status = QLabel("Pick the data to train on: the CIFAR-10 archive, the CIFAR-10 "
                                  "python batches folder, or a folder with one subfolder per class.",
                                  wordWrap=True)
        self.counts = QStandardItemModel(0, 2, self)
        self.counts.setHorizontalHeaderLabels(["class", "images"])
        self.counts_view = QTableView()
        self.counts_view.setModel(self.counts)
        self.counts_view.verticalHeader().hide()
        self.counts_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.counts_view.verticalHeader().setDefaultSectionSize(22)
        self.counts_view.setFixedHeight(60)
        self.counts_view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.counts_view.setAccessibleName("Images per class")
        self.warnings = QLabel(wordWrap=True, objectName="warnings")
        self.skipped = QPlainTextEdit(readOnly=True, maximumHeight=70)
        self.skipped.setAccessibleName("Skipped files")
        self.split_label = QLabel(wordWrap=True)
        data_box = QGroupBox("Data")
        data_layout = QVBoxLayout(data_box)
        data_layout.addLayout(row)
        for widget in (self.data_status, self.counts_view, self.warnings, self.skipped,
                       self.split_label):
            data_layout.addWidget(widget)
        # settings
        self.start_combo = QComboBox()
        for key, text in STARTS:
            self.start_combo.addItem(text, key)
        self.layers_combo = QComboBox()
        self.layers_combo.addItem("All layers", "full")
        self.layers_combo.addItem("Only the final layer (fast)", "head")
        self.transfer_note = QLabel(wordWrap=True, objectName="note")
        self.epochs = QSpinBox(minimum=1, maximum=500)
        self.batch_size = QSpinBox(minimum=4, maximum=4096, singleStep=64)
        self.lr = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=2.0, singleStep=0.01)
        self.val_fraction = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.5, singleStep=0.05)
        self.flip = QCheckBox("random horizontal flip")
        self.translate = QSpinBox(minimum=0, maximum=8, suffix=" px")
        self.patience = QSpinBox(minimum=0, maximum=100, specialValueText="off")
        self.defaults_button = QPushButton("Defaults")
        form_box = QGroupBox("Settings")
        form = QFormLayout(form_box)
        form.addRow("Start from", self.start_combo)
        form.addRow("Train", self.layers_combo)
        form.addRow(self.transfer_note)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Validation share", self.val_fraction)
        form.addRow("Augment", self.flip)
        form.addRow("Shift up to", self.translate)
        form.addRow("Early stop after", self.patience)
        form.addRow(self.defaults_button)
        # augmentation preview
        preview_box = QGroupBox("Augmented samples (what training sees)")
        grid = QGridLayout(preview_box)
        self.preview_labels = []
        for i in range(PREVIEW_COUNT):
            label = QLabel(objectName="picture")
            label.setFixedSize(32 * PREVIEW_SCALE + 2, 32 * PREVIEW_SCALE + 2)
            grid.addWidget(label, i // 5, i % 5)
            self.preview_labels.append(label)
        self.shuffle_button = QPushButton("Shuffle")
        grid.addWidget(self.shuffle_button, 2, 0, 1, 5)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        for box in (data_box, form_box, preview_box):
            left_layout.addWidget(box)
        left_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(420)
        scroll.setMaximumWidth(470)
        # run
        self.chart = TrainingChart()
        self.progress = QProgressBar(maximum=1000, textVisible=True)
        self.progress.setAccessibleName("Training progress")
        self.progress.setFormat("")
        self.rate_label = QLabel()
        self.result_label = QLabel(wordWrap=True, objectName="result")
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start training", objectName="primary")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop at the next batch and keep the best epoch so far")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.chart, 1)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.rate_label)
        right_layout.addLayout(buttons)
        right_layout.addWidget(self.result_label)
        right.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(right, 1)

    def _connect(self) -> None:
        c = self.controller
        self.archive_button.clicked.connect(self._browse_archive)
        self.folder_button.clicked.connect(self._browse_folder)
        self.check_button.clicked.connect(self.check_data)
        self.path_edit.returnPressed.connect(self.check_data)
        self.start_combo.currentIndexChanged.connect(self._on_start_changed)
        self.defaults_button.clicked.connect(lambda: self._apply_config(self.default_config()))
        for widget in (self.epochs, self.batch_size, self.translate, self.patience):
            widget.valueChanged.connect(self._save_settings)
        for widget in (self.lr, self.val_fraction):
            widget.valueChanged.connect(self._save_settings)
        self.layers_combo.currentIndexChanged.connect(self._save_settings)
        self.flip.toggled.connect(self._save_settings)
        self.flip.toggled.connect(self.refresh_preview)
        self.translate.valueChanged.connect(self.refresh_preview)
        self.val_fraction.valueChanged.connect(self._update_split)
        self.shuffle_button.clicked.connect(self.refresh_preview)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        c.data_loading.connect(self._on_data_loading)
        c.data_checked.connect(self._on_data_checked)
        c.data_failed.connect(self._on_data_failed)
        c.run_started.connect(self._on_run_started)
        c.batch.connect(self._on_batch)
        c.epoch.connect(self._on_epoch)
        c.resumed.connect(self._on_resumed)
        c.progress.connect(self._on_progress)
        c.paused_changed.connect(self._on_paused)
        c.run_finished.connect(self._on_finished)
        c.run_failed.connect(self._on_failed)
        c.running_changed.connect(self._set_running)

    # -- settings --------------------------------------------------------------------------------
    def start_mode(self) -> str:
        return self.start_combo.currentData()

    def _recipe_config(self) -> TrainConfig:
        return TrainConfig(**self.recipes[RECIPE_FOR[self.start_mode()]])

    def default_config(self) -> TrainConfig:
        """The recipe for the chosen start, scaled to the checked data set's size."""
        config = self._recipe_config()
        if self.controller.data is not None:
            config = replace(config, val_fraction=self.val_fraction.value())
            config = fit_to_data(config, len(self.controller.data))
        return config

    def customised(self) -> bool:
        """Has the user changed a setting for this starting point (then defaults keep off)?"""
        value = self.settings.value(f"train/{self.start_mode()}/custom", False)
        return str(value).lower() == "true"

    def _apply_config(self, config: TrainConfig) -> None:
        """Show ``config`` in the form as this starting point's (uncustomised) defaults."""
        self._loading_mode = True
        self.epochs.setValue(config.epochs)
        self.batch_size.setValue(config.batch_size)
        self.lr.setValue(config.lr)
        self.val_fraction.setValue(config.val_fraction)
        self.flip.setChecked(config.flip)
        self.translate.setValue(config.translate)
        self.patience.setValue(config.patience)
        self._loading_mode = False
        self._save_settings()
        self.settings.setValue(f"train/{self.start_mode()}/custom", False)

    def _load_settings(self, mode: str) -> None:
        d = self._recipe_config()
        s, key = self.settings, f"train/{mode}/"
        self._loading_mode = True
        self.epochs.setValue(int(s.value(key + "epochs", d.epochs)))
        self.batch_size.setValue(int(s.value(key + "batch_size", d.batch_size)))
        self.lr.setValue(float(s.value(key + "lr", d.lr)))
        self.val_fraction.setValue(float(s.value(key + "val_fraction", d.val_fraction)))
        self.flip.setChecked(str(s.value(key + "flip", d.flip)).lower() == "true")
        self.translate.setValue(int(s.value(key + "translate", d.translate)))
        self.patience.setValue(int(s.value(key + "patience", d.patience)))
        self.layers_combo.setCurrentIndex(int(s.value(key + "layers", 0)))
        self._loading_mode = False

    def _save_settings(self) -> None:
        if self._loading_mode:
            return
        s, key = self.settings, f"train/{self.start_mode()}/"
        s.setValue("train/start", self.start_mode())
        for name in ("epochs", "batch_size", "translate", "patience"):
            s.setValue(key + name, getattr(self, name).value())
        s.setValue(key + "lr", self.lr.value())
        s.setValue(key + "val_fraction", self.val_fraction.value())
        s.setValue(key + "flip", self.flip.isChecked())
        s.setValue(key + "layers", self.layers_combo.currentIndex())
        s.setValue(key + "custom", True)

    def _on_start_changed(self) -> None:
        self.settings.setValue("train/start", self.start_mode())
        self._load_settings(self.start_mode())
        if self.controller.data is not None and not self.customised():
            self._apply_config(self.default_config())
        self._update_transfer_note()

    def restore_start(self) -> None:
        index = self.start_combo.findData(self.settings.value("train/start", "active"))
        self.start_combo.setCurrentIndex(max(index, 0))
        self._load_settings(self.start_mode())

    def config(self) -> TrainConfig:
        """The recipe for the chosen start with the form's values on top."""
        return replace(self._recipe_config(), epochs=self.epochs.value(),
                       batch_size=self.batch_size.value(), lr=self.lr.value(),
                       val_fraction=self.val_fraction.value(), flip=self.flip.isChecked(),
                       translate=self.translate.value(), patience=self.patience.value())

    # -- data ------------------------------------------------------------------------------------
    def _browse_archive(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CIFAR-10 archive", self.path_edit.text(),
                                              "Archives (*.tar.gz *.tgz *.tar *.tar.xz);;All files (*)")
        if path:
            self.set_data_path(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Class folders or CIFAR-10 batches folder",
                                                self.path_edit.text())
        if path:
            self.set_data_path(path)

    def set_data_path(self, path: str | Path) -> None:
        self.path_edit.setText(str(path))
        self.check_data()

    def check_data(self) -> None:
        path = self.path_edit.text().strip()
        if not path or self.controller.running():
            return
        self.settings.setValue("train/data_path", path)
        self.check = None
        self.counts.setRowCount(0)
        self.warnings.clear()
        self.skipped.clear()
        self.split_label.clear()
        self.start_button.setEnabled(False)
        _, info = self.active_checkpoint()
        from training.preprocessing import Preprocessing
        policy = info.preprocessing if info is not None else Preprocessing()
        self.controller.check(path, policy, self.val_fraction.value())

    def _on_data_loading(self, text: str) -> None:
        self.data_status.setText(text)
        self.data_status.setProperty("state", "busy")

    def _on_data_failed(self, reason: str) -> None:
        self.data_status.setText(f"Cannot train on this: {reason}")
        self.data_status.setProperty("state", "error")
        self._restyle(self.data_status)
        self.start_button.setEnabled(False)

    def _on_data_checked(self, data, check) -> None:
        self.check = check
        self.data_status.setText(f"{check.total:,} images in {len(check.class_names)} classes "
                                 f"from {Path(data.source).name}")
        self.data_status.setProperty("state", "ok")
        self._restyle(self.data_status)
        self.counts.setRowCount(0)
        for name, count in zip(check.class_names, check.counts):
            count_item = QStandardItem(f"{count:,}")
            count_item.setData(count, Qt.ItemDataRole.UserRole)
            count_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.counts.appendRow([QStandardItem(name), count_item])
        view = self.counts_view
        view.resizeRowsToContents()
        rows = min(self.counts.rowCount(), 8)
        view.setFixedHeight(view.horizontalHeader().height() + 4 +
                            sum(view.rowHeight(r) for r in range(rows)))
        self.warnings.setText("\n".join(f"⚠ {w}" for w in check.warnings))
        self.warnings.setVisible(bool(check.warnings))
        self.skipped.setPlainText("\n".join(f"{name}: {why}" for name, why in check.skipped))
        self.skipped.setVisible(bool(check.skipped))
        if not self.customised():
            self._apply_config(self.default_config())
        self._update_split()
        rng = np.random.default_rng(0)
        self._preview_index = rng.choice(len(data), min(PREVIEW_COUNT, len(data)), replace=False)
        self.refresh_preview()
        self._update_transfer_note()
        self.start_button.setEnabled(not self.controller.running())

    def _update_split(self) -> None:
        if self.check is None:
            return
        from training.data import validation_take
        held = sum(validation_take(c, self.val_fraction.value()) for c in self.check.counts)
        self.split_label.setText(f"Split: {self.check.total - held:,} for training, {held:,} held "
                                 "out for validation (stratified by class)")

    def _update_transfer_note(self) -> None:
        fine_tune = self.start_mode() == "active"
        self.layers_combo.setEnabled(fine_tune and not self.controller.running())
        path, info = self.active_checkpoint()
        if not fine_tune or info is None:
            self.transfer_note.setText("A new network with random weights." if not fine_tune else "")
            return
        note = f"Starts from {info.name or Path(path).stem}."
        if self.check is not None and tuple(self.check.class_names) != tuple(info.class_names):
            note += (f" Your {len(self.check.class_names)} classes differ from its "
                     f"{len(info.class_names)}: a new final layer is trained on its learned "
                     "features (transfer learning).")
        self.transfer_note.setText(note)

    def refresh_preview(self) -> None:
        data = self.controller.data
        if data is None or not len(self._preview_index):
            for label in self.preview_labels:
                label.clear()
            return
        sample = data.images[self._preview_index]
        shown = augment(sample, np.random.default_rng(), self.flip.isChecked(),
                        self.translate.value())
        size = 32 * PREVIEW_SCALE
        for label, image in zip(self.preview_labels, shown):
            pixmap = QPixmap.fromImage(to_qimage(np.ascontiguousarray(image)))
            label.setPixmap(pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))
        for label in self.preview_labels[len(shown):]:
            label.clear()

    # -- run -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.controller.data is None or self.controller.running():
            return
        path, _ = self.active_checkpoint()
        parent = str(path) if self.start_mode() == "active" else None
        fine_tune = self.layers_combo.currentData() if parent else "full"
        self.controller.start(self.config(), parent, fine_tune)

    def stop(self) -> None:
        self.controller.stop()
        self.rate_label.setText("Stopping at the next batch…")

    def _toggle_pause(self) -> None:
        if self.controller.paused():
            self.controller.unpause()
        else:
            self.controller.pause()

    def _on_run_started(self, record) -> None:
        self.result_label.clear()
        self.chart.start(int(record.config.get("epochs", 1)))
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        self.rate_label.setText(f"Training on {Path(record.data).name}…")

    def _on_resumed(self, payload) -> None:
        self.chart.add_history(payload["history"])
        self.progress.setValue(int(1000 * payload["epoch"] / payload["epochs"]))
        self.progress.setFormat(f"Resumed after epoch {payload['epoch']}/{payload['epochs']}")

    def _on_batch(self, p: dict) -> None:
        self.chart.add_batch(p["step"], p["steps"], p["loss"])
        self._last_batch = p
        if not self.controller.paused():
            self.progress.setFormat(f"Epoch {p['epoch']}/{p['epochs']} · batch {p['batch']}/{p['steps']}")
            self.rate_label.setText(f"{p['images_per_s']:,.0f} images/s · {format_duration(p['eta_s'])}")

    def _on_epoch(self, p: dict) -> None:
        self.chart.add_epoch(p["epoch"], p.get("val_loss"), p.get("val_accuracy"))

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
        if message.startswith("epoch "):
            self.result_label.setText(message)

    def _on_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self.progress.setFormat("Paused · " + self.progress.format())
            self.rate_label.setText("Paused: the run waits at the next batch. Resume to continue.")

    def _on_finished(self, result) -> None:
        self.chart.stop()
        info = result.info
        acc = info.metrics.get("val_accuracy_tta", info.metrics.get("val_accuracy"))
        how = {"user": "stopped by you", "nan": "stopped: the loss diverged (NaN)",
               "early": "stopped early: validation accuracy stopped improving"}.get(
            info.config.get("stopped"), "finished")
        acc_text = f"validation accuracy {acc:.1%}, " if acc is not None else ""
        self.progress.setValue(1000 if how == "finished" else self.progress.value())
        self.progress.setFormat(how.capitalize())
        self.rate_label.setText(f"{info.config.get('epochs_run', 0)} epochs in "
                                f"{info.config.get('wall_time_s', 0):.0f} s")
        self.result_label.setText(f"Saved {result.checkpoint.name}: {acc_text}best epoch "
                                  f"{info.metrics.get('best_epoch')}; {how}.")
        self.checkpoint_trained.emit(result)

    def _on_failed(self, reason: str) -> None:
        self.chart.stop()
        self.progress.setFormat("Not finished")
        self.rate_label.clear()
        self.result_label.setText(f"Training stopped: {reason}")

    def _set_running(self, running: bool) -> None:
        for widget in (self.path_edit, self.archive_button, self.folder_button, self.check_button,
                       self.start_combo, self.epochs, self.batch_size, self.lr, self.val_fraction,
                       self.flip, self.translate, self.patience, self.defaults_button):
            widget.setEnabled(not running)
        self.layers_combo.setEnabled(not running and self.start_mode() == "active")
        self.start_button.setEnabled(not running and self.controller.data is not None)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    @staticmethod
    def _restyle(widget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)
