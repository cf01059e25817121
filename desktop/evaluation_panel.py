"""The Evaluate tab: a checkpoint on labelled data, in the background with progress and cancel.

Shows accuracy, mean confidence, per-class precision/recall/F1 and a confusion-matrix heat map;
clicking a cell opens a gallery of exactly the images with that true and predicted class. The
result is stored with the checkpoint (sidecar) and can be saved as JSON or CSV.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QSplitter, QTableView,
                               QTabWidget, QVBoxLayout, QWidget)

from training.paths import user_cache_dir

from .evaluation_views import ConfusionModel, PerClassModel, ReliabilityChart
from .jobs import Job, JobLane
from .stored import stored
from .styling import hand_over, set_state

PARTS = (("test", "Test images (CIFAR-10 archive or class folders)"),
         ("validation", "Its validation split (pick its training data)"))


class EvaluationPanel(QWidget):
    """Choose data, evaluate the chosen checkpoint, read and explore the result."""

    evaluated = Signal(object)  # the stored record (dict)
    message = Signal(str)

    def __init__(self, lane: JobLane, settings: QSettings, parent=None) -> None:
        super().__init__(parent)
        self.lane, self.settings = lane, settings
        self.checkpoint: Path | None = None  # the one chosen in the picker
        self.fallback = lambda: None  # the one to choose when the chosen one is gone (in use)
        self._running: Path | None = None  # the one the running evaluation started with
        self.evaluated_checkpoint: Path | None = None  # the one ``outcome`` belongs to
        self.job: Job | None = None
        self.outcome = None  # (record, probabilities, ImageSet) of the last evaluation
        self._outcomes = 0  # results shown so far: names the one a gallery belongs to
        self.model_combo = QComboBox(toolTip="The checkpoint to evaluate: the bundled one or "
                                     "any in your data folder")
        self.model_combo.setAccessibleName("Checkpoint to evaluate")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        self.part = QComboBox()
        for key, text in PARTS:
            self.part.addItem(text, key)
        self.path_edit = QLineEdit(stored(self.settings, "evaluate/data", ""), clearButtonEnabled=True,
                                   placeholderText="CIFAR-10 archive (.tar.gz), batches folder or "
                                                   "class folders")
        self.path_edit.setAccessibleName("Evaluation data path")
        self.path_edit.returnPressed.connect(self.start)  # as the Train tab's data box checks
        browse_file = QPushButton("Archive…", clicked=self._browse_file)
        browse_dir = QPushButton("Folder…", clicked=self._browse_folder)
        self.run_button = QPushButton("Evaluate", objectName="primary", clicked=self.start)
        self.cancel_button = QPushButton("Cancel", enabled=False, clicked=self.cancel)
        self.progress = QProgressBar(visible=False, textVisible=True)
        self.progress.setAccessibleName("Evaluation progress")
        self.status = QLabel(wordWrap=True)
        self.summary = QLabel(wordWrap=True)
        self.per_class_model = PerClassModel(self)
        self.per_class = QTableView(sortingEnabled=False, tabKeyNavigation=False)
        self.per_class.setModel(self.per_class_model)
        self.per_class.setAccessibleName("Per-class precision, recall and F1")
        self.per_class.verticalHeader().hide()
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.per_class.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)
        self.confusion_model = ConfusionModel(self)
        self.confusion = QTableView(tabKeyNavigation=False)
        self.confusion.setModel(self.confusion_model)
        self.confusion.setAccessibleName("Confusion matrix: rows true class, columns predicted")
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion.clicked.connect(self.open_cell)
        self.confusion.activated.connect(self.open_cell)  # Enter; a double-click sends both
        self.galleries: dict = {}  # (row, column) -> its open gallery: one per cell
        self.save_json = QPushButton("Save JSON…", enabled=False, clicked=lambda: self.save("json"))
        self.save_csv = QPushButton("Save CSV…", enabled=False, clicked=lambda: self.save("csv"))
        top = QHBoxLayout()
        for widget in (self.part, self.path_edit, browse_file, browse_dir, self.run_button,
                       self.cancel_button):
            top.addWidget(widget, 1 if widget is self.path_edit else 0)
        matrix_box = QWidget()
        matrix_layout = QVBoxLayout(matrix_box)
        matrix_layout.setContentsMargins(0, 0, 0, 0)
        matrix_layout.addWidget(QLabel("Confusion matrix: rows are the true class, columns the "
                                       "predicted class. Click a cell to see its images.",
                                       objectName="note", wordWrap=True))
        matrix_layout.addWidget(self.confusion, 1)
        self.reliability = ReliabilityChart()
        self.views = QTabWidget()
        self.views.addTab(matrix_box, "Confusion matrix")
        self.views.addTab(self.reliability, "Reliability")
        splitter = QSplitter()
        splitter.addWidget(self.per_class)
        splitter.addWidget(self.views)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([320, 760])  # the matrix's columns need the room more
        saves = QHBoxLayout()
        saves.addWidget(self.summary, 1)
        saves.addWidget(self.save_json)
        saves.addWidget(self.save_csv)
        heading = QHBoxLayout()
        self.heading = QLabel("Evaluate", objectName="result")
        # the picker's accessible name alone does not reach a screen reader on Linux (AT-SPI
        # names a combo box by its label relation): the heading labels it
        self.heading.setBuddy(self.model_combo)
        heading.addWidget(self.heading)
        heading.addWidget(self.model_combo)
        heading.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(heading)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(saves)
        layout.addWidget(splitter, 1)

    def set_checkpoint(self, path: Path) -> None:
        self.checkpoint = Path(path)
        self.refresh_checkpoints()

    def refresh_checkpoints(self) -> None:
        """List the bundled checkpoint and the user's readable ones (newest first) in the
        picker, the chosen one selected (listed even when it lies elsewhere)."""
        from training.library import list_checkpoints
        from training.paths import bundled_checkpoint, user_checkpoints_dir

        entries = [e for e in list_checkpoints(user_checkpoints_dir(), bundled_checkpoint())
                   if e.info is not None]
        named = [(e.path, e.name + (" (bundled)" if e.bundled else "")) for e in entries]
        listed = [p for p, _ in named]
        if self.checkpoint is not None and not self.checkpoint.is_file():
            fallback = self.fallback()  # renamed or deleted since it was chosen: no entry that
            self.checkpoint = (Path(fallback) if fallback is not None  # can only fail
                               and Path(fallback).is_file() else listed[0] if listed else None)
        if self.checkpoint is not None and self.checkpoint not in listed:
            named.append((self.checkpoint, self.checkpoint.stem))  # a file outside the folder
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for path, name in named:
            self.model_combo.addItem(name, str(path))
            self.model_combo.setItemData(self.model_combo.count() - 1, str(path),
                                         Qt.ItemDataRole.ToolTipRole)
        if self.checkpoint is not None:
            self.model_combo.setCurrentIndex(self.model_combo.findData(str(self.checkpoint)))
        self.model_combo.blockSignals(False)

    def follow(self, old: Path, new: Path) -> None:
        """A checkpoint was renamed: the picker keeps the same file chosen, and the result shown
        (or running) stays that file's: its summary, its saves' name (another checkpoint may be
        given the old one)."""
        if self.checkpoint == old:
            self.checkpoint = new  # listed anew by the store's refresh that follows
        if self._running == old:
            self._running = new
        if self.evaluated_checkpoint == old:
            self.evaluated_checkpoint = new
            if self.outcome is not None:
                record = self.outcome[0]
                self._show_summary(record)
                if self.status.text() == self._kept_note(record, old):
                    self.status.setText(self._kept_note(record, new))

    def _on_model_chosen(self, index: int) -> None:
        if index >= 0:
            self.checkpoint = Path(self.model_combo.itemData(index))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh_checkpoints()  # checkpoints trained, imported or deleted since

    def _browse_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "CIFAR-10 archive", "",
                                              "Archives (*.tar.gz *.tgz *.tar *.tar.xz)")
        if name:
            self.path_edit.setText(name)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Class folders or CIFAR-10 batches")
        if folder:
            self.path_edit.setText(folder)

    def start(self) -> Job | None:
        """Evaluate in the background; returns the job (tests wait on its signals)."""
        from training.evaluate import evaluate_checkpoint
        from training.evaluation_store import overlay_for
        if self.job is not None:  # Enter in the data box while one runs: one at a time
            return None
        data = self.path_edit.text().strip()
        if self.checkpoint is None or not data:
            self._fail("Choose the data to evaluate on first.")
            return None
        self.settings.setValue("evaluate/data", data)
        checkpoint, part = self.checkpoint, self.part.currentData()
        try:
            overlay = overlay_for(checkpoint)
        except Exception as exc:  # an unreadable sidecar: the job would refuse it anyway
            self._fail(f"Cannot evaluate: {exc}")
            return None
        job = Job(lambda reporter: evaluate_checkpoint(checkpoint, Path(data), part, reporter,
                                                       user_cache_dir(), overlay), "evaluate")
        job.progress.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        self.job, self._running = job, checkpoint
        hand_over([self.run_button], [self.cancel_button])  # (the keyboard too)
        self.model_combo.setEnabled(False)  # the result belongs to the checkpoint it started with
        self.progress.setRange(0, 0)
        self.progress.show()
        set_state(self.status, "")
        # the lane's other jobs are exports (this tab runs one evaluation at a time)
        return self.lane.submit_saying(job, self.status.setText, f"Evaluating {checkpoint.stem}…",
                                       "the running export")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling…")

    def _on_progress(self, fraction: float, message: str) -> None:
        if fraction > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        if message:
            self.status.setText(message)

    def _done(self) -> None:
        self.job = None
        hand_over([self.cancel_button], [self.run_button])  # (the keyboard too)
        self.model_combo.setEnabled(True)
        self.progress.hide()

    def _fail(self, text: str) -> None:
        set_state(self.status, "error")
        self.status.setText(text)
        self.message.emit(text)

    def _on_failed(self, reason: str) -> None:
        cancelled = self.job is not None and self.job.cancel_flag.is_set()  # (not the text:
        self._done()  # a folder named "cancelled-orders" is no cancel)
        self._fail("Evaluation cancelled." if cancelled else f"Evaluation failed: {reason}")

    def _on_finished(self, outcome) -> None:
        self._done()
        self.outcome = outcome
        self._outcomes += 1  # galleries of an earlier result are not this one's
        record = outcome[0]
        self.evaluated_checkpoint = self._running
        self.show_record(record)
        self.status.setText(self._kept_note(record, self.evaluated_checkpoint))
        self.evaluated.emit(record)

    @staticmethod
    def _kept_note(record: dict, checkpoint: Path) -> str:
        if record.get("not_stored"):
            return (f"Not saved with {checkpoint.stem} ({record['not_stored']}); export it with "
                    "Save JSON… or Save CSV…")
        return (f"Saved with {checkpoint.stem}: its Evaluations on the Checkpoints tab list this "
                "result.")

    def show_record(self, record: dict) -> None:
        self._show_summary(record)
        self.per_class_model.set_rows(record["per_class"])
        if "calibration" in record:
            self.reliability.show_bins(record["calibration"])
        self.confusion_model.set_matrix(record["confusion_matrix"], record["class_names"])
        self.confusion_model.fit_header(self.confusion)
        self.save_json.setEnabled(True)
        self.save_csv.setEnabled(True)

    def _show_summary(self, record: dict) -> None:
        """The summary line, named after the evaluated checkpoint as it is called now."""
        mirrored = ", each image averaged with its mirror image" if record.get("tta") == "hflip" \
            else ""
        import html
        name = self.evaluated_checkpoint.stem if self.evaluated_checkpoint is not None else ""
        skipped = record.get("skipped", 0)
        self.summary.setText(
            (f"{html.escape(name)}: " if name else "") +
            f"<b>Accuracy {record['accuracy']:.2%}</b> on {record['images']:,} images "
            f"({html.escape(record.get('data', ''))}{mirrored}); "
            f"mean confidence {record['mean_confidence']:.1%}" +
            (f"; <b>{skipped:,} unreadable file(s) left out</b>" if skipped else ""))
        self.summary.setToolTip("\n".join(f"{name}: {why}" for name, why in
                                          record.get("skipped_examples", [])))

    def cell_indices(self, row: int, column: int) -> np.ndarray:
        """Indices of the evaluated images whose true class is ``row`` and prediction ``column``."""
        _, probs, data = self.outcome
        return np.flatnonzero((data.labels == row) & (probs.argmax(1) == column))

    def open_cell(self, index) -> None:
        if self.outcome is None or not index.isValid():
            return
        from .gallery import GalleryDialog
        cell = (self._outcomes, index.row(), index.column())  # (an id() is reused)
        if cell in self.galleries and self.galleries[cell].isVisible():
            self.galleries[cell].raise_()  # a double-click (clicked + activated) opens one
            self.galleries[cell].activateWindow()
            return
        record, probs, data = self.outcome
        names = record["class_names"]
        picked = self.cell_indices(index.row(), index.column())
        if not len(picked):  # no window of nothing: the status line says so
            self.status.setText(f"No {names[index.row()]} image was predicted as "
                                f"{names[index.column()]}.")
            return
        picked = picked[np.argsort(-probs[picked].max(1), kind="stable")]  # most confident first
        title = (f"{names[index.row()]} predicted as {names[index.column()]}: "
                 f"{len(picked)} image(s)")
        source = Path(data.source) if data.source else None
        self.gallery = GalleryDialog(data.images[picked], probs[picked], names, picked, title, self,
                                     files=[data.file_of(int(i)) for i in picked],
                                     root=source if source is not None and source.is_dir()
                                     else None)
        self.gallery.show()
        self.galleries[cell] = self.gallery  # deleted on close: forgotten then
        self.gallery.destroyed.connect(lambda *_, c=cell: self.galleries.pop(c, None))

    def save(self, kind: str, path: str | None = None) -> Path | None:
        """Write the result shown as ``kind`` ("json" or "csv") where the user picks; never over
        a checkpoint's own files (its sidecar read back would change its predictions)."""
        from training.evaluate import report_overwrites, write_report
        if self.outcome is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save evaluation", f"{self.evaluated_checkpoint.stem}-evaluation.{kind}",
                "JSON (*.json)" if kind == "json" else "CSV (*.csv)")
            if not path:
                return None
        try:
            path = Path(path)
            if path.suffix.lower() != f".{kind}" and not path.suffix:
                path = path.with_name(f"{path.name}.{kind}")  # typed without one
            if why := report_overwrites(path, self.evaluated_checkpoint):
                self._fail(f"Not saved: {path.name} {why}.")
                return None
            written = write_report(self.outcome[0], path, self.evaluated_checkpoint.stem, kind)
        except OSError as exc:
            self._fail(f"Could not save: {exc.strerror or exc}")
            return None
        self.message.emit(f"Saved {written}")
        return written
