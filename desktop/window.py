"""The main window: turns drops, pastes and menu actions into images for the session, and holds
the tabs (Classify: ``classify_tab``; Train; Checkpoints and Evaluate: ``library_tabs``), the
status bar, a banner for offers such as resuming a run, and the orderly close."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QTabWidget,
                               QVBoxLayout, QWidget)

from .banner import Banner
from .classify_tab import ClassifyTab
from .library_tabs import LibraryTabs
from .mime_input import WindowInput
from .session import ClassifierSession
from .stored import stored
from .train_panel import TrainPanel
from .trainer import TrainController

class MainWindow(WindowInput, QMainWindow):
    """Turns drops, pastes and menu actions into ``images_dropped`` and friends."""

    images_dropped = Signal(list)  # list[Path]

    def __init__(self, session: ClassifierSession, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = session
        self.settings = settings or QSettings()
        self.confirm_close = True  # False: closing during a run stops it without asking
        self.setWindowTitle("Pixel Classifier")
        self.setAcceptDrops(True)
        self.classify = ClassifyTab(session, self.settings)
        self.classify.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        # The parts other code and the tests reach through the window.
        self.results, self.hint = self.classify.results, self.classify.hint
        self.input_check, self.bars = self.classify.input_check, self.classify.bars
        self.list_view = self.results.table
        self.trainer = TrainController(self)
        self.train_panel = TrainPanel(self.trainer, self.settings,
                                      lambda: (self.session.checkpoint, self.session.info))
        self.train_panel.form.restore_start()
        self.tabs = QTabWidget(documentMode=True)
        self.tabs.addTab(self.classify, "Classify")
        self.tabs.addTab(self.train_panel, "Train")
        self.library = LibraryTabs(self, self.tabs, session, self.settings)
        self.library.message.connect(self.statusBar().showMessage)
        self.library.use_requested.connect(self.use_checkpoint)
        # the checkpoint in use evaluated: the status bar's test accuracy is its new one
        self.library.checkpoint_evaluated.connect(
            lambda path: path == self.session.checkpoint and self.session.reread_info(path))
        self.library_lane, self.undo_stack = self.library.lane, self.library.undo_stack
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.banner = Banner()
        # The tabs scroll where the screen is smaller than what they need (about 860 pixels
        # wide: a 1024x700 screen at 150 % is 683x467 in Qt's pixels), instead of controls
        # off-screen. The banner stays above, outside: inside, its wrapped text made the area
        # size the tabs by their height for the width, and they scrolled at 900x600 (Start too).
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame,
                                  focusPolicy=Qt.FocusPolicy.NoFocus)
        self.scroll.setWidget(self.tabs)
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.banner)
        central_layout.addWidget(self.scroll, 1)
        self.setCentralWidget(central)
        self.model_status = QLabel()
        self.train_status = QLabel(objectName="trainStatus")
        self._train_fraction = 0.0  # the last progress shown there
        self.classify_progress, self.stop_button = self.classify.progress, self.classify.stop_button
        self._progress_timer = self.classify.progress_timer
        self.statusBar().addPermanentWidget(self.classify_progress)
        self.statusBar().addPermanentWidget(self.stop_button)
        self.statusBar().addPermanentWidget(self.train_status)
        self.statusBar().addPermanentWidget(self.model_status)
        self.trainer.progress.connect(self._on_train_progress)
        self.trainer.paused_changed.connect(lambda _paused: self._show_train_status())
        self.trainer.running_changed.connect(self._on_training_running)
        self.trainer.run_failed.connect(lambda _reason: self._offer_resume())  # a dead child
        self.train_panel.checkpoint_trained.connect(self._offer_checkpoint)
        self.train_panel.checkpoint_trained.connect(self.library.refresh)
        self._make_menus()
        self.images_dropped.connect(session.add_paths)
        session.notice.connect(lambda text: self.statusBar().showMessage(text, 8000))
        session.model_loading.connect(lambda name: self.model_status.setText(f"Loading model {name}…"))
        session.model_loading.connect(lambda _name: self.train_panel.model_changed())
        session.model_ready.connect(self._on_model_ready)
        session.info_changed.connect(self._on_model_ready)  # (the status line only)
        session.model_failed.connect(self._on_model_failed)
        session.model_refused.connect(self._on_model_refused)
        self.resize(self._first_size())
        geometry = stored(self.settings, "geometry", None, QByteArray)
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._offer_resume()

    def _first_size(self) -> QSize:
        """1100x720, less where the screen is smaller: larger than its screen (a 1024x700
        laptop; 1920x1200 at 200 % is 960x600), the window hid its status bar and model input."""
        free = self.screen().availableGeometry()
        return QSize(min(1100, int(0.95 * free.width())), min(720, int(0.9 * free.height())))

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open Images…", QKeySequence.StandardKey.Open, self.open_files)
        self._action(file_menu, "Open &Folder…", None, self.open_folder)
        self._action(file_menu, "&Paste Image", QKeySequence.StandardKey.Paste, self.paste)
        self._action(file_menu, "&Clear List", None, self.session.clear)
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

    # -- output -------------------------------------------------------------------------------
    def _current_item(self):
        return self.classify.current_item()

    def _on_model_ready(self, info) -> None:
        acc = info.metrics.get("test_accuracy")
        extra = f", test accuracy {acc:.1%}" if acc else ""
        # its file's name (renamed in a file manager, the sidecar still says the old one)
        name = self.session.checkpoint.stem
        self.model_status.setText(f"Model: {name} ({len(info.class_names)} classes{extra})")

    def _on_model_failed(self, reason: str) -> None:
        self.model_status.setText("Model not loaded")
        self.statusBar().showMessage(f"Could not load the model: {reason}")
        if stored(self.settings, "checkpoint", "") == str(self.session.checkpoint):
            self.settings.remove("checkpoint")  # the next launch starts on the bundled one

    def _on_model_refused(self, path: Path, reason: str) -> None:
        """The checkpoint switched to failed to load: the model used before is back, marked in
        use and remembered again."""
        self._remember(self.session.checkpoint)
        self._still_using(path, reason)
        self.train_panel.model_changed()

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
        QMessageBox.about(self, "About Pixel Classifier", about_html(self.session.checkpoint.stem,
                                                                  self.settings.fileName()))

    # -- training -------------------------------------------------------------------------------
    def _on_tab_changed(self, index: int) -> None:
        self.library.on_tab_changed(index)
        panel = self.train_panel
        if (self.tabs.widget(index) is panel and panel.data_view.check is None and panel.data_view.path()
                and self.trainer.data is None and not self.trainer.running()
                and self.trainer.check_job is None):  # once: a visit must not restart a read
            panel.check_data()  # the remembered data set, checked when first needed

    def _on_training_running(self, running: bool) -> None:
        self._train_fraction = 0.0
        if not running:
            self.train_status.clear()

    def _on_train_progress(self, fraction: float, _message: str) -> None:
        self._train_fraction = fraction
        self._show_train_status()

    def _show_train_status(self) -> None:
        """"Training 4%", and "(paused)" from the moment Pause is pressed until Resume (a
        progress report could be a while coming, or be the one the throttle drops)."""
        if self.trainer.running():
            self.train_status.setText(f"Training {self._train_fraction:.0%}" +
                                      (" (paused)" if self.trainer.paused() else ""))

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
        if self.session.reread_info(path):  # the model in use, renamed: nothing to load again
            self._remember(path)
            self.library.active_changed(path)
            return
        reason = self.session.load_model(path)
        if reason:
            if self.session.info is not None:
                self._still_using(path, reason)
            return
        self._remember(path)
        self.library.active_changed(path)
        self.statusBar().showMessage(f"Switched to {path.stem}", 5000)

    def _still_using(self, path: Path, reason: str) -> None:
        """``path`` cannot be used: the model in use stays in use (and marked so)."""
        self.library.active_changed(self.session.checkpoint)
        self.statusBar().showMessage(f"Cannot use {path.stem}: {reason}. Still using "
                                     f"{self.session.checkpoint.stem}.", 10000)

    def _remember(self, path: Path) -> None:
        """The checkpoint in use, for the next launch."""
        from training.paths import bundled_checkpoint
        if path.resolve() == bundled_checkpoint().resolve():
            # not its path: a newer copy of the app, unpacked elsewhere, brings its own
            self.settings.remove("checkpoint")
        else:
            self.settings.setValue("checkpoint", str(path))

    # -- the checkpoint library (its tabs are built on first visit) ----------------------------
    store = property(lambda self: self.library.store)
    checkpoints_panel = property(lambda self: self.library.checkpoints_panel)
    evaluation_panel = property(lambda self: self.library.evaluation_panel)
    export_dialog = property(lambda self: self.library.export_dialog)

    def evaluate_checkpoint(self, path) -> None:
        self.library.evaluate(path)

    def export_checkpoint(self, path) -> None:
        self.library.export(path)

    def _offer_resume(self) -> bool:
        """Offer the newest unfinished run for resumption; False when there is none."""
        runs = self.trainer.unfinished_runs()
        if not runs:
            return False
        record = runs[0]
        done, total = record.completed_epochs(), record.config.get("epochs", "?")
        missing = "" if Path(record.data).exists() else (
            f" Its data ({record.data}) is not there now: reconnect it first, or discard the run.")
        # Resume and Discard read the run's record again at the click (the trainer's claim and
        # discard): another copy of the app, open on the same data folder, offers it too
        self.banner.offer(
            f"A training run on {Path(record.data).name} (started {record.created[:16].replace('T', ' ')} "
            f"UTC) did not finish: it stopped after epoch {done} of {total}. Resume it from epoch "
            f"{done + 1}?{missing}",
            [("Resume", lambda: self.resume_run(record)),
             ("Discard", lambda: self.discard_run(record))])
        return True

    def resume_run(self, record) -> None:
        from training.runs import RunUnavailable
        if self.trainer.running():
            self.statusBar().showMessage("A training run is going: stop it before resuming "
                                         "another.", 6000)
            self._offer_resume()  # the banner closed on the click: the offer stays
            return
        try:
            record = self.trainer.claim(record)
        except RunUnavailable as exc:
            self._run_unavailable("resumed", exc)
            return
        if record is None:
            return  # the data folder cannot be written: run_failed said so, and offers it again
        # path and run first: showing the Train tab must not start a check of other data
        self.train_panel.forget_checked_data()  # Start after the run must not train other data
        self.train_panel.data_view.path_edit.setText(record.data)
        self.trainer.resume(record)
        self.tabs.setCurrentWidget(self.train_panel)

    def discard_run(self, record) -> None:
        from training.runs import RunUnavailable
        try:
            self.trainer.discard(record)
        except RunUnavailable as exc:
            self._run_unavailable("discarded", exc)
        except OSError as exc:
            self.statusBar().showMessage(f"Could not discard the run: {exc}", 10000)
            self._offer_resume()

    def _run_unavailable(self, what: str, reason) -> None:
        """The offered run was taken or removed by another copy of the app since it was offered:
        it is offered no more, and the banner says why (or the status bar, when the banner
        offers another unfinished run instead)."""
        text = f"Not {what}: {reason}."
        if self._offer_resume():
            self.statusBar().showMessage(text, 10000)
        else:
            self.banner.offer(text, [("OK", None)])

    def closeEvent(self, event) -> None:
        if self.trainer.running() and self.confirm_close:
            answer = QMessageBox.question(
                self, "Training is running",
                "Stop training and close? The best epoch so far is kept as a checkpoint.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.settings.setValue("geometry", self.saveGeometry())
        self.session.shutdown()  # first: a folder's reading stops now, not after the rest
        self.trainer.shutdown()
        self.train_panel.chart.stop()
        self.classify.progress_timer.stop()
        self.classify.results.shutdown()
        self.library.close()
        event.accept()
