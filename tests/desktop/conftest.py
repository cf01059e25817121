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
        qtbot.addWidget(window)
        window.show()
        if load:
            with qtbot.waitSignal(session.model_ready, timeout=WAIT):
                session.load_model()
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.isVisible():
            window.close()  # waits for the worker threads
        window.trainer.shutdown()
        window.session.shutdown()


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


def tflite_export_dialog(window, checkpoint, folder):
    """The window's export dialog for ``checkpoint``, set to TF Lite into ``folder``."""
    window.export_checkpoint(checkpoint)
    dialog = window.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("tflite"))
    dialog.folder.setText(str(folder))
    return dialog
