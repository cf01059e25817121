"""The list of dropped images: a Qt list model over plain item records."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QImage, QPixmap

_ids = itertools.count(1)


@dataclass
class ImageItem:
    """One dropped, pasted or opened image and what is known about it so far."""

    source: object  # a Path, or bytes for a pasted image
    name: str
    id: int = field(default_factory=lambda: next(_ids))
    state: str = "waiting"  # waiting -> checked -> classified | failed; stopped by the user
    error: str = ""
    report: object = None  # training.preprocessing.InputReport (array + preview)
    probabilities: np.ndarray | None = None
    thumbnail: QPixmap | None = None


def to_qimage(array: np.ndarray) -> QImage:
    """A deep-copied QImage of an (H, W, 3) uint8 RGB array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ImageListModel(QAbstractListModel):
    """Rows of images with a thumbnail and a one-line status (result or reason)."""

    item_changed = Signal(int)  # item id

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[ImageItem] = []
        self.class_names: tuple[str, ...] = ()
        self._row_of: dict[int, int] = {}

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{item.name}\n{self.status_text(item)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return item.thumbnail
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"{item.name}: {self.status_text(item)}"
        if role == Qt.ItemDataRole.UserRole:
            return item.id
        return None

    def status_text(self, item: ImageItem) -> str:
        if item.state == "failed":
            return f"cannot use: {item.error}"
        if item.state == "stopped":
            return "not classified: stopped"
        if item.probabilities is not None and len(item.probabilities) == len(self.class_names):
            best = int(np.argmax(item.probabilities))
            return f"{self.class_names[best]} {item.probabilities[best]:.0%}"
        return "waiting for the model" if item.state == "checked" else "reading"

    def add(self, items: list[ImageItem]) -> None:
        if not items:
            return
        start = len(self.items)
        self.beginInsertRows(QModelIndex(), start, start + len(items) - 1)
        for offset, item in enumerate(items):
            self._row_of[item.id] = start + offset
            self.items.append(item)
        self.endInsertRows()

    def get(self, item_id: int) -> ImageItem | None:
        row = self._row_of.get(item_id)
        return self.items[row] if row is not None else None

    def touch(self, item_id: int) -> None:
        row = self._row_of.get(item_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index)
            self.item_changed.emit(item_id)

    def clear(self) -> None:
        self.beginResetModel()
        self.items.clear()
        self._row_of.clear()
        self.endResetModel()
