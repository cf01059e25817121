"""A message bar across the top of the window with a few action buttons (non-modal offers)."""
from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


class Banner(QFrame):
    """Shows one offer at a time, e.g. "Resume the unfinished run?" [Resume] [Discard]."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, objectName="banner")
        self.label = QLabel(wordWrap=True)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self._layout.addWidget(self.label, 1)
        self.buttons: list[QPushButton] = []
        self.hide()

    def offer(self, text: str, actions: list[tuple[str, object]]) -> None:
        """Show ``text`` with a button per (label, callback); any button also closes the banner."""
        for button in self.buttons:
            self._layout.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        self.label.setText(text)
        for label, callback in actions:
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, cb=callback: (self.hide(), cb and cb()))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self.show()

    def button(self, label: str) -> QPushButton:
        return next(b for b in self.buttons if b.text() == label)
