"""Launch milestones for ``benchmarks/launch.py``, measured inside the real app (source or bundle).

With ``PIXELCLASSIFIER_MILESTONE`` set to ``shown`` or ``predicted`` the app prints one line
``MILESTONE <name> <time.time()>`` when it gets there and ends the process at once (``os._exit``,
so no teardown is timed):

  shown      the main window has received its first paint event (first frame drawn),
  predicted  every top-k bar of the first classified image has received its first paint event.

Unset (always, for users), nothing here runs.
"""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QEvent, QObject

ENV = "PIXELCLASSIFIER_MILESTONE"


def _reached(name: str) -> None:
    print(f"MILESTONE {name} {time.time():.6f}", flush=True)
    os._exit(0)


class PaintWatch(QObject):
    """Calls ``done`` once every watched widget has received a paint event."""

    def __init__(self, widgets, done) -> None:
        super().__init__(widgets[0])
        self.pending, self.done = set(map(id, widgets)), done
        for widget in widgets:
            widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and id(obj) in self.pending:
            self.pending.discard(id(obj))
            if not self.pending:
                self.done()
        return False


def watch(window) -> None:
    """Install the watch that ``PIXELCLASSIFIER_MILESTONE`` asks for on a not yet shown window."""
    milestone = os.environ.get(ENV)
    if milestone == "shown":
        PaintWatch([window], lambda: _reached("shown"))
    elif milestone == "predicted":
        bars = window.bars
        original = bars.show_probabilities

        def show_probabilities(*args, **kwargs) -> None:
            original(*args, **kwargs)
            if bars.bars:
                PaintWatch(list(bars.bars), lambda: _reached("predicted"))

        bars.show_probabilities = show_probabilities
    elif milestone:
        raise SystemExit(f"{ENV} must be 'shown' or 'predicted', not {milestone!r}")
