"""The app's log file and what happens on an unexpected exception: it is written to the log with
its traceback and the user sees one friendly dialog naming the log, instead of a silent exit.

The log rotates (1 MB, 3 old files kept) in the per-user log folder. Exceptions raised on worker
threads are logged there too and reported on the GUI thread.
"""
from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot

LOG_NAME = "pixelclassifier.log"
log = logging.getLogger("pixelclassifier")


def setup_logging(folder: Path) -> Path | None:
    """Send our log records and Python warnings to a rotating file in ``folder``; where that
    cannot be written (a log folder left owned by root by one ``sudo`` launch, a read-only
    home), to standard error instead, and return None: the app still opens."""
    path = folder / LOG_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3,
                                                       encoding="utf-8")
    except OSError as exc:
        handler, path = logging.StreamHandler(), None
        problem = f"cannot write the log in {folder}: {exc.strerror or exc}; logging to stderr"
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s "
                                           "[%(threadName)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    if path is None:
        log.warning(problem)
    return path


class ErrorReporter(QObject):
    """Installs ``sys.excepthook`` and ``threading.excepthook``; shows at most one dialog at a
    time (an error storm does not stack dialogs), and always logs."""

    report = Signal(str)  # one line, delivered to the GUI thread

    def __init__(self, log_path: Path | None, show=None, parent=None) -> None:
        super().__init__(parent)
        self.log_path, self.show = log_path, show or self._dialog
        self.showing = False
        self.shown: set[str] = set()  # each distinct error gets one dialog per session
        # queued: the dialog never opens inside the failing slot or paint event, where closing
        # it would repaint, fail again and open it again for ever
        self.report.connect(self._on_report, Qt.ConnectionType.QueuedConnection)
        self._previous = (sys.excepthook, threading.excepthook)

    def install(self) -> None:
        sys.excepthook = self.handle
        threading.excepthook = lambda args: self.handle(args.exc_type, args.exc_value,
                                                        args.exc_traceback)

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def handle(self, kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous[0](kind, value, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        text = str(value).strip().splitlines()[0] if str(value).strip() else ""
        self.report.emit(f"{kind.__name__}: {text}"[:300] if text else kind.__name__)

    @Slot(str)
    def _on_report(self, line: str) -> None:
        if self.showing or line in self.shown:
            return  # always in the log; the user has already been told about this one
        self.shown.add(line)
        self.showing = True
        try:
            where = (f"The details are in the log file:\n{self.log_path}" if self.log_path
                     else "The log file could not be written; the details went to the "
                          "terminal's error output, if the app was started from one.")
            self.show(f"Something went wrong: {line}\n\nThe app keeps running; nothing you saved "
                      f"is affected. {where}")
        finally:
            self.showing = False

    @staticmethod
    def _dialog(text: str) -> None:
        from PySide6.QtWidgets import QApplication, QMessageBox
        QMessageBox.warning(QApplication.activeWindow(), "Pixel Classifier", text)
