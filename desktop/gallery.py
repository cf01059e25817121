"""A gallery of evaluated images (what the model saw, enlarged) with each one's top-3 guesses."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QListView, QMenu, QVBoxLayout

from .pixels import fitted_pixmap

TILE = 96  # px: 32x32 images shown 3x, without smoothing, so pixels stay honest


PIXMAP_CACHE = 512  # tiles kept (~36 kB each; four times that at 200 % scaling)


class GalleryModel(QAbstractListModel):
    """Images and their top-k; pixmaps are made when a row is first shown."""

    def __init__(self, images: np.ndarray, probs: np.ndarray, names, indices, files=None,
                 parent=None) -> None:
        super().__init__(parent)
        self.images, self.probs, self.names = images, probs, list(names)
        self.indices = np.asarray(indices)
        self.files = list(files) if files else [""] * len(images)  # below the data's source
        self._pixmaps: dict[int, QPixmap] = {}  # the rows shown lately (at most PIXMAP_CACHE)
        self.ratio = 1.0  # device pixels per logical pixel of the screen the tiles are shown on

    def set_ratio(self, ratio: float) -> None:
        """Make the tiles for a screen of ``ratio`` device pixels per logical pixel."""
        if ratio != self.ratio:
            self.ratio = ratio
            self._pixmaps.clear()
            if len(self.images):  # the tiles shown are asked for again
                self.dataChanged.emit(self.index(0), self.index(len(self.images) - 1),
                                      [Qt.ItemDataRole.DecorationRole])

    def label(self, row: int) -> str:
        """The image's file name ("0003.jpg"), or its number in the data set when unknown."""
        file = self.files[row]
        return PurePosixPath(file).name if file else f"#{int(self.indices[row])}"

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
            pixmap = self._pixmaps.pop(row, None)
            if pixmap is None:
                pixmap = fitted_pixmap(self.images[row], TILE, self.ratio)
            self._pixmaps[row] = pixmap  # most recent last; scrolling 10,000 images keeps a
            while len(self._pixmaps) > PIXMAP_CACHE:  # screenful or two, not 370 MB of tiles
                self._pixmaps.pop(next(iter(self._pixmaps)))
            return pixmap
        if role == Qt.ItemDataRole.DisplayRole:
            name, p = self.top(row, 1)[0]
            return f"{self.label(row)}\n{name} {p:.1%}"
        if role == Qt.ItemDataRole.ToolTipRole:
            where = self.files[row] or f"image #{int(self.indices[row])} of the data set"
            return where + "\n" + "\n".join(f"{name}: {p:.1%}" for name, p in self.top(row, 3))
        return None


class GalleryDialog(QDialog):
    """Non-modal: several galleries can stay open next to the confusion matrix."""

    def __init__(self, images, probs, names, indices, title: str, parent=None, files=None,
                 root: Path | None = None) -> None:
        """``files``: each image's file below ``root``, the evaluated folder (None for an
        archive: nothing to reveal in a file manager)."""
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(720, 520)
        self.root = root
        self.model = GalleryModel(images, probs, names, indices, files, self)
        self.model.set_ratio(self.devicePixelRatioF())
        self.view = QListView(viewMode=QListView.ViewMode.IconMode, uniformItemSizes=True,
                              resizeMode=QListView.ResizeMode.Adjust, wordWrap=True)
        self.view.setIconSize(QSize(TILE, TILE))
        self.view.setGridSize(QSize(TILE + 28, TILE + 44))
        self.view.setModel(self.model)
        self.view.setAccessibleName(title)
        layout = QVBoxLayout(self)
        text = title if len(images) else f"{title}. Nothing to show."
        hint = "hover an image for its file and top 3" + (
            "; right-click it to show it in the file manager" if root is not None else "")
        layout.addWidget(QLabel(f"{text} ({hint})" if len(images) else text, wordWrap=True))
        layout.addWidget(self.view, 1)
        if root is not None:
            self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            self.view.customContextMenuRequested.connect(self._context_menu)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:  # moved to a screen of another
            self.model.set_ratio(self.devicePixelRatioF())  # scale: tiles made for its pixels
        return super().event(event)

    def file_path(self, row: int) -> Path | None:
        """Where image ``row`` lies on disk (evaluated class folders only)."""
        file = self.model.files[row]
        return self.root / PurePosixPath(file) if self.root is not None and file else None

    def _context_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        path = self.file_path(index.row()) if index.isValid() else None
        if path is None or not path.is_file():  # CIFAR batches name images that are no files
            return
        menu = QMenu(self)
        menu.addAction("Show in File Manager", lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(path.parent))))
        menu.exec(self.view.viewport().mapToGlobal(pos))
