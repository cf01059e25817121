"""Widgets whose look follows a ``state`` property (``QLabel[state="error"]`` in the style sheet)."""
from __future__ import annotations


def set_state(widget, state: str) -> None:
    """Give ``widget`` the ``state`` ("" or "error") and restyle it: Qt applies a rule that
    selects on a property only when the widget is polished again, so a label set back to ""
    would otherwise keep an earlier error's red on a success."""
    if widget.property("state") == state:
        return
    widget.setProperty("state", state)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
