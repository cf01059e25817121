"""Desktop fixtures: a window on a given checkpoint with private settings, and real drops."""
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.session import ClassifierSession
from desktop.window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60_000  # ms: model load includes importing TensorFlow on a cold start


@pytest.fixture
def make_window(qtbot, tmp_path):
    windows = []

    def make(checkpoint, load=True):
        session = ClassifierSession(checkpoint)
        window = MainWindow(session, QSettings(str(tmp_path / "settings.ini"),
                                               QSettings.Format.IniFormat))
        # A test that failed while a run trains leaves its window open; pytest-qt then closes it,
        # and the "stop the training?" dialog, modal and never answered, hung the suite: closing
        # at teardown stops the run without asking (tests of the dialog close their windows).
        qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "confirm_close", False))
        window.resize(1100, 720)  # as on a usual desktop: the offscreen screen is only 800x800
        window.show()
        if load:
            with qtbot.waitSignal(session.model_ready, timeout=WAIT):
                session.load_model()
        windows.append(window)
        return window

    yield make
    import multiprocessing
    left = []
    for window in windows:
        if window.isVisible():
            window.close()  # waits for the worker threads
        # (pytest-qt closed it already): closing must have stopped every lane and child process
        left += [lane.name for lane in window_lanes(window) if lane.thread.is_alive()]
    left += [p.name for p in multiprocessing.active_children()]
    try:
        assert not left, f"closing the window left these running: {left}"
    finally:
        for window in windows:
            window.trainer.shutdown()
            window.session.shutdown()
        # Deleted now, between tests: left to Python's garbage collector, a window was deleted
        # whenever a later test's Python code happened to run, once in the middle of Qt
        # restyling every widget for a new style sheet (a segfault).
        import gc

        from PySide6.QtCore import QCoreApplication, QEvent
        for window in windows:
            window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        windows.clear()
        gc.collect()


def window_lanes(window):
    """Every worker lane a window owns: the session's, the trainer's and the library tabs'."""
    session = window.session
    return (session.walker, session.files, session.model_lane, session.loader,
            window.trainer.lane, window.library.lane, window.library.import_lane,
            window.classify.results.copy_lane)


def drop(widget, paths):
    """Deliver a real drag-enter and drop of local file URLs, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.rect().center())
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


class JobRecord:
    """Every job queued on a lane from now on: its progress and how it ended, connected before
    the job is queued (a job on an idle lane can end before ``start()`` returns)."""

    def __init__(self, monkeypatch, lane) -> None:
        self.progress: list[tuple] = []
        self.ended: list[tuple[str, object]] = []
        submit = lane.submit

        self.jobs: list = []  # kept alive: a deleted job's queued signals are never delivered

        def recording(job, urgent=False):
            self.jobs.append(job)
            job.progress.connect(lambda *args: self.progress.append(args))
            job.finished.connect(lambda result: self.ended.append(("finished", result)))
            job.failed.connect(lambda reason: self.ended.append(("failed", reason)))
            return submit(job, urgent)

        monkeypatch.setattr(lane, "submit", recording)


def tflite_export_dialog(window, checkpoint, folder):
    """The window's export dialog for ``checkpoint``, set to TF Lite into ``folder``."""
    window.export_checkpoint(checkpoint)
    dialog = window.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("tflite"))
    dialog.folder.setText(str(folder))
    return dialog
