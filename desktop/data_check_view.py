"""What the Train tab shows about a data set before training: the check, and augmented samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QFileDialog, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QTableView,
                               QVBoxLayout)

from .pixels import fitted_pixmap
from .styling import set_state

PREVIEW_COUNT, PREVIEW_SCALE = 10, 2


class DataCheckView(QGroupBox):
    """A data path with Archive/Folder/Check, then the check's counts, warnings and split."""

    check_requested = Signal(str)  # the path to read and check

    def __init__(self, parent=None) -> None:
        super().__init__("Data", parent)
        self.check = None  # the last DataCheck shown
        self.path_edit = QLineEdit(placeholderText="CIFAR-10 archive, batches folder or class folders")
        self.path_edit.setAccessibleName("Training data path")
        self.archive_button = QPushButton("Archive…")
        self.folder_button = QPushButton("Folder…")
        self.check_button = QPushButton("Check")
        self.path_edit.textChanged.connect(self.path_edit.setToolTip)  # the whole path, always
        row = QHBoxLayout()  # the path gets the panel's full width; its buttons go below it
        for button in (self.archive_button, self.folder_button, self.check_button):
            row.addWidget(button)
        row.addStretch(1)
        self.status = QLabel("Pick the data to train on: the CIFAR-10 archive, the CIFAR-10 "
                             "python batches folder, or a folder with one subfolder per class.",
                             wordWrap=True)
        self.counts = QStandardItemModel(0, 2, self)
        self.counts.setHorizontalHeaderLabels(["class", "images"])
        self.counts_view = QTableView(tabKeyNavigation=False)
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
        self.skipped_label = QLabel("Skipped files:")
        layout = QVBoxLayout(self)
        layout.addWidget(self.path_edit)
        layout.addLayout(row)
        for widget in (self.status, self.counts_view, self.warnings, self.skipped_label,
                       self.skipped, self.split_label):
            layout.addWidget(widget)
        for widget in (self.counts_view, self.warnings, self.skipped_label, self.skipped):
            widget.hide()  # shown by a check; before it the status line says what to pick
        self.archive_button.clicked.connect(self._browse_archive)
        self.folder_button.clicked.connect(self._browse_folder)
        self.check_button.clicked.connect(self.request_check)
        self.path_edit.returnPressed.connect(self.request_check)

    def path(self) -> str:
        return self.path_edit.text().strip()

    def set_path(self, path: str | Path) -> None:
        self.path_edit.setText(str(path))
        self.request_check()

    def request_check(self) -> None:
        self.check_requested.emit(self.path())  # an empty box is answered with what to do

    def _browse_archive(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CIFAR-10 archive", self.path(),
                                              "Archives (*.tar.gz *.tgz *.tar *.tar.xz);;All files (*)")
        if path:
            self.set_path(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Class folders or CIFAR-10 batches folder",
                                                self.path())
        if path:
            self.set_path(path)

    # -- showing a check ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.check = None
        self.counts.setRowCount(0)
        for widget in (self.warnings, self.skipped, self.split_label):
            widget.clear()
        for widget in (self.counts_view, self.warnings, self.skipped_label, self.skipped):
            widget.hide()

    def show_idle(self, text: str) -> None:
        self._set_status(text, "")

    def show_loading(self, text: str) -> None:
        self._set_status(text, "busy")

    def show_failed(self, reason: str) -> None:
        self._set_status(f"Cannot train on this: {reason}", "error")

    def show_check(self, check, source: str, val_fraction: float) -> None:
        self.check = check
        self._set_status(f"{check.total:,} images in {len(check.class_names)} classes "
                         f"from {Path(source).name}", "ok")
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
        self.skipped.setPlainText("\n".join(f"{name}: {why}" for name, why in check.skipped))
        self.skipped.setVisible(bool(check.skipped))
        self.skipped_label.setVisible(bool(check.skipped))
        self.counts_view.show()
        self.show_split(val_fraction)

    def show_split(self, val_fraction: float, rule: dict | None = None,
                   read_alike: bool = True) -> None:
        """The split a run will use and the classes it leaves without validation images:
        ``rule`` (split's arguments, as training.lineage.split_rule_for derives them: a
        fine-tune keeps its parent's split), else the data's own split at ``val_fraction``;
        ``read_alike``: the run reads the images as the check did. Counted from what the
        check hashed (numpy: no image is read or hashed on the GUI thread)."""
        check = self.check
        if check is None:
            return
        rule = rule or {"fraction": val_fraction, "seed": check.seed}
        held, exact = check.split_at(rule)
        # "about" only where the count cannot be known before the run: the run reads the images
        # otherwise than the check did (another start's image size: Start reads them again
        # first), or it splits by the draws of a seed the check did not hash (the model in use
        # was changed since to one whose split has another seed: Check counts it)
        exact = exact and read_alike
        held_out = sum(held)
        self.split_label.setText(f"Split: {check.total - held_out:,} for training, "
                                 f"{'' if exact else 'about '}{held_out:,} held out for "
                                 "validation (a share of each class; an image keeps its side "
                                 "when images are added)")
        # the split's own warning follows the split the run will use, not the one checked with
        warnings = check.warnings_for(held, rule["fraction"])
        self.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings.setVisible(bool(warnings))

    def set_running(self, running: bool) -> None:
        for widget in (self.path_edit, self.archive_button, self.folder_button, self.check_button):
            widget.setEnabled(not running)

    def _set_status(self, text: str, state: str) -> None:
        self.status.setText(text)
        set_state(self.status, state)


class AugmentPreview(QGroupBox):
    """A grid of augmented samples, enlarged with crisp pixels: what training sees."""

    def __init__(self, parent=None) -> None:
        super().__init__("Augmented samples (what training sees)", parent)
        self.images = np.zeros((0, 32, 32, 3), np.uint8)  # the samples shown
        grid = QGridLayout(self)
        self.labels = []
        for i in range(PREVIEW_COUNT):
            label = QLabel(objectName="picture")
            label.setFixedSize(32 * PREVIEW_SCALE + 2, 32 * PREVIEW_SCALE + 2)
            grid.addWidget(label, i // 5, i % 5)
            self.labels.append(label)
        self.shuffle_button = QPushButton("Shuffle")
        grid.addWidget(self.shuffle_button, 2, 0, 1, 5)

    def show_images(self, images: np.ndarray) -> None:
        """``images``: uint8 (N, H, W, 3), N up to PREVIEW_COUNT; the rest of the grid is cleared."""
        self.images = images
        for i, label in enumerate(self.labels):
            if i >= len(images):
                label.clear()
                continue
            label.setPixmap(fitted_pixmap(images[i], images.shape[1] * PREVIEW_SCALE,
                                          label.devicePixelRatioF()))

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:  # moved to a screen of another
            self.show_images(self.images)  # scale: the samples made again for its pixels
        return super().event(event)
