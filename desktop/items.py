"""The dropped images: a Qt table model over plain item records."""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap

from .styling import themed
from .table_model import RowsTableModel

_ids = itertools.count(1)


@dataclass
class ImageItem:
    """One dropped, pasted or opened image and what is known about it so far."""

    source: object  # a Path, or bytes for a pasted image
    name: str
    origin: str = ""  # how a fileless image came, where its hand-over format would mislead
    id: int = field(default_factory=lambda: next(_ids))
    state: str = "waiting"  # waiting -> checked -> classified | failed; stopped by the user
    error: str = ""
    report: object = None  # training.preprocessing.InputReport (array + preview)
    probabilities: np.ndarray | None = None
    thumbnail: QIcon | None = None  # the row's picture, made on the GUI thread


def to_qimage(array: np.ndarray) -> QImage:
    """A deep-copied QImage of an (H, W, 3) uint8 RGB array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


COLUMNS = ("File", "Class", "Probability", "Flags")


class ImageListModel(RowsTableModel):
    """One row per image: thumbnail and file, top-1 class, its probability, and flags
    (converted, low confidence, failed with its reason). A model/view table: 10,000 rows cost
    10,000 small records, not 10,000 widgets."""

    HEADERS = COLUMNS

    item_changed = Signal(int)  # item id
    all_changed = Signal()  # every row at once (a checkpoint switch): one signal, not 50,000

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[ImageItem] = []
        self.class_names: tuple[str, ...] = ()
        self.threshold = 0.5  # top probability below this flags "low confidence"
        self._row_of: dict[int, int] = {}
        self.sorted_by = (-1, Qt.SortOrder.AscendingOrder)  # the header's choice; -1: drop order
        # rows arriving or changing (a folder streaming in) keep a chosen order: re-sorted at
        # most every 250 ms, so 10,000 results do not re-sort 10,000 times
        self._resort = QTimer(self, singleShot=True, interval=250)
        self._resort.timeout.connect(lambda: self.sort(*self.sorted_by))

    def _keep_sorted(self) -> None:
        if self.sorted_by[0] != -1 and not self._resort.isActive():
            self._resort.start()

    def index(self, row: int, column: int = 0, parent=QModelIndex()):
        return super().index(row, column, parent)

    def rows(self) -> list:
        return self.items

    def top(self, item: ImageItem) -> tuple[str, float] | None:
        if item.probabilities is None or len(item.probabilities) != len(self.class_names):
            return None
        best = int(np.argmax(item.probabilities))
        return self.class_names[best], float(item.probabilities[best])

    def flags_of(self, item: ImageItem) -> frozenset:
        words = set()
        if item.state == "failed":
            words.add("failed")
        if item.report is not None and not item.report.conforms:
            words.add("converted")
        top = self.top(item)
        if top is not None and top[1] < self.threshold:
            words.add("low confidence")
        return frozenset(words)

    def flag_text(self, item: ImageItem) -> str:
        if item.state == "failed":
            return f"failed: {item.error}"
        if item.state == "stopped":  # why it has no result, where a failure's reason goes
            return item.error or "stopped"
        return ", ".join(sorted(self.flags_of(item)))

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item, column = self.items[index.row()], index.column()
        top = self.top(item)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return item.name
            if column == 1:
                if top:
                    return top[0]
                if item.state == "stopped":
                    return "not classified"  # the Flags column says why
                return "—" if item.state == "failed" else self.status_text(item)
            if column == 2:
                return f"{top[1]:.1%}" if top else ""
            return self.flag_text(item)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            # an icon, not a pixmap: the view gives every icon the same box, so names line up
            # whatever the picture's shape (and a row without one keeps the box empty)
            return item.thumbnail if item.thumbnail is not None else _blank_icon()
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            status = self.status_text(item)
            flags = [f for f in sorted(self.flags_of(item)) if f not in status]
            where = f"\n{item.source}" if role == Qt.ItemDataRole.ToolTipRole and isinstance(
                item.source, Path) else ""
            return f"{item.name}: {status}" + (
                f" ({', '.join(flags)})" if flags and item.state != "failed" else "") + where
        if role == Qt.ItemDataRole.ForegroundRole and column == 3 and item.state == "failed":
            return themed("#b00020")  # a lighter red on a dark palette, read at each paint
        if role == Qt.ItemDataRole.UserRole:
            return item.id
        return None

    def status_text(self, item: ImageItem) -> str:
        if item.state == "failed":
            return f"cannot use: {item.error}"
        if item.state == "stopped":
            return f"not classified: {item.error or 'stopped'}"
        top = self.top(item)
        if top is not None:
            low = " (low confidence)" if top[1] < self.threshold else ""
            return f"{top[0]} {top[1]:.1%}{low}"
        return "waiting for the model" if item.state == "checked" else "reading"

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows in Python (one key per row), not by pairwise comparisons through Qt:
        10,000 rows by probability take milliseconds instead of seconds. Selection survives.

        Column -1 restores the order the images were added in."""
        keys = {-1: lambda item: item.id, 0: lambda item: item.name.lower(),
                1: lambda item: (self.top(item) or ("~", 0))[0],
                2: lambda item: (self.top(item) or ("", -1.0))[1],
                3: lambda item: self.flag_text(item)}
        if column not in keys:
            return
        self.sorted_by = (column, order)
        self.layoutAboutToBeChanged.emit()
        old_ids = [item.id for item in self.items]
        self.items.sort(key=keys[column], reverse=order == Qt.SortOrder.DescendingOrder)
        self._row_of = {item.id: row for row, item in enumerate(self.items)}
        persistent = self.persistentIndexList()  # the selection, the current row: a few
        self.changePersistentIndexList(persistent, [
            self.index(self._row_of[old_ids[i.row()]], i.column()) for i in persistent])
        self.layoutChanged.emit()

    def set_threshold(self, threshold: float) -> None:
        """A new low-confidence threshold re-flags every row."""
        self.threshold = float(threshold)
        if self.items:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self.items) - 1, 3))

    def add(self, items: list[ImageItem]) -> None:
        if not items:
            return
        start = len(self.items)
        self.beginInsertRows(QModelIndex(), start, start + len(items) - 1)
        for offset, item in enumerate(items):
            self._row_of[item.id] = start + offset
            self.items.append(item)
        self.endInsertRows()
        self._keep_sorted()

    def get(self, item_id: int) -> ImageItem | None:
        row = self._row_of.get(item_id)
        return self.items[row] if row is not None else None

    def touch(self, item_id: int) -> None:
        row = self._row_of.get(item_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
            self.item_changed.emit(item_id)
            self._keep_sorted()

    def touch_all(self) -> None:
        if self.items:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self.items) - 1, len(COLUMNS) - 1))
            self.all_changed.emit()
            self._keep_sorted()

    def clear(self) -> None:
        self.beginResetModel()
        self.items.clear()
        self._row_of.clear()
        self.endResetModel()


def row_icon(picture: QImage) -> QIcon:
    """A row's icon: ``picture`` centred on a transparent square, so a 1x1 image or a very
    wide one take the same room as any other and the file names line up."""
    from .lane_work import THUMB_SIZE as box  # the largest a row's picture is made
    canvas = QPixmap(box, box)
    canvas.fill(Qt.GlobalColor.transparent)
    if not picture.isNull():
        painter = QPainter(canvas)
        painter.drawImage((box - picture.width()) // 2, (box - picture.height()) // 2, picture)
        painter.end()
    return QIcon(canvas)


@functools.lru_cache(maxsize=1)
def _blank_icon() -> QIcon:
    return row_icon(QImage())
