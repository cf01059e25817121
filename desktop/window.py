"""The main window: a Classify tab (drop, paste or open images; input check and top-k bars) and a
Train tab (data check, settings, live chart), with a banner for offers such as resuming a run."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (QApplication, QFileDialog, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                               QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from .banner import Banner
from .input_check import InputCheckView
from .jobs import JobLane
from .results_view import ResultsView
from .session import ClassifierSession
from .top_k import TopKBars
from .train_panel import TrainPanel
from .trainer import TrainController

TRAIN_DATA_SUFFIXES = (".tar", ".gz", ".tgz", ".xz", ".bz2")


def local_path(url) -> Path:
    """A dropped file URL as a path, byte for byte: ``QUrl.toLocalFile`` decodes the name as
    UTF-8, so a file whose name is not valid UTF-8 would be looked up under another name."""
    if os.name != "posix":
        return Path(url.toLocalFile())
    from urllib.parse import unquote_to_bytes
    encoded = url.path(QUrl.ComponentFormattingOption.FullyEncoded)
    return Path(os.fsdecode(unquote_to_bytes(encoded)))


class MainWindow(QMainWindow):
    """Turns drops, pastes and menu actions into ``images_dropped`` and friends."""

    images_dropped = Signal(list)  # list[Path]

    def __init__(self, session: ClassifierSession, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = session
        self.settings = settings or QSettings()
        self.setWindowTitle("Pixel Classifier")
        self.setAcceptDrops(True)
        self.results = ResultsView(session.items, self.checkpoint_meta)
        self.results.current_changed.connect(lambda *_: self._show_current())
        self.results.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.list_view = self.results.table  # the table of dropped images (tests, focus)
        self.hint = QLabel("Drop images or a folder here,\npaste with Ctrl+V, or open with Ctrl+O",
                           alignment=Qt.AlignmentFlag.AlignCenter, objectName="dropHint")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.hint)
        left_layout.addWidget(self.results, 1)
        self.input_check = InputCheckView()
        # Never squeezed below what it needs (the pictures are fixed-size); the bars give way.
        self.input_check.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.input_check.show_why.setChecked(self.settings.value("show_why", False, bool))
        self.input_check.saliency_wanted.connect(self._on_saliency_wanted)
        self.bars = TopKBars(int(self.settings.value("top_k", 5)))
        self.bars.k_changed.connect(lambda k: self.settings.setValue("top_k", k))
        self.bars.class_chosen.connect(self._explain_class)
        self.bars.threshold_changed.connect(session.items.set_threshold)
        self._explain_for: tuple[int, str] | None = None  # (item id, class) the user chose
        session.explained.connect(self._on_explained)
        session.keras_ready.connect(self._on_keras_ready)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.input_check)
        right_layout.addWidget(self.bars, 1)
        # A short window scrolls the detail side instead of squeezing the pictures under the
        # controls.
        right_scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        right_scroll.setWidget(right)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right_scroll)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([480, 620])
        self.trainer = TrainController(self)
        self.train_panel = TrainPanel(self.trainer, self.settings,
                                      lambda: (self.session.checkpoint, self.session.info))
        self.train_panel.form.restore_start()
        # Import, evaluation and export share one worker lane; the session's lanes stay free.
        self.library_lane = JobLane("library", self)
        self.undo_stack = QUndoStack(self)  # deletes and renames in the checkpoint library
        # The library, Checkpoints and Evaluate tabs are built when first needed (launch time).
        self._store = self._checkpoints_panel = self._evaluation_panel = None
        self.tabs = QTabWidget(documentMode=True)
        self.tabs.addTab(splitter, "Classify")
        self.tabs.addTab(self.train_panel, "Train")
        self.tabs.addTab(QWidget(), "Checkpoints")
        self.tabs.addTab(QWidget(), "Evaluate")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.banner = Banner()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.banner)
        central_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.model_status = QLabel()
        self.train_status = QLabel(objectName="trainStatus")
        # Many images (a folder): "n of m classified" and Stop, refreshed at most 10 times a second.
        self.classify_progress = QProgressBar(maximumWidth=220, textVisible=True, visible=False)
        self.classify_progress.setFormat("%v of %m classified")
        self.stop_button = QPushButton("Stop", visible=False, toolTip="Stop classifying (Esc)")
        self.stop_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.stop_button.clicked.connect(self.stop_classifying)
        self._progress_timer = QTimer(self, interval=100)
        self._progress_timer.timeout.connect(self._show_classify_progress)
        session.busy_changed.connect(self._on_session_busy)
        self.statusBar().addPermanentWidget(self.classify_progress)
        self.statusBar().addPermanentWidget(self.stop_button)
        self.statusBar().addPermanentWidget(self.train_status)
        self.statusBar().addPermanentWidget(self.model_status)
        self.trainer.progress.connect(self._on_train_progress)
        self.trainer.running_changed.connect(self._on_training_running)
        self.train_panel.checkpoint_trained.connect(self._offer_checkpoint)
        self.train_panel.checkpoint_trained.connect(self._refresh_library)
        self._make_menus()
        self.images_dropped.connect(session.add_paths)
        session.items.item_changed.connect(self._on_item_changed)
        session.items.rowsInserted.connect(self._on_rows_inserted)
        session.model_loading.connect(lambda name: self.model_status.setText(f"Loading model {name}…"))
        session.model_ready.connect(self._on_model_ready)
        session.model_failed.connect(self._on_model_failed)
        self.resize(1100, 720)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._offer_resume()

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open Images…", QKeySequence.StandardKey.Open, self.open_files)
        self._action(file_menu, "Open &Folder…", None, self.open_folder)
        self._action(file_menu, "&Paste Image", QKeySequence.StandardKey.Paste, self.paste)
        self._action(file_menu, "&Clear List", None, self.session.items.clear)
        file_menu.addSeparator()
        self._action(file_menu, "&Import Checkpoint…", None, lambda: (
            self.tabs.setCurrentWidget(self.checkpoints_panel), self.checkpoints_panel.import_file()))
        self._action(file_menu, "&Export Active Checkpoint…", QKeySequence("Ctrl+E"),
                     lambda: self.export_checkpoint(self.session.checkpoint))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        edit.addActions([self.undo_action, self.redo_action])
        view = self.menuBar().addMenu("&View")
        for n, name in enumerate(("&Classify", "&Train", "C&heckpoints", "&Evaluate")):
            self._action(view, name, QKeySequence(f"Ctrl+{n + 1}"),
                         lambda _=False, n=n: self.tabs.setCurrentIndex(n))
        view.addSeparator()
        self.strict_action = self._action(view, "&Strict 32×32 input (reject others)", None,
                                          self.session.set_strict)
        self.strict_action.setCheckable(True)
        help_menu = self.menuBar().addMenu("&Help")
        if sys.platform.startswith("linux"):
            self._action(help_menu, "Add to Applications &Menu", None, self.install_desktop_entry)
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
        paths = [local_path(url) for url in mime.urls() if url.isLocalFile()]
        if (len(paths) == 1 and self.tabs.currentWidget() is self.train_panel
                and (paths[0].is_dir() or paths[0].name.lower().endswith(TRAIN_DATA_SUFFIXES))):
            self.train_panel.set_data_path(paths[0])  # a data set dropped on the Train tab
        elif paths:
            self.tabs.setCurrentIndex(0)
            self.images_dropped.emit(paths)
        elif mime.hasImage():
            self._add_qimage(mime.imageData(), "dropped image")
        event.acceptProposedAction()

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return
        paths = [local_path(u) for u in mime.urls() if u.isLocalFile()]
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
            self.results.select_row(first)

    def _current_item(self):
        return self.results.current_item()

    def checkpoint_meta(self) -> dict:
        """What identifies the active checkpoint in exported results."""
        info = self.session.info
        return {"name": self.session.checkpoint.stem,
                "model_sha256": info.model_sha256 if info else "",
                "data_fingerprint": info.data_fingerprint if info else ""}

    def _on_item_changed(self, item_id: int) -> None:
        item = self._current_item()
        if item is not None and item.id == item_id:
            self._show_current()

    def _show_current(self) -> None:
        item = self._current_item()
        info = self.session.info
        size = tuple(info.preprocessing.size) if info else (32, 32)
        self.input_check.show_item(item, size, info.preprocessing if info else None)
        if item is None:
            self.bars.show_message("Drop an image to see predictions.")
        elif item.state == "failed":
            self.bars.show_message(f"Cannot use this file: {item.error}")
        elif item.state == "stopped":
            self.bars.show_message("Not classified: you pressed Stop. Drop it again to classify it.")
        elif item.probabilities is None:
            self.bars.show_message("Loading model…" if self.session.classifier is None
                                   else "Classifying…")
        else:
            chosen = self._chosen_class(item, info.class_names)
            self.bars.show_probabilities(item.probabilities, info.class_names,
                                         chosen if self.input_check.wants_saliency() else None)
            if self.input_check.wants_saliency():
                self._request_saliency(item, info.class_names.index(chosen))

    # -- why this class ------------------------------------------------------------------------
    def _chosen_class(self, item, names) -> str:
        if self._explain_for and self._explain_for[0] == item.id:
            return self._explain_for[1]
        return names[int(np.argmax(item.probabilities))]

    def _request_saliency(self, item, class_index: int) -> None:
        method = self.input_check.method.currentData()
        if self.session.explain(item, class_index, method) is not None:
            self.input_check.clear_saliency(
                f"Finding the evidence for {self.session.info.class_names[class_index]}…")

    def _explain_class(self, label: str) -> None:
        item = self._current_item()
        if item is None or item.probabilities is None:
            return
        self._explain_for = (item.id, label)
        if not self.input_check.wants_saliency():
            self.input_check.show_why.setChecked(True)  # choosing a class asks to see it
            return
        self._request_saliency(item, self.session.info.class_names.index(label))

    def _on_saliency_wanted(self) -> None:
        self.settings.setValue("show_why", self.input_check.wants_saliency())
        self._show_current()

    def _on_keras_ready(self) -> None:
        """Grad-CAM needs the Keras model: a map made by occlusion meanwhile is redone."""
        if self.input_check.wants_saliency() and self.input_check.method.currentData() == "grad-cam":
            self._show_current()

    def _on_explained(self, result) -> None:
        item = self._current_item()
        if item is None or item.id != result.item_id:
            return
        name = self.session.info.class_names[result.class_index]
        method = "occlusion" if result.method == "occlusion" else "Grad-CAM"
        wanted = self.input_check.method.currentData()
        if not result.final:
            method, note = "Grad-CAM preview", " Occlusion follows."
        elif result.method != wanted:
            note = " Grad-CAM follows once the full model has loaded."
        else:
            note = ""
        self.input_check.set_saliency(result.heat, f"Evidence for {name} ({method}, "
                                      f"{result.seconds * 1000:.0f} ms): brighter = the "
                                      f"prediction leans more on it.{note}")

    def _on_model_ready(self, info) -> None:
        from training.calibration import threshold_of
        threshold, calibrated = threshold_of(info)
        images = (info.calibration or {}).get("images")
        self.bars.set_calibration(threshold, calibrated,
                                  f" on {images} validation images" if images else "")
        self.results.set_class_names(info.class_names)
        acc = info.metrics.get("test_accuracy")
        extra = f", test accuracy {acc:.1%}" if acc else ""
        self.model_status.setText(f"Model: {info.name} ({len(info.class_names)} classes{extra})")
        self._show_current()

    PROGRESS_FROM = 10  # images: fewer finish too fast for a progress bar to help

    def _on_session_busy(self, busy: bool) -> None:
        if busy:
            self._progress_timer.start()
        else:
            self._progress_timer.stop()
            self.classify_progress.hide()
            self.stop_button.hide()

    def _show_classify_progress(self) -> None:
        done, total = self.session.progress()
        show = total >= self.PROGRESS_FROM and done < total
        if show:
            self.classify_progress.setRange(0, total)
            self.classify_progress.setValue(done)
        self.classify_progress.setVisible(show)
        self.stop_button.setVisible(show)

    def stop_classifying(self) -> None:
        stopped = self.session.stop_classifying()
        self.classify_progress.hide()
        self.stop_button.hide()
        if stopped:
            self.statusBar().showMessage(f"Stopped: {stopped} image(s) not classified", 5000)

    def _on_model_failed(self, reason: str) -> None:
        self.model_status.setText("Model not loaded")
        self.statusBar().showMessage(f"Could not load the model: {reason}")
        self.bars.show_message(f"Could not load the model: {reason}")

    def install_desktop_entry(self) -> None:
        from .desktop_entry import install_desktop_entry
        try:
            entry = install_desktop_entry()[-1]
        except OSError as exc:
            QMessageBox.warning(self, "Pixel Classifier", f"Could not add the menu entry: {exc}")
            return
        self.statusBar().showMessage(f"Added Pixel Classifier to the applications menu ({entry})",
                                     8000)

    def about(self) -> None:
        from .about import about_html
        QMessageBox.about(self, "About Pixel Classifier", about_html(self.session.checkpoint.stem))

    # -- training -------------------------------------------------------------------------------
    def _on_tab_changed(self, index: int) -> None:
        if index == 2:
            self.checkpoints_panel  # noqa: B018 (built on first visit)
            self.store.refresh()  # listed when shown, not at launch
        elif index == 3:
            self.evaluation_panel  # noqa: B018
        panel = self.train_panel
        if (self.tabs.widget(index) is panel and panel.data_view.check is None and panel.data_view.path()
                and self.trainer.data is None and not self.trainer.running()):
            panel.check_data()  # the remembered data set, checked when first needed

    def _on_training_running(self, running: bool) -> None:
        if not running:
            self.train_status.clear()

    def _on_train_progress(self, fraction: float, _message: str) -> None:
        self.train_status.setText(f"Training {fraction:.0%}" + (" (paused)" if self.trainer.paused()
                                                                 else ""))

    def _offer_checkpoint(self, result) -> None:
        acc = result.info.metrics.get("val_accuracy_tta", result.info.metrics.get("val_accuracy"))
        acc_text = f" (validation accuracy {acc:.1%})" if acc is not None else ""
        self.banner.offer(f"New checkpoint {result.checkpoint.stem}{acc_text} is saved in your "
                          "data folder. Use it for predictions?",
                          [("Use it", lambda: self.use_checkpoint(result.checkpoint)),
                           ("Keep current", None)])

    def use_checkpoint(self, path) -> None:
        """Predict with ``path`` from now on (the images shown are re-classified); remembered."""
        path = Path(path)
        self.session.load_model(path)
        self.settings.setValue("checkpoint", str(path))
        if self._store is not None and self.store.active != path:
            self.store.active = path
            self.store.refresh()
        if self._evaluation_panel is not None and self._evaluation_panel.job is None:
            self._evaluation_panel.set_checkpoint(path)
        self.statusBar().showMessage(f"Switched to {path.stem}", 5000)

    # -- the checkpoint library, built when first needed ----------------------------------------
    @property
    def store(self):
        if self._store is None:
            from training.paths import bundled_checkpoint, user_checkpoints_dir, user_data_dir

            from .checkpoint_store import CheckpointStore
            self._store = CheckpointStore(user_checkpoints_dir(), bundled_checkpoint(),
                                          user_data_dir() / "trash", self.undo_stack, self)
            self._store.active = self.session.checkpoint
            self._store.active_changed.connect(self.use_checkpoint)
        return self._store

    @property
    def checkpoints_panel(self):
        if self._checkpoints_panel is None:
            from .checkpoints_panel import CheckpointsPanel
            panel = CheckpointsPanel(self.store, self.library_lane)
            panel.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
            panel.evaluate_requested.connect(self.evaluate_checkpoint)
            panel.export_requested.connect(self.export_checkpoint)
            self._checkpoints_panel = panel
            self._put_tab(2, panel, "Checkpoints")
        return self._checkpoints_panel

    @property
    def evaluation_panel(self):
        if self._evaluation_panel is None:
            from .evaluation_panel import EvaluationPanel
            panel = EvaluationPanel(self.library_lane, self.settings)
            panel.set_checkpoint(self.session.checkpoint)
            panel.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
            panel.evaluated.connect(self._refresh_library)
            self._evaluation_panel = panel
            self._put_tab(3, panel, "Evaluate")
        return self._evaluation_panel

    def _put_tab(self, index: int, widget, title: str) -> None:
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)
        placeholder = self.tabs.widget(index)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, widget, title)
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)
        placeholder.deleteLater()

    def _refresh_library(self, *_) -> None:
        if self._store is not None:
            self._store.refresh()

    def evaluate_checkpoint(self, path) -> None:
        self.evaluation_panel.set_checkpoint(Path(path))
        self.tabs.setCurrentWidget(self.evaluation_panel)

    def export_checkpoint(self, path) -> None:
        from .export_dialog import ExportDialog
        self.export_dialog = ExportDialog(Path(path), self.library_lane, self.settings, self)
        self.export_dialog.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.export_dialog.show()

    def _offer_resume(self) -> None:
        runs = self.trainer.unfinished_runs()
        if not runs:
            return
        record = runs[0]
        done, total = record.completed_epochs(), record.config.get("epochs", "?")
        self.banner.offer(
            f"A training run on {Path(record.data).name} (started {record.created[:16].replace('T', ' ')} "
            f"UTC) ended unexpectedly after epoch {done} of {total}. Resume it from epoch {done + 1}?",
            [("Resume", lambda: self.resume_run(record)),
             ("Discard", lambda: self.trainer.discard(record))])

    def resume_run(self, record) -> None:
        self.tabs.setCurrentWidget(self.train_panel)
        self.train_panel.data_view.path_edit.setText(record.data)
        self.trainer.resume(record)

    def closeEvent(self, event) -> None:
        if self.trainer.running():
            answer = QMessageBox.question(
                self, "Training is running",
                "Stop training and close? The best epoch so far is kept as a checkpoint.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.settings.setValue("geometry", self.saveGeometry())
        self.trainer.shutdown()
        self.train_panel.chart.stop()
        self._progress_timer.stop()
        self.library_lane.shutdown()
        if self._store is not None:
            self.store.close()  # deleted checkpoints are gone for good now
        self.session.shutdown()
        event.accept()
