"""The results table of the Classify tab: every dropped image with its top-1 class, probability
and flags; sortable, filterable by class, confidence and flag; copy, reveal and export.

Filtering and sorting happen in a ``QSortFilterProxyModel`` over the session's table model, so a
10,000-image folder is 10,000 small records and the view only paints the rows on screen.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QDoubleSpinBox,
                               QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMenu,
                               QTableView, QVBoxLayout, QWidget)

from .items import ImageListModel
from .jobs import Job, JobLane
from .results_filter import FLAG_FILTERS, ElideRight, ResultsFilter
from .stored import stored

class ResultsView(QWidget):
    """Filter bar over the results table; emits ``current_changed`` with the selected item."""

    current_changed = Signal(object)  # ImageItem | None
    message = Signal(str)

    def __init__(self, model: ImageListModel, checkpoint_meta, parent=None) -> None:
        super().__init__(parent)
        self.model, self.checkpoint_meta = model, checkpoint_meta
        self.copy_lane = JobLane("copy", self)  # Add to Training Class: files copied off the GUI
        self._copying: list[Job] = []
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(model)
        self.table = QTableView(sortingEnabled=True, alternatingRowColors=True, wordWrap=False)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setIconSize(QSize(40, 40))
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the bars and buttons
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the file's end visible
        self._flags_delegate = ElideRight(self.table)
        self.table.setItemDelegateForColumn(3, self._flags_delegate)
        rows = self.table.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # uniform rows: cheap scrolling
        rows.setDefaultSectionSize(44)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 90), (2, 78), (3, 110)):
            header.resizeSection(column, width)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # drop order until a click
        self.table.setAccessibleName("Dropped images and their results")
        self.table.selectionModel().currentChanged.connect(lambda *_: self.current_changed.emit(
            self.current_item()))
        # a reset (Clear List) ends the selection without a currentChanged: say so too
        self.proxy.modelReset.connect(lambda: self.current_changed.emit(self.current_item()))
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.class_filter = QComboBox(toolTip="Show one predicted class")
        self.min_probability = QDoubleSpinBox(minimum=0, maximum=100, decimals=0, suffix=" %",
                                              toolTip="Hide rows whose top probability is lower")
        self.min_probability.setPrefix("≥ ")
        self.flag_filter = QComboBox(toolTip="Show rows with this flag")
        for key, text in FLAG_FILTERS:
            self.flag_filter.addItem(text, key)
        for widget in (self.class_filter, self.flag_filter):
            widget.currentIndexChanged.connect(self._apply_filters)
        self.min_probability.valueChanged.connect(self._apply_filters)
        self.count = QLabel(objectName="note")
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for widget in (self.class_filter, self.min_probability, self.flag_filter):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        self.copy_action = self._action("&Copy Result", QKeySequence.StandardKey.Copy, self.copy)
        self.reveal_action = self._action("&Show in File Manager", None, self.reveal)
        for signal in (model.rowsInserted, model.modelReset, self.proxy.rowsInserted,
                       self.proxy.rowsRemoved, self.proxy.modelReset):
            signal.connect(self._update_count)
        self.set_class_names(())

    def _action(self, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.table.addAction(action)
        return action

    def set_class_names(self, names) -> None:
        current = self.class_filter.currentData()
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All classes", "")
        for name in names:
            self.class_filter.addItem(name, name)
        self.class_filter.setCurrentIndex(max(self.class_filter.findData(current), 0))
        self.class_filter.blockSignals(False)
        self._apply_filters()

    def _apply_filters(self) -> None:
        self.proxy.set_filters(self.class_filter.currentData() or "",
                               self.min_probability.value() / 100,
                               self.flag_filter.currentData() or "")
        self._update_count()
        if not self.table.currentIndex().isValid() and self.proxy.rowCount():
            self.table.setCurrentIndex(self.proxy.index(0, 0))  # a row to look at, not "drop"
        else:
            self.current_changed.emit(self.current_item())  # none left: the detail says why

    def _update_count(self, *_) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count.setText(f"{shown} of {total}" if shown != total else f"{total} image(s)")

    # -- selection ------------------------------------------------------------------------------
    def current_item(self):
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.items[self.proxy.mapToSource(index).row()]

    def select_row(self, source_row: int) -> None:
        """Make the model's ``source_row`` the current row (if the filters show it)."""
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if index.isValid():  # that row alone, whatever keys are held (setCurrentIndex reads
            # them: a drop made with Ctrl held, a copy in some file managers, added to the
            # selection, and Add to Training Class then also took the image shown before)
            flags = QItemSelectionModel.SelectionFlag
            self.table.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)

    def selected_items(self) -> list:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        if not rows and self.current_item() is not None:
            return [self.current_item()]
        return [self.model.items[r] for r in sorted(rows)]

    # -- actions --------------------------------------------------------------------------------
    def result_line(self, item) -> str:
        top = self.model.top(item)
        source = str(item.source) if isinstance(item.source, Path) else item.name
        # the clipboard holds text: bytes of a name that are not UTF-8 show as \xe9, not dropped
        source = source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if top is None:
            return f"{source}\t{self.model.status_text(item)}"
        flags = self.model.flag_text(item)
        return f"{source}\t{top[0]}\t{top[1]:.4f}" + (f"\t{flags}" if flags else "")

    def copy(self) -> str:
        """Ctrl+C: the selected rows' results as tab-separated lines on the clipboard."""
        text = "\n".join(self.result_line(item) for item in self.selected_items())
        if text:
            QApplication.clipboard().setText(text)
            self.message.emit("Copied the result" + ("s" if "\n" in text else ""))
        return text

    def reveal(self) -> None:
        """Open the folder holding the current file in the system's file manager."""
        item = self.current_item()
        if item is not None and isinstance(item.source, Path):
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.source.parent)))
        elif item is not None:
            self.message.emit(f"No folder to show: the {item.name} is not a file.")

    def context_menu(self) -> QMenu:
        """The table's right-click menu, an item enabled only where it would act: nothing
        selected, a pasted image (no file, no folder) or an empty table grey out what does not
        apply. Its own actions, built per right-click: greying one out never turns off Ctrl+C."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)  # a disabled item says why
        items = self.selected_items()
        current = self.current_item()
        shortcut = self.copy_action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        copy = menu.addAction(f"&Copy Result\t{shortcut}", self.copy)
        copy.setEnabled(bool(items))
        reveal = menu.addAction("&Show in File Manager", self.reveal)
        reveal.setEnabled(current is not None and isinstance(current.source, Path))
        add = menu.addAction("Add to Training Class…", self.add_to_class)
        add.setEnabled(any(isinstance(i.source, Path) for i in items))
        if current is not None and not reveal.isEnabled():
            reveal.setToolTip("A pasted or dropped picture is not a file")
        if items and not add.isEnabled():
            add.setToolTip("Only files can be added to a class folder (not pasted images)")
        menu.addSeparator()
        for kind in ("CSV", "JSON"):
            export = menu.addAction(f"Export Table as {kind}…",
                                    lambda kind=kind.lower(): self.export(kind))
            export.setEnabled(self.proxy.rowCount() > 0)
        return menu

    def _context_menu(self, pos) -> None:
        menu = self.context_menu()
        menu.exec(self.table.viewport().mapToGlobal(pos))
        menu.deleteLater()  # one per right-click: not kept for the window's lifetime

    def add_to_class(self, root: str | None = None, class_name: str | None = None) -> Job | None:
        """Copy the selected files into a class folder of a training data set: the loop from
        "this is wrong" to "now it is right" (fine-tune on that folder in the Train tab). The
        copying runs on a worker (thousands of files, a slow drive); ``message`` tells the end."""
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QInputDialog
        from training.results import class_folder, collect_into_class
        items = self.selected_items()
        files = [i.source for i in items if isinstance(i.source, Path)]
        if not items:
            self.message.emit("Select the images to add to a class folder first.")
            return None
        if not files:
            self.message.emit("Only files can be added to a class folder (not pasted images).")
            return None
        settings = QSettings()
        if root is None:
            root = QFileDialog.getExistingDirectory(
                self, "Training data folder (one subfolder per class)",
                stored(settings, "collect/root", ""))
            if not root:
                return None
        if class_name is None:
            class_name, ok = QInputDialog.getItem(self, "Add to class", "Class:",
                                                  list(self.model.class_names), 0, True)
            if not ok:
                return None
        try:
            folder = class_folder(Path(root), class_name)
        except ValueError as exc:
            self.message.emit(f"Not added: {exc}")
            return None
        settings.setValue("collect/root", str(root))
        job = Job(lambda reporter: collect_into_class(files, Path(root), class_name, reporter),
                  "add to class")
        # held until it ends: Qt drops a queued call to a lambda whose job is gone
        self._copying.append(job)

        def ended(text: str) -> None:
            self._copying.remove(job)
            self.message.emit(text)

        job.progress.connect(lambda fraction, text: self.message.emit(f"Adding to {folder.name}: "
                                                                      f"{text}…"))
        job.finished.connect(lambda copies: ended(
            f"Copied {len(copies)} image(s) to {folder}; fine-tune on that folder in the Train tab."))
        job.failed.connect(lambda reason: ended(f"Not all added: {reason}"))
        self.message.emit(f"Adding {len(files)} image(s) to {folder.name}…")
        return self.copy_lane.submit(job)

    def shutdown(self) -> None:
        """Stop a copy under way (the files copied so far stay) and its worker thread."""
        self.copy_lane.shutdown()

    def rows(self) -> list[dict]:
        """Every row shown (filters applied), in the table's order, as plain dicts."""
        out = []
        for r in range(self.proxy.rowCount()):
            item = self.model.items[self.proxy.mapToSource(self.proxy.index(r, 0)).row()]
            top = self.model.top(item)
            out.append({"file": str(item.source) if isinstance(item.source, Path) else item.name,
                        "class": top[0] if top else None,
                        "probability": round(top[1], 6) if top else None,
                        "flags": sorted(self.model.flags_of(item)),
                        # why a row has no result: unreadable, stopped, still waiting
                        "error": item.error or (None if top else self.model.status_text(item))})
        return out

    def export(self, kind: str, path: str | None = None) -> Path | None:
        from training.results import write_results
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export results", f"results.{kind}",
                                                  "CSV (*.csv)" if kind == "csv" else "JSON (*.json)")
            if not path:
                return None
        try:
            written = write_results(Path(path), self.rows(), self.checkpoint_meta(),
                                    self.model.threshold, kind)
        except (OSError, UnicodeError) as exc:
            self.message.emit(f"Could not export: {getattr(exc, 'strerror', None) or exc}")
            return None
        self.message.emit(f"Exported {self.proxy.rowCount()} rows to {written}")
        return written
