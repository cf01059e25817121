"""The main window: drop, paste or open images; see the input check and the top-k bars."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QLabel, QListView, QMainWindow,
                               QMessageBox, QSplitter, QVBoxLayout, QWidget)

from .input_check import InputCheckView
from .session import ClassifierSession
from .top_k import TopKBars


class MainWindow(QMainWindow):
    """Turns drops, pastes and menu actions into ``images_dropped`` and friends."""

    images_dropped = Signal(list)  # list[Path]

    def __init__(self, session: ClassifierSession, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = session
        self.settings = settings or QSettings()
        self.setWindowTitle("Pixel Classifier")
        self.setAcceptDrops(True)
        self.list_view = QListView()
        self.list_view.setModel(session.items)
        self.list_view.setIconSize(QSize(48, 48))
        self.list_view.setUniformItemSizes(True)
        self.list_view.setAccessibleName("Dropped images")
        self.list_view.selectionModel().currentChanged.connect(lambda *_: self._show_current())
        self.hint = QLabel("Drop images or a folder here,\npaste with Ctrl+V, or open with Ctrl+O",
                           alignment=Qt.AlignmentFlag.AlignCenter, objectName="dropHint")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.hint)
        left_layout.addWidget(self.list_view, 1)
        self.input_check = InputCheckView()
        self.bars = TopKBars(int(self.settings.value("top_k", 5)))
        self.bars.k_changed.connect(lambda k: self.settings.setValue("top_k", k))
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.input_check)
        right_layout.addWidget(self.bars, 1)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.model_status = QLabel()
        self.statusBar().addPermanentWidget(self.model_status)
        self._make_menus()
        self.images_dropped.connect(session.add_paths)
        session.items.item_changed.connect(self._on_item_changed)
        session.items.rowsInserted.connect(self._on_rows_inserted)
        session.model_loading.connect(lambda name: self.model_status.setText(f"Loading model {name}…"))
        session.model_ready.connect(self._on_model_ready)
        session.model_failed.connect(self._on_model_failed)
        self.resize(980, 640)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open Images…", QKeySequence.StandardKey.Open, self.open_files)
        self._action(file_menu, "Open &Folder…", None, self.open_folder)
        self._action(file_menu, "&Paste Image", QKeySequence.StandardKey.Paste, self.paste)
        self._action(file_menu, "&Clear List", None, self.session.items.clear)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view = self.menuBar().addMenu("&View")
        self.strict_action = self._action(view, "&Strict 32×32 input (reject others)", None,
                                          self.session.set_strict)
        self.strict_action.setCheckable(True)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About", None, self.about)

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- input --------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        if paths:
            self.images_dropped.emit(paths)
        elif mime.hasImage():
            self._add_qimage(mime.imageData(), "dropped image")
        event.acceptProposedAction()

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.images_dropped.emit(paths)
        elif mime.hasImage():
            self._add_qimage(mime.imageData(), "pasted image")
        else:
            self.statusBar().showMessage("The clipboard holds no image.", 4000)

    def _add_qimage(self, image, name: str) -> None:
        from PySide6.QtCore import QBuffer, QIODevice
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")  # lossless hand-over to the one preprocessing path
        self.session.add_bytes(bytes(buffer.data()), name)

    def open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "",
                                                "Images (*.png *.jpg *.jpeg *.gif *.bmp *.webp "
                                                "*.tif *.tiff);;All files (*)")
        if files:
            self.images_dropped.emit([Path(f) for f in files])

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.images_dropped.emit([Path(folder)])

    # -- output -------------------------------------------------------------------------------
    def _on_rows_inserted(self, _parent, first, _last) -> None:
        self.hint.hide()
        if not self.list_view.currentIndex().isValid():
            self.list_view.setCurrentIndex(self.session.items.index(first))

    def _current_item(self):
        index = self.list_view.currentIndex()
        return self.session.items.items[index.row()] if index.isValid() else None

    def _on_item_changed(self, item_id: int) -> None:
        item = self._current_item()
        if item is not None and item.id == item_id:
            self._show_current()

    def _show_current(self) -> None:
        item = self._current_item()
        info = self.session.info
        size = tuple(info.preprocessing.size) if info else (32, 32)
        self.input_check.show_item(item, size)
        if item is None:
            self.bars.show_message("Drop an image to see predictions.")
        elif item.state == "failed":
            self.bars.show_message(f"Cannot use this file: {item.error}")
        elif item.probabilities is None:
            self.bars.show_message("Loading model…" if self.session.classifier is None
                                   else "Classifying…")
        else:
            self.bars.show_probabilities(item.probabilities, info.class_names)

    def _on_model_ready(self, info) -> None:
        acc = info.metrics.get("test_accuracy")
        extra = f", test accuracy {acc:.1%}" if acc else ""
        self.model_status.setText(f"Model: {info.name} ({len(info.class_names)} classes{extra})")
        self._show_current()

    def _on_model_failed(self, reason: str) -> None:
        self.model_status.setText("Model not loaded")
        self.statusBar().showMessage(f"Could not load the model: {reason}")
        self.bars.show_message(f"Could not load the model: {reason}")

    def about(self) -> None:
        from importlib import metadata
        versions = []
        for dist in ("PySide6-Essentials", "keras", "tensorflow-cpu", "numpy", "pillow"):
            try:
                versions.append(f"{dist} {metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                pass
        QMessageBox.about(self, "About Pixel Classifier",
                          "Pixel Classifier: a desktop image classifier.<br>" + "<br>".join(versions))

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.session.shutdown()
        event.accept()
