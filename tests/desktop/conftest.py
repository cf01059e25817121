"""Desktop fixtures: a window on a given checkpoint with private settings, and real drops; a test
fails when a worker job raised a programming error, or a window's timer outlives its closing."""
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.session import ClassifierSession
from desktop.window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60_000  # ms: model load includes importing TensorFlow on a cold start


# A programming error in a worker job: the lane turns every exception into a "failed" message,
# so a test would pass over it unless it is looked for.
BUGS = (TypeError, AttributeError, NameError, ZeroDivisionError, AssertionError, IndexError,
        KeyError)


def pytest_configure(config):
    config.addinivalue_line("markers", "job_bug_expected: a test that makes a worker job fail "
                                       "with a programming error (a TypeError...) on purpose")


@pytest.fixture(autouse=True)
def _no_job_bugs(request):
    """Fail a test in which a worker job ended in a programming error (a TypeError, say), which
    the lane only logs and reports as the job's failure."""
    import logging
    import sys
    bugs = []

    class Bugs(logging.Handler):
        def emit(self, record):  # (in the job's thread, inside the lane's ``except``)
            exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
            if isinstance(exc, BUGS):
                bugs.append(record.getMessage())

    handler, jobs = Bugs(logging.ERROR), logging.getLogger("desktop.jobs")
    jobs.addHandler(handler)
    yield
    jobs.removeHandler(handler)
    if not request.node.get_closest_marker("job_bug_expected"):
        assert not bugs, "a worker job failed with a programming error:\n" + "\n".join(bugs)


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
        # (pytest-qt closed it already): closing must have stopped every lane and child process,
        # and every timer the app made for the window and its session (Qt's own, such as the
        # status bar's message timeout, are not ours). Checked here, while they exist: the
        # autouse check runs after the window is deleted, when its timers count as stopped.
        left += [lane.name for lane in window_lanes(window) if lane.thread.is_alive()]
        left += [f"timer {timer_name(t)}" for t in
                 window.findChildren(QTimer) + window.session.findChildren(QTimer)
                 if shiboken6.createdByPython(t) and t.isActive()]
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


def timer_name(timer) -> str:
    """``ClassName.attribute`` of a timer's parent (or its objectName), for a failure message."""
    parent = timer.parent()
    attribute = next((k for k, v in getattr(parent, "__dict__", {}).items() if v is timer),
                     None)
    return f"{type(parent).__name__}.{attribute or timer.objectName() or '?'}"


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
