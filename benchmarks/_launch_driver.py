"""Child process for ``benchmarks/launch.py``: run the real app's ``main()`` until a milestone.

    python benchmarks/_launch_driver.py shown [main() arguments...]
    python benchmarks/_launch_driver.py predicted IMAGE [main() arguments...]

``desktop.__main__.main`` runs unchanged; the driver only watches paint events and, at the
milestone, prints one line ``MILESTONE <name> <time.time()>`` and ends the process at once
(``os._exit``, so TensorFlow's teardown is not part of any figure). The parent compares that
wall-clock time with the ``time.time()`` it read just before spawning this process.

Milestones:
  shown      the main window has received its first paint event (first frame drawn),
  predicted  every top-k bar of the first classified image has received its first paint event.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, like `python -m`


def _reached(name: str) -> None:
    print(f"MILESTONE {name} {time.time():.6f}", flush=True)
    os._exit(0)


def main() -> int:
    milestone, argv = sys.argv[1], sys.argv[2:]
    if milestone not in ("shown", "predicted"):
        raise SystemExit(f"unknown milestone {milestone!r}")

    import desktop.__main__ as app_main  # the same module `python -m desktop` runs
    from PySide6.QtCore import QEvent, QObject

    from desktop.top_k import TopKBars
    from desktop.window import MainWindow

    class PaintWatch(QObject):
        """Calls ``done`` once every watched widget has received a paint event."""

        def __init__(self, widgets, done) -> None:
            super().__init__()
            self.pending, self.done = set(map(id, widgets)), done
            for widget in widgets:
                widget.installEventFilter(self)

        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint and id(obj) in self.pending:
                self.pending.discard(id(obj))
                if not self.pending:
                    self.done()
            return False

    watches = []  # keep the filters alive
    original_show = MainWindow.show
    original_probabilities = TopKBars.show_probabilities

    def show(self) -> None:
        if milestone == "shown":
            watches.append(PaintWatch([self], lambda: _reached("shown")))
        original_show(self)

    def show_probabilities(self, probabilities, class_names) -> None:
        original_probabilities(self, probabilities, class_names)
        if milestone == "predicted" and self.bars:
            watches.append(PaintWatch(list(self.bars), lambda: _reached("predicted")))

    MainWindow.show = show
    TopKBars.show_probabilities = show_probabilities
    code = app_main.main(argv)
    print(f"app exited with {code} before reaching {milestone!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
