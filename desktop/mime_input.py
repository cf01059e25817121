"""What a drop, a paste or File > Open gives the window, as the session takes it: local file
paths (byte for byte) and images handed over as bytes without loss; ``WindowInput`` is the
main window's part that receives them."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication, QFileDialog

from training.predict import is_folder

TRAIN_DATA_SUFFIXES = (".tar", ".gz", ".tgz", ".xz", ".bz2")


def local_path(url) -> Path:
    """A dropped file URL as a path, byte for byte: ``QUrl.toLocalFile`` decodes the name as
    UTF-8, so a file whose name is not valid UTF-8 would be looked up under another name."""
    if os.name != "posix":
        return Path(url.toLocalFile())
    from urllib.parse import unquote_to_bytes
    encoded = url.path(QUrl.ComponentFormattingOption.FullyEncoded)
    return Path(os.fsdecode(unquote_to_bytes(encoded)))


def image_bytes(mime) -> tuple[bytes, str]:
    """An image carried by a drop or the clipboard: its own PNG bytes when offered (no
    re-encoding), else Qt's decoded image saved losslessly, without an alpha channel when it
    is opaque (Qt hands most images over as ARGB32: each would have been reported as
    transparent and converted). On the GUI thread, so saved the fast way: an opaque image
    as BMP (a 4K screenshot: about 20 ms, against 0.9 s as compressed PNG), a transparent
    one as uncompressed PNG (about 0.3 s).

    Returns the bytes and where they came from ("" for a file's own bytes)."""
    if mime.hasFormat("image/png"):
        return bytes(mime.data("image/png")), ""
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtGui import QImage, QPixmap
    data = mime.imageData()  # a QImage from other programs; a QPixmap from this process's own
    image = data.toImage() if isinstance(data, QPixmap) else QImage(data)
    transparent = image.hasAlphaChannel() and not _opaque(image)
    if not transparent:
        image = image.convertToFormat(QImage.Format.Format_RGB888)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # lossless hand-over to the one preprocessing path
    image.save(buffer, "PNG", 100) if transparent else image.save(buffer, "BMP")
    return bytes(buffer.data()), "pixels only, no file"


def _opaque(image) -> bool:
    """Whether every pixel of a QImage with an alpha channel is fully opaque."""
    import numpy as np
    from PySide6.QtGui import QImage
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    pixels = np.frombuffer(rgba.constBits(), np.uint8, rgba.sizeInBytes())
    pixels = pixels.reshape(rgba.height(), rgba.bytesPerLine())[:, :rgba.width() * 4]
    return bool((pixels[:, 3::4] == 255).all())


def _accept_as_copy(event) -> None:
    """Accept a drag or drop as a copy, whatever the source proposes: a file manager told
    "moved" (Shift held, or its default between folders) deletes the user's original."""
    event.setDropAction(Qt.DropAction.CopyAction)
    event.accept()


def _text_urls(text: str) -> list:
    """Copied text as file URLs or web addresses: a file manager's "copy path" gives a path (or
    a file:// URL) a line, a browser's "copy address" a web address. Lines naming no existing
    file nor a web address (any other text) give nothing; at most 100 lines are looked at."""
    urls = []
    for line in text.splitlines()[:100]:
        line = line.strip().strip('"\'')
        if line.lower().startswith(("http://", "https://", "file://")):
            urls.append(QUrl(line))
        elif line.startswith(("/", "~")) or (os.name == "nt" and line[1:3] in (":\\", ":/")):
            path = Path(line).expanduser()
            if path.exists():
                urls.append(QUrl.fromLocalFile(str(path)))
    return urls


class WindowInput:
    """The main window's input: drops, pastes and File > Open become images for the session
    (or, on the Train tab, its data). Needs the window's ``tabs``, ``train_panel``, ``session``
    and ``images_dropped``."""

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            _accept_as_copy(event)

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        paths = [local_path(url) for url in mime.urls() if url.isLocalFile()]
        remote = [url for url in mime.urls() if not url.isLocalFile()]
        if paths:
            self._add_paths(paths)
        elif mime.hasImage() or mime.hasFormat("image/png"):
            self._add_image(mime, "dropped image")
            remote = []  # the browser handed over the picture with its address
        if remote:  # a browser drag often carries only the address: the app works offline
            self._say_remote(remote[0])
        _accept_as_copy(event)

    def _say_remote(self, url) -> None:
        """Why a web address brings no image (said even beside files that do)."""
        # the advice first, the address cut to fit: at 900 px wide the whole message fits
        # beside the model's name (a long address had pushed the advice past the edge)
        self.statusBar().showMessage("Save the image, then drop the file. Not a file on this "
                                     f"computer: {self._short_address(url)}", 15000)

    def _short_address(self, url) -> str:
        """A web address in about 30 characters' room, cut in the middle: its site and file
        name say which image it was; a query (sizes, trackers) says nothing to the user."""
        url = QUrl(url)
        url.setQuery(None)
        url.setFragment(None)
        metrics = self.statusBar().fontMetrics()
        return metrics.elidedText(url.toString(), Qt.TextElideMode.ElideMiddle,
                                  30 * metrics.averageCharWidth())

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return
        urls = mime.urls() or (_text_urls(mime.text()) if mime.hasText() else [])
        paths = [local_path(u) for u in urls if u.isLocalFile()]
        remote = [u for u in urls if u.scheme() in ("http", "https")]
        if paths:
            self._add_paths(paths)  # pasted files go where dropped ones would
        elif mime.hasImage() or mime.hasFormat("image/png"):
            self._add_image(mime, "pasted image")
            remote = []
        elif not remote:
            self.statusBar().showMessage("The clipboard holds no image.", 4000)
        if remote:  # a copied web address: as for a dropped one
            self._say_remote(remote[0])

    def _add_paths(self, paths) -> None:
        """Files dropped or pasted: a data set on the Train tab becomes its data; anything else
        is classified (a .keras file gets a pointer to Import)."""
        if (len(paths) == 1 and self.tabs.currentWidget() is self.train_panel
                and (is_folder(paths[0]) or paths[0].name.lower().endswith(TRAIN_DATA_SUFFIXES))):
            self.train_panel.set_data_path(paths[0])
            return
        self._classify(paths)

    def _classify(self, paths) -> None:
        """Classify ``paths`` where the user sees it: the Classify tab."""
        self.tabs.setCurrentIndex(0)
        self.images_dropped.emit(paths)
        if any(p.suffix.lower() == ".keras" for p in paths):
            self.statusBar().showMessage("A .keras checkpoint is not an image: import it on "
                                         "the Checkpoints tab (Import .keras…).", 8000)

    def _add_image(self, mime, name: str) -> None:
        """An image carried by a drop or the clipboard, handed over losslessly."""
        data, origin = image_bytes(mime)
        self.session.add_bytes(data, name, origin=origin)

    def open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "",
                                                "Images (*.png *.jpg *.jpeg *.gif *.bmp *.webp "
                                                "*.tif *.tiff);;All files (*)")
        if files:  # (from the Train tab too: the menu says images, so they are classified)
            self._classify([Path(f) for f in files])

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self._classify([Path(folder)])
