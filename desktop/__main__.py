"""Start the app: ``python -m desktop [--checkpoint FILE] [--self-test]``.

The window appears before TensorFlow is imported; the model loads on a background thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m desktop", description="Pixel Classifier")
    parser.add_argument("--checkpoint", help="a .keras checkpoint (default: the bundled one)")
    parser.add_argument("--self-test", action="store_true",
                        help="classify the bundled sample image, train one epoch on a generated "
                        "3-class set and classify with the result (in a scratch folder unless "
                        "PIXELCLASSIFIER_HOME is set); print the results and exit")
    parser.add_argument("--install-desktop-entry", action="store_true",
                        help="Linux: add the app to the applications menu (per user) and exit")
    parser.add_argument("files", nargs="*", help="images or folders to open at start")
    return parser


# Windows: where a windowed build's lines go when it was started from a terminal (see below)
CONSOLE_DEVICE = "CONOUT$"
ATTACH_PARENT_PROCESS = -1
PRINTING = ("--self-test", "-h", "--help")  # the arguments whose answer is printed


def _kernel32():
    import ctypes
    return ctypes.WinDLL("kernel32")


def attach_parent_console(argv) -> bool:
    """A windowed build on Windows starts without standard output or error (both ``None``), so
    ``--self-test`` and ``--help`` printed nothing even in the terminal they were typed in (only
    the exit status told). For those arguments, attach to that terminal's console and write
    there. Not for a plain launch: a Ctrl+C typed later in that terminal would reach the app.
    Returns whether it attached (False: output already there, or no terminal: double-clicked)."""
    if (sys.stdout is not None and sys.stderr is not None) or not any(a in PRINTING for a in argv):
        return False
    try:
        if not _kernel32().AttachConsole(ATTACH_PARENT_PROCESS):
            return False
        stream = open(CONSOLE_DEVICE, "w", encoding="utf-8", errors="backslashreplace",
                      buffering=1)
    except (OSError, AttributeError):  # (no WinDLL: not Windows)
        return False
    sys.stdout = sys.stdout or stream
    sys.stderr = sys.stderr or stream
    return True


def use_private_settings() -> None:
    """With ``PIXELCLASSIFIER_HOME`` set (portable use, tests), settings live there too."""
    home = os.environ.get("PIXELCLASSIFIER_HOME")
    if home:
        from PySide6.QtCore import QSettings
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                          str(Path(home) / "config"))


def close_on_ctrl_c(window):
    """Ctrl+C in the terminal the app was started from closes the window as its close button
    does (a running training is asked about first). Returns the timer that lets Python see the
    signal: Qt's event loop holds the thread in C++, where Python runs no signal handler."""
    import signal

    from PySide6.QtCore import QTimer

    closing = []

    def close() -> None:
        window.close()
        closing.clear()  # answered "no" to stopping a training run: a later Ctrl+C asks again

    def on_ctrl_c(*_) -> None:
        if not closing:  # (a second Ctrl+C while its question is open: the same question)
            closing.append(True)
            QTimer.singleShot(0, close)

    signal.signal(signal.SIGINT, on_ctrl_c)
    wake = QTimer(window)
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return wake


def use_scratch_home() -> tempfile.TemporaryDirectory | None:
    """A self-test runs in a throw-away home inside the per-user cache folder (unless
    ``PIXELCLASSIFIER_HOME`` already names one): it never touches the user's settings or
    checkpoints, and it writes nothing next to the app."""
    if os.environ.get("PIXELCLASSIFIER_HOME"):
        return None
    from training.paths import user_cache_dir

    user_cache_dir().mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="self-test-home-", dir=user_cache_dir())
    os.environ["PIXELCLASSIFIER_HOME"] = scratch.name
    print(f"self-test: scratch home {scratch.name}", flush=True)
    return scratch


