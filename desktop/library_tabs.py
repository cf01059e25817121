"""The checkpoint library's place in the window: the Checkpoints and Evaluate tabs (built on
first visit, so launch does not pay for them), the undo stack of its deletes and renames, the
worker lane its evaluations and exports share (one at a time), the one for imports (a quick check
that never waits behind an evaluation), and the export dialog."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QWidget

from .jobs import JobLane
from .stored import stored

CHECKPOINTS_TAB, EVALUATE_TAB = 2, 3


class LibraryTabs(QObject):
    """Owns the library's widgets; the window asks it for them and tells it what changed."""

    message = Signal(str, int)  # text, milliseconds on the status bar
    use_requested = Signal(object)  # Path: the user picked a checkpoint for predictions
    checkpoint_evaluated = Signal(object)  # Path: its sidecar has new metrics

    def __init__(self, window, tabs, session, settings) -> None:
        super().__init__(window)
        self.window, self.tabs, self.session, self.settings = window, tabs, session, settings
        self.lane = JobLane("library", self)  # evaluations and exports, one at a time (2 cores)
        self.import_lane = JobLane("import", self)  # a quick check: never behind an evaluation
        self.undo_stack = QUndoStack(self)
        self._store = self._checkpoints = self._evaluation = None
        self.export_dialog = None
        self._exports = []  # export dialogs still open or exporting (they are not modal)
        tabs.insertTab(CHECKPOINTS_TAB, QWidget(), "Checkpoints")
        tabs.insertTab(EVALUATE_TAB, QWidget(), "Evaluate")

    @property
    def store(self):
        if self._store is None:
            from training.paths import bundled_checkpoint, user_checkpoints_dir, user_data_dir

            from .checkpoint_store import CheckpointStore
            self._store = CheckpointStore(user_checkpoints_dir(), bundled_checkpoint(),
                                          user_data_dir() / "trash", self.undo_stack, self)
            self._store.active = self.session.checkpoint
            self._store.in_use = self._paths_in_use
            self._store.active_changed.connect(self.use_requested)
            self._store.moved.connect(self._follow_remembered)
        return self._store

    def _follow_remembered(self, old: Path, new: Path) -> None:
        """A rename (or its undo) of the checkpoint another copy of the app uses and will open
        next time: the shared setting follows (it fell back to the bundled one at launch)."""
        self.settings.sync()  # what the other copy wrote since
        if stored(self.settings, "checkpoint", "") == str(old):
            self.settings.setValue("checkpoint", str(new))

    def _paths_in_use(self) -> dict:
        """Checkpoints not to be renamed or deleted now, each with what holds it: the one a
        training run writes and the one it started from (its sidecar names it; a resume reads
        it), the one an evaluation stores its result in, the one being exported, the parents
        of unfinished runs that can still be resumed, and those of runs that another copy of the
        app, open on the same data folder, trains now."""
        job = "a running job (training, evaluation or export): stop it first"
        paths = {}
        trainer = getattr(self.window, "trainer", None)
        for record in trainer.unfinished_runs() if trainer is not None else ():
            paths[Path(record.out)] = ("an unfinished training run that writes it: resume or "
                                       "discard that run first")
            if record.parent:
                paths[Path(record.parent)] = ("an unfinished training run that started from it: "
                                              "resume or discard that run first")
        from training.runs import runs_of_other_live_processes
        for record in runs_of_other_live_processes():  # another copy of the app trains it
            elsewhere = "a training run in another Pixel Classifier window: stop it there first"
            paths[Path(record.out)] = elsewhere
            if record.parent:
                paths[Path(record.parent)] = elsewhere
        self._exports = [d for d in self._exports if d.job is not None or d.isVisible()]
        paths.update((Path(d.checkpoint), job) for d in self._exports if d.job is not None)
        if trainer is not None and trainer.running() and trainer.record is not None:
            paths[Path(trainer.record.out)] = job
            if trainer.record.parent:
                paths[Path(trainer.record.parent)] = ("a running job (training started from "
                                                      "it): stop it first")
        evaluation = self._evaluation
        if evaluation is not None and evaluation.job is not None and evaluation._running:
            paths[Path(evaluation._running)] = job
        return paths

    @property
    def checkpoints_panel(self):
        if self._checkpoints is None:
            from .checkpoints_panel import CheckpointsPanel
            panel = CheckpointsPanel(self.store, self.import_lane)
            panel.message.connect(lambda text: self.message.emit(text, 6000))
            panel.evaluate_requested.connect(self.evaluate)
            panel.export_requested.connect(self.export)
            self._checkpoints = panel
            self._put_tab(CHECKPOINTS_TAB, panel, "Checkpoints")
        return self._checkpoints

    @property
    def evaluation_panel(self):
        if self._evaluation is None:
            from .evaluation_panel import EvaluationPanel
            panel = EvaluationPanel(self.lane, self.settings)
            panel.fallback = lambda: self.session.checkpoint
            panel.set_checkpoint(self.session.checkpoint)
            self.store.moved.connect(panel.follow)
            self.store.listed.connect(panel.refresh_checkpoints)  # a delete undone or redone
            panel.message.connect(lambda text: self.message.emit(text, 6000))
            panel.evaluated.connect(self.refresh)
            panel.evaluated.connect(
                lambda _record: self.checkpoint_evaluated.emit(panel.evaluated_checkpoint))
            self._evaluation = panel
            self._put_tab(EVALUATE_TAB, panel, "Evaluate")
        return self._evaluation

    def _put_tab(self, index: int, widget, title: str) -> None:
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)
        placeholder = self.tabs.widget(index)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, widget, title)
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)
        placeholder.deleteLater()

    def on_tab_changed(self, index: int) -> None:
        if index == CHECKPOINTS_TAB:
            self.checkpoints_panel  # noqa: B018 (built on first visit)
            self.store.refresh()  # listed when shown, not at launch
        elif index == EVALUATE_TAB:
            self.evaluation_panel  # noqa: B018

    def refresh(self, *_) -> None:
        """A checkpoint was trained or evaluated: list it anew (if the list was ever shown)."""
        if self._store is not None:
            self._store.refresh()

    def active_changed(self, path: Path) -> None:
        """Predictions now use ``path``: mark it, and evaluate it next unless one is running."""
        if self._store is not None and self._store.active != path:
            self._store.active = path
            self._store.refresh()
        if self._evaluation is not None and self._evaluation.job is None:
            self._evaluation.set_checkpoint(path)

    def evaluate(self, path) -> None:
        self.evaluation_panel.set_checkpoint(Path(path))
        self.tabs.setCurrentWidget(self.evaluation_panel)

    def export(self, path) -> None:
        from .export_dialog import ExportDialog
        dialog = ExportDialog(Path(path), self.lane, self.settings, self.window)
        self.export_dialog = dialog
        self._exports.append(dialog)  # each one's running export keeps its checkpoint
        dialog.message.connect(lambda text: self.message.emit(text, 8000))
        # not modal: the checkpoint may be renamed (it follows) or deleted (Export is refused)
        self.store.moved.connect(dialog.follow)
        self.store.listed.connect(dialog.check_present)
        dialog.show()

    def close(self) -> None:
        """The window closes: stop the library's work; what was deleted is gone for good."""
        self.lane.shutdown()
        self.import_lane.shutdown()
        if self._store is not None:
            self._store.close()
