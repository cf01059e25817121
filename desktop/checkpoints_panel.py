"""The Checkpoints tab: every checkpoint with its lineage and figures; use, rename, delete (undo
with Ctrl+Z), import, compare, evaluate and export.

Import runs on its own worker lane (loading an untrusted file with ``safe_mode`` can take a
moment); rename and delete are file moves, done at once and undoable.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from PySide6.QtCore import QEvent, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QPushButton, QSplitter,
                               QTableView, QTextBrowser, QVBoxLayout, QWidget)

from training.checkpoints import sidecar_path
from training.importing import import_checkpoint

from .checkpoint_store import CheckpointStore
from .jobs import Job, JobLane
from .styling import themed


class CheckpointsPanel(QWidget):
    """A table of checkpoints and the actions on the selected one(s)."""

    evaluate_requested = Signal(object)  # Path
    export_requested = Signal(object)  # Path
    message = Signal(str)  # for the status bar

    def __init__(self, store: CheckpointStore, lane: JobLane, parent=None) -> None:
        super().__init__(parent)
        self.store, self.lane = store, lane
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(store.model)
        self.table = QTableView(sortingEnabled=True, alternatingRowColors=True,
                                tabKeyNavigation=False)  # Tab leaves it for the buttons
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setAccessibleName("Checkpoints")
        self.table.doubleClicked.connect(lambda *_: self.use_selected())
        self.details = QTextBrowser(openLinks=False)
        self.details.setAccessibleName("Checkpoint details")
        buttons = QHBoxLayout()
        self.use_button = self._button(buttons, "Use for Predictions", self.use_selected, primary=True)
        self.rename_button = self._button(buttons, "Rename…", self.rename_selected)
        self.delete_button = self._button(buttons, "Delete", self.delete_selected)
        self.delete_button.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.compare_button = self._button(buttons, "Compare", self.compare_selected)
        self.evaluate_button = self._button(
            buttons, "Evaluate…", lambda: self._emit_selected(self.evaluate_requested))
        self.export_button = self._button(
            buttons, "Export…", lambda: self._emit_selected(self.export_requested))
        buttons.addStretch(1)
        self.import_button = self._button(buttons, "Import .keras…", self.import_file)
        self.hint = QLabel("Checkpoints you train (Train tab) or import (Import .keras…) are "
                           "listed here. Select two (Ctrl+click) to compare them. Deleted "
                           "checkpoints can be restored with Ctrl+Z until you close the app.",
                           objectName="note", wordWrap=True)
        self.notice = QLabel(wordWrap=True, visible=False)  # why an import was refused, etc.
        self.notice.setProperty("state", "error")
        store.error.connect(self.show_error)
        store.stepped.connect(self._on_stepped)
        store.active_changed.connect(lambda *_: self._on_selection())  # "In Use" follows
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.notice)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.hint)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        # the list is read again on each visit of the tab and after a run, an evaluation, a
        # rename...: the rows the user selected stay selected (those still listed)
        self._kept: tuple[list[Path], Path | None, int] = ([], None, 0)
        store.model.modelAboutToBeReset.connect(self._keep_selection)
        store.model.modelReset.connect(self._restore_selection)
        self._on_selection()

    def _button(self, layout, text, slot, primary=False) -> QPushButton:
        button = QPushButton(text, objectName="primary" if primary else "")
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    # -- selection ----------------------------------------------------------------------------
    def selected_paths(self) -> list[Path]:
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel()
                       .selectedRows()})
        return [self.store.model.entries[r].path for r in rows]

    def select(self, *paths: Path) -> None:
        """Select the rows of ``paths`` (tests and the window use it)."""
        from PySide6.QtCore import QItemSelection, QItemSelectionModel
        selection, wanted = QItemSelection(), {Path(p) for p in paths}
        for row, entry in enumerate(self.store.model.entries):
            if entry.path in wanted:
                index = self.proxy.mapFromSource(self.store.model.index(row, 0))
                selection.select(index, index)
        self.table.selectionModel().select(
            selection, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        if not selection.isEmpty():  # the keyboard goes on from there
            self.table.selectionModel().setCurrentIndex(
                selection.indexes()[0], QItemSelectionModel.SelectionFlag.NoUpdate)

    def _current_path(self) -> Path | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        row = self.proxy.mapToSource(index).row()
        entries = self.store.model.entries
        return entries[row].path if 0 <= row < len(entries) else None

    def _keep_selection(self) -> None:
        self._kept = (self.selected_paths(), self._current_path(),
                      self.table.verticalScrollBar().value())

    def _restore_selection(self) -> None:
        """After the list was read again: the same rows selected, the same current row, the
        view where it was (when that row is still listed)."""
        from PySide6.QtCore import QItemSelectionModel
        paths, current, scrolled = self._kept
        self._kept = ([], None, 0)
        listed = {e.path: row for row, e in enumerate(self.store.model.entries)}
        if any(p in listed for p in paths):
            self.select(*paths)
        if current in listed:
            self.table.selectionModel().setCurrentIndex(
                self.proxy.mapFromSource(self.store.model.index(listed[current], 0)),
                QItemSelectionModel.SelectionFlag.NoUpdate)
            self.table.verticalScrollBar().setValue(scrolled)
            self.table.scrollTo(self.table.currentIndex())  # still in view if rows came before
        self._on_selection()

    def _on_stepped(self, text: str, path) -> None:
        """An undo or redo (Ctrl+Z, Ctrl+Shift+Z) says what it did and shows its checkpoint."""
        self.message.emit(text)
        if path is not None:
            self.select(path)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # a light/dark switch: the details' grey
            self._on_selection()                       # is written into their HTML

    def _on_selection(self) -> None:
        paths = self.selected_paths()
        one = len(paths) == 1
        entry = self.store.entry(paths[0]) if one else None
        usable = entry is not None and entry.info is not None
        user = usable and not entry.bundled
        in_use = usable and entry.path == self.store.active
        self.use_button.setEnabled(usable and not in_use)
        self.use_button.setText("In Use for Predictions" if in_use else "Use for Predictions")
        self.rename_button.setEnabled(user)
        self.delete_button.setEnabled(one and not (entry and entry.bundled))
        bundled = "The bundled checkpoint is part of the app: it cannot be renamed or deleted"
        for button, action in ((self.rename_button, "Rename this checkpoint"),
                               (self.delete_button, "Delete this checkpoint (Ctrl+Z undoes it)")):
            button.setToolTip(bundled if entry is not None and entry.bundled else action)
        self.evaluate_button.setEnabled(usable)
        self.export_button.setEnabled(usable)
        self.compare_button.setEnabled(len(paths) == 2 and all(
            (e := self.store.entry(p)) is not None and e.info is not None for p in paths))
        self.details.setHtml(self._details_html(entry) if entry else
                             "<p>Select a checkpoint to see where it came from.</p>")

    @staticmethod
    def _details_html(entry) -> str:
        """A readable summary (where it came from, what it scores), then the technical record."""
        if entry.info is None:
            return f"<p><b>{html.escape(entry.name)}</b>: {html.escape(entry.error)}</p>"
        info, metrics, config = entry.info, entry.info.metrics, entry.info.config
        if info.parent:
            parent = info.parent  # a name; older sidecars recorded a path
            parent = Path(parent).stem if parent.lower().endswith(".keras") else parent
            start = f"{parent} (fine-tuned from it)"
        elif config:
            start = "random weights (trained from scratch)"
        else:
            start = "unknown: this file carries no training record (imported)"
        data = info.data_source or _data_argument(info.command) or "unknown"
        if metrics.get("train_images"):
            data += f", {metrics['train_images']:,} training images"
        scores = []
        for label, value, images in (
                ("test", metrics.get("test_accuracy"), metrics.get("test_images")),
                ("validation", metrics.get("val_accuracy_tta", metrics.get("val_accuracy")),
                 metrics.get("val_images"))):
            if value is not None:
                scores.append(f"{value:.2%} {label}" + (f" ({images:,} images)" if images else ""))
        wall = config.get("wall_time_s")
        training = ", ".join(
            part for part in (f"{config['epochs_run']} epochs" if config.get("epochs_run") else "",
                              f"{wall / 60:.1f} min" if wall else "",
                              f"seed {info.seed}" if info.seed is not None else "") if part)
        summary = [("File", str(entry.path)),
                   ("Created", info.created[:16].replace("T", " ") + " UTC" if info.created else ""),
                   ("Classes", ", ".join(info.class_names)),
                   ("Started from", start),
                   ("Trained on", data),
                   ("Accuracy", ", ".join(scores)),
                   ("Evaluations", ", ".join(f"{k}: {v['accuracy']:.2%}" for k, v in
                                             info.evaluations.items())),
                   ("Training", training),
                   ("Notes", " ".join(str(metrics[k]) for k in ("training_note",
                                                                 "test_accuracy_note")
                                      if metrics.get(k)))]
        technical = [("Data fingerprint", info.data_fingerprint or ""),
                     ("Command", info.command or ""),
                     ("Preprocessing", json.dumps(info.preprocessing.to_dict())),
                     ("Flip TTA", info.tta),
                     ("Metrics", json.dumps(metrics, sort_keys=True) if metrics else ""),
                     ("Config", json.dumps(config, sort_keys=True) if config else ""),
                     ("Versions", json.dumps(info.versions, sort_keys=True) if info.versions
                      else "")]

        def table(rows) -> str:
            return "<table cellspacing=4>" + "".join(
                f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(_clip(v))}</td></tr>"
                for k, v in rows if v) + "</table>"

        return (table(summary) + "<p><b>Technical record</b> (the sidecar's own fields)</p>"
                + f"<div style='color:{themed('#555').name()}'>{table(technical)}</div>")

    # -- actions ------------------------------------------------------------------------------
    def use_selected(self) -> None:
        self.notice.hide()
        paths = self.selected_paths()
        if len(paths) == 1:
            self.store.set_active(paths[0])  # the window switches, or says why it cannot
            self.select(paths[0])  # the table was refreshed: keep the row (and its details)
            if self.store.active == paths[0]:
                self.message.emit(f"Using {paths[0].stem} for predictions")

    def rename_selected(self) -> None:
        paths = self.selected_paths()
        if len(paths) != 1:
            return
        name, ok = QInputDialog.getText(self, "Rename checkpoint", "New name:", text=paths[0].stem)
        if ok and name.strip() and name.strip() != paths[0].stem:
            new = self.store.rename(paths[0], name)
            if new is not None:
                self.select(new)
                self.message.emit(f"Renamed to {new.stem} (Ctrl+Z to undo)")

    def delete_selected(self) -> None:
        """Delete the selected checkpoint; the row that takes its place is selected and the
        table has the keyboard (Down goes on from there, Delete deletes the next one)."""
        paths = self.selected_paths()
        if len(paths) != 1:
            return
        row = self.table.selectionModel().selectedRows()[0].row()  # where it sat, as sorted
        if self.store.delete(paths[0]):
            # the list was read again without it: nothing was left selected, and the Delete
            # button, disabled meanwhile, had passed the focus on to "Import .keras…"
            rows = self.proxy.rowCount()
            if rows:
                self.select(self.store.model.entries[self.proxy.mapToSource(
                    self.proxy.index(min(row, rows - 1), 0)).row()].path)
                self.table.scrollTo(self.table.currentIndex())
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)
            self.message.emit(f"Deleted {paths[0].stem} (Ctrl+Z to undo until you close the app)")

    def compare_selected(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 2:
            from .compare_dialog import CompareDialog
            a, b = (self.store.entry(p) for p in paths)
            dialog = CompareDialog(a, b, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.show()
            self.compare_dialog = dialog

    def _emit_selected(self, signal) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            signal.emit(paths[0])

    def import_file(self, source: Path | None = None, class_names=None) -> Job | None:
        """Import a ``.keras`` file in the background; without a sidecar, ask for class names."""
        if source is None:
            name, _ = QFileDialog.getOpenFileName(self, "Import a Keras model", "",
                                                  "Keras models (*.keras)")
            if not name:
                return None
            source = Path(name)
            if not sidecar_path(source).is_file():
                text, ok = QInputDialog.getText(
                    self, "Class names", f"{source.name} has no sidecar. Its class names, in "
                    "output order, separated by commas (empty: class 1, class 2, …):")
                if not ok:
                    return None
                class_names = tuple(n.strip() for n in text.split(",") if n.strip()) or None
        folder = self.store.folder
        job = Job(lambda reporter: import_checkpoint(Path(source), folder, class_names),
                  "import checkpoint")
        job.finished.connect(self._on_imported)
        job.failed.connect(self._on_import_failed)
        self.import_button.setEnabled(False)
        self.message.emit(f"Checking {Path(source).name}…")
        self.lane.submit(job)
        return job

    def _on_imported(self, path) -> None:
        self.import_button.setEnabled(True)
        self.store.refresh()
        self.select(path)
        self.message.emit(f"Imported {path.stem}")

    def _on_import_failed(self, reason: str) -> None:
        self.import_button.setEnabled(True)
        self.show_error(f"Not imported: {reason}")

    def show_error(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()
        self.message.emit(text)


def _data_argument(command: str | None) -> str:
    """The file name given to ``--data`` in a recorded command line ("" when there is none)."""
    import shlex

    try:
        words = shlex.split(command or "")
    except ValueError:
        return ""
    for flag, value in zip(words, words[1:]):
        if flag == "--data":
            return Path(value).name
    return ""


def _clip(text: str, limit: int = 4000) -> str:
    """At most ``limit`` characters of a sidecar's field: laying out megabytes freezes the tab."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"
