"""Start the app: ``python -m desktop [--checkpoint FILE] [--self-test]``.

The window appears before TensorFlow is imported; the model loads on a background thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m desktop", description="Pixel Classifier")
    parser.add_argument("--checkpoint", help="a .keras checkpoint (default: the bundled one)")
    parser.add_argument("--self-test", action="store_true",
                        help="classify the bundled sample image, print the result and exit")
    parser.add_argument("files", nargs="*", help="images or folders to open at start")
    return parser


def use_private_settings() -> None:
    """With ``PIXELCLASSIFIER_HOME`` set (portable use, tests), settings live there too."""
    home = os.environ.get("PIXELCLASSIFIER_HOME")
    if home:
        from PySide6.QtCore import QSettings
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                          str(Path(home) / "config"))


def main(argv=None) -> int:
    t0 = time.perf_counter()
    args = build_parser().parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from training.paths import APP_NAME, bundled_checkpoint, project_root

    from .session import ClassifierSession
    from .window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    use_private_settings()
    style = project_root() / "resources" / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    session = ClassifierSession(Path(args.checkpoint) if args.checkpoint else bundled_checkpoint())
    window = MainWindow(session)
    window.show()
    if os.environ.get("PIXELCLASSIFIER_TIMING"):
        print(f"window shown {time.perf_counter() - t0:.3f}s", flush=True)
    session.load_model()
    if args.files:
        session.add_paths([Path(f) for f in args.files])
    if args.self_test:
        from .self_test import run_self_test
        return run_self_test(app, window, session)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
