"""A message bar across the top of the window with a few action buttons (non-modal offers)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


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
        self._take_the_banners_place_in_tab_order()
        self.show()

    def _take_the_banners_place_in_tab_order(self) -> None:
        """Tab reaches the buttons where the banner is, above the tabs: Shift+Tab from the tab
        bar goes to the last button, Tab from it to the tab bar.

        Buttons made now join the end of the window's Tab order, and the tabs built on a first
        visit (Checkpoints, Evaluate) come after them: they were reached after those tabs'
        contents. They go right after the label (the banner's place); Qt orders only widgets
        that take focus, so the label takes it for the moment."""
        self.label.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        before = self.label
        for button in self.buttons:
            QWidget.setTabOrder(before, button)
            before = button
        self.label.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def button(self, label: str) -> QPushButton:
        return next(b for b in self.buttons if b.text() == label)
