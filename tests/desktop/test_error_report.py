"""An unexpected exception is logged with its traceback and shown once, naming the log."""
import logging
import threading

from PySide6.QtWidgets import QApplication

from desktop.error_report import ErrorReporter, setup_logging


def test_unexpected_errors_are_logged_and_shown_once_with_the_log_path(qtbot, tmp_path):
    path = setup_logging(tmp_path / "logs")
    shown = []
    reporter = ErrorReporter(path, show=shown.append)
    reporter.install()
    try:
        try:
            raise ValueError("the model file vanished\nsecond line")
        except ValueError as exc:
            reporter.handle(type(exc), exc, exc.__traceback__)
        worker = threading.Thread(target=lambda: 1 / 0, name="worker")
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: len(shown) == 2)
    finally:
        reporter.uninstall()
        for handler in logging.getLogger().handlers[:]:
            if getattr(handler, "baseFilename", "").startswith(str(tmp_path)):
                logging.getLogger().removeHandler(handler)
                handler.close()
    assert shown[0].startswith("Something went wrong: ValueError: the model file vanished\n")
    assert str(path) in shown[0] and "ZeroDivisionError" in shown[1]
    text = path.read_text()
    assert "Traceback" in text and "the model file vanished" in text
    assert "ZeroDivisionError: division by zero" in text


def test_an_error_storm_shows_one_dialog_at_a_time(qtbot, tmp_path):
    calls = []
    reporter = ErrorReporter(tmp_path / "x.log")

    def show(text):  # while the first dialog is open, more errors arrive
        calls.append(text)
        reporter._on_report("second")

    reporter.show = show
    reporter._on_report("first")
    assert len(calls) == 1


def test_the_same_error_again_and_again_is_shown_once_and_logged_each_time(qtbot, tmp_path):
    """A bug in something called on every repaint: closing its dialog repaints and fails again;
    the user is told once, the log keeps every occurrence."""
    path = setup_logging(tmp_path / "logs")
    shown = []
    reporter = ErrorReporter(path, show=shown.append)
    try:
        for _ in range(5):
            try:
                raise KeyError("row 7")
            except KeyError as exc:
                reporter.handle(type(exc), exc, exc.__traceback__)
        qtbot.waitUntil(lambda: len(shown) == 1)
        QApplication.processEvents()  # every report posted is delivered by now
        assert len(shown) == 1
    finally:
        for handler in logging.getLogger().handlers[:]:
            if getattr(handler, "baseFilename", "").startswith(str(tmp_path)):
                logging.getLogger().removeHandler(handler)
                handler.close()
    assert path.read_text().count("KeyError: 'row 7'") == 5


def test_without_a_log_file_the_error_dialog_says_where_the_details_went(qtbot, tmp_path):
    (tmp_path / "logs").write_text("not a folder")
    before = set(logging.getLogger().handlers)
    path = setup_logging(tmp_path / "logs")
    try:
        assert path is None
        shown = []
        ErrorReporter(path, show=shown.append)._on_report("ValueError: x")
    finally:
        for handler in set(logging.getLogger().handlers) - before:
            logging.getLogger().removeHandler(handler)
    assert "could not be written" in shown[0] and "None" not in shown[0]