def main(argv=None) -> int:
    attach_parent_console(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.install_desktop_entry:
        from .desktop_entry import install_desktop_entry
        for path in install_desktop_entry():
            print(f"wrote {path}")
        return 0
    scratch = use_scratch_home() if args.self_test else None
    try:
        return run(args)
    finally:
        if scratch is not None:
            scratch.cleanup()


def remembered_checkpoint(settings=None) -> Path:
    """The checkpoint chosen in an earlier session, if it still exists; else the bundled one."""
    from PySide6.QtCore import QSettings

    from training.paths import bundled_checkpoint

    from .stored import stored
    remembered = stored(settings or QSettings(), "checkpoint", "")
    if remembered and Path(remembered).is_file():
        return Path(remembered)
    return bundled_checkpoint()


def say_what_is_not_kept(window, log_path: Path | None, missing: str = "") -> str:
    """Said once at launch, in the banner, where it is seen (or the status bar, while the banner
    offers a run to resume): the checkpoint used last time is gone, the log or the settings
    cannot be written. The app works without each. Returns what was said ("": nothing)."""
    from PySide6.QtCore import QSettings

    from training.paths import cannot_write, user_log_dir
    notes = []
    if missing:  # (renamed in another window, moved, deleted): it fell back without a word
        notes.append(f"{Path(missing).name}, the checkpoint in use last time, is no longer in "
                     f"{Path(missing).parent}: the bundled checkpoint is in use.")
    if log_path is None:
        notes.append(f"The log folder {user_log_dir()} cannot be written, so this session keeps "
                     "no log (check its owner and permissions).")
    # Settings in a folder that cannot be written (a sudo launch left it owned by root): every
    # choice was lost at close without a word. (Windows' registry: fileName() names a key
    # there, not a file to try.)
    settings = Path(window.settings.fileName())
    registry = sys.platform == "win32" and window.settings.format() != QSettings.Format.IniFormat
    if not registry and (why := cannot_write(settings)):
        notes.append(f"Settings cannot be saved in {settings.parent} ({why}), so the classes "
                     "shown, the checkpoint in use and the window's size will not be remembered "
                     "(check the folder's owner and permissions).")
    text = " ".join(notes)
    if text:
        import logging
        logging.getLogger(__name__).warning("said at launch: %s", text)
    if text and window.banner.isVisible():
        window.statusBar().showMessage(text)
    elif text:
        window.banner.offer(text, [("OK", None)])
    return text


def run(args) -> int:
    from PySide6.QtWidgets import QApplication

    from training import __version__
    from training.paths import APP_NAME, keras_home

    from .about import app_icon
    from .milestones import watch
    from .session import ClassifierSession
    from .styling import follow_palette, use_style_sheet
    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("pixelclassifier")  # matches resources/pixelclassifier.desktop
    app.setWindowIcon(app_icon())
    use_private_settings()
    from training.paths import user_log_dir

    from .error_report import ErrorReporter, setup_logging
    log_path = setup_logging(user_log_dir())
    errors = ErrorReporter(log_path, parent=app)
    errors.install()  # an unexpected exception: logged, one friendly dialog, the app goes on
    os.environ.setdefault("KERAS_HOME", str(keras_home()))  # not ~/.keras: our own folder
    # the app ships TensorFlow only: a KERAS_BACKEND=jax left in the user's shell must not apply
    os.environ["KERAS_BACKEND"] = "tensorflow"
    use_style_sheet(app)  # in lighter colours on a dark desktop
    from PySide6.QtCore import QSettings

    from .stored import stored
    remembered = stored(QSettings(), "checkpoint", "")
    checkpoint = Path(args.checkpoint) if args.checkpoint else remembered_checkpoint()
    missing = "" if args.checkpoint or checkpoint == Path(remembered or ".") else remembered
    session = ClassifierSession(checkpoint)
    window = MainWindow(session)
    follow_palette(app, window)
    watch(window)  # launch milestones, only when benchmarks/launch.py asks for them
    window.show()
    close_on_ctrl_c(window)
    say_what_is_not_kept(window, log_path, missing)
    session.load_model()
    if args.files:
        session.add_paths([Path(f) for f in args.files])
    if args.self_test:
        from .self_test import run_self_test
        return run_self_test(app, window, session)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
