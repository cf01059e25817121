"""A gallery of evaluated images (what the model saw, enlarged) with each one's top-3 guesses."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QListView, QVBoxLayout

from .items import to_qimage

TILE = 96  # px: 32x32 images shown 3x, without smoothing, so pixels stay honest


class GalleryModel(QAbstractListModel):
    """Images and their top-k; pixmaps are made when a row is first shown."""

    def __init__(self, images: np.ndarray, probs: np.ndarray, names, indices, parent=None) -> None:
        super().__init__(parent)
        self.images, self.probs, self.names = images, probs, list(names)
        self.indices = np.asarray(indices)
        self._pixmaps: dict[int, QPixmap] = {}

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.images)

    def top(self, row: int, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probs[row], kind="stable")[:k]
        return [(self.names[i], float(self.probs[row, i])) for i in order]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DecorationRole:
            if row not in self._pixmaps:
                self._pixmaps[row] = QPixmap.fromImage(to_qimage(self.images[row])).scaled(
                    TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation)
            return self._pixmaps[row]
        if role == Qt.ItemDataRole.DisplayRole:
            name, p = self.top(row, 1)[0]
            return f"#{int(self.indices[row])}\n{name} {p:.0%}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"image #{int(self.indices[row])} of the data set\n" + "\n".join(
                f"{name}: {p:.1%}" for name, p in self.top(row, 3))
        return None


class GalleryDialog(QDialog):
    """Non-modal: several galleries can stay open next to the confusion matrix."""

    def __init__(self, images, probs, names, indices, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(720, 520)
        self.model = GalleryModel(images, probs, names, indices, self)
        self.view = QListView(viewMode=QListView.ViewMode.IconMode, uniformItemSizes=True,
                              resizeMode=QListView.ResizeMode.Adjust, wordWrap=True)
        self.view.setIconSize(QSize(TILE, TILE))
        self.view.setGridSize(QSize(TILE + 28, TILE + 44))
        self.view.setModel(self.model)
        self.view.setAccessibleName(title)
        layout = QVBoxLayout(self)
        text = title if len(images) else f"{title}. Nothing to show."
        layout.addWidget(QLabel(text + "  (hover an image for its top 3)", wordWrap=True))
        layout.addWidget(self.view, 1)
