"""Top-k probability bars: class names, bars and percentages, top class highlighted."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from .styling import breakable


class TopKBars(QGroupBox):
    """The k most probable classes of the selected image; keyboard and screen-reader friendly."""

    k_changed = Signal(int)
    class_chosen = Signal(str)  # a bar was clicked (or Enter/Space on it): explain this class
    threshold_changed = Signal(float)  # the low-confidence threshold, 0-1

    def __init__(self, k: int = 5, parent=None) -> None:
        super().__init__("Top predictions", parent)
        self.k_box = QSpinBox(minimum=1, maximum=100, value=k)
        self.k_box.setAccessibleName("Number of classes shown")
        self.k_box.setMaximumWidth(80)
        self.k_box.valueChanged.connect(self._on_k)
        self.threshold = QDoubleSpinBox(minimum=0, maximum=100, decimals=1, singleStep=1,
                                        suffix=" %", value=50)
        self.threshold.setAccessibleName("Low-confidence threshold")
        self.threshold.valueChanged.connect(self._on_threshold)
        self.calibrated = QLabel(objectName="note", wordWrap=True)
        self.reset_threshold = QPushButton("Reset", toolTip="Back to the checkpoint's calibrated "
                                           "threshold")
        self._calibrated_value = 0.5
        self.reset_threshold.clicked.connect(
            lambda: self.threshold.setValue(self._calibrated_value * 100))
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold)
        threshold_row.addWidget(self.reset_threshold)
        threshold_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Classes shown (k):", self.k_box)
        form.addRow("Low confidence below:", threshold_row)
        form.addRow("", self.calibrated)  # its own line: beside the box it was squeezed
        self.low_warning = QLabel(objectName="warnings", wordWrap=True, visible=False)
        self.rows = QVBoxLayout()
        # Wrapped: a long message ("Could not load the model: ...", strict mode's refusal) would
        # otherwise widen the detail side past a small window and be cut off.
        self.message = QLabel(wordWrap=True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.low_warning)
        layout.addLayout(self.rows)
        self.bars: list[QProgressBar] = []  # the bars shown, most probable first
        self._rows: list[_BarRow] = []
        self._probs, self._names = None, ()
        self.chosen: str | None = None  # the class whose bar is marked as explained
        self.focus_after: QWidget | None = None  # where Tab goes from the last bar (the owner's)
        self.show_message("Drop an image to see predictions.")

    @property
    def k(self) -> int:
        return self.k_box.value()

    def _on_k(self, k: int) -> None:
        self._render()
        self.k_changed.emit(k)

    def set_calibration(self, threshold: float, calibrated: bool, detail: str = "") -> None:
        """A new checkpoint: its calibrated threshold (or the default), said next to the box."""
        self._calibrated_value = threshold
        self.calibrated.setText(f"calibrated: {threshold:.1%}{detail}" if calibrated else
                                "default: this checkpoint was not calibrated")
        shown = self.threshold.value()
        self.threshold.setValue(threshold * 100)
        if self.threshold.value() == shown:  # the box did not change: say the exact value once
            self._on_threshold()

    def current_threshold(self) -> float:
        """The threshold in use: the calibrated value itself (0.430442) while the box shows it
        rounded (43.0 %), else what the box says."""
        exact = self._calibrated_value
        if round(exact * 100, self.threshold.decimals()) == round(self.threshold.value(),
                                                                  self.threshold.decimals()):
            return exact
        return self.threshold.value() / 100

    def _on_threshold(self, *_) -> None:
        self._render()
        self.threshold_changed.emit(self.current_threshold())

    def show_message(self, text: str) -> None:
        self._probs = None
        self.message.setText(breakable(text))  # a long path breaks too, not only at spaces
        self.message.show()
        self._render()

    def show_probabilities(self, probabilities: np.ndarray, class_names,
                           chosen: str | None = None) -> None:
        self._probs, self._names = np.asarray(probabilities), tuple(class_names)
        self.chosen = chosen
        self.message.hide()
        self._render()

    def eventFilter(self, watched, event) -> bool:
        """A click on a bar, or Enter/Space on the focused bar, chooses its class."""
        from PySide6.QtCore import QEvent
        label = watched.property("label") if watched in self.bars else None
        if label is not None and (
                event.type() == QEvent.Type.MouseButtonRelease or (
                    event.type() == QEvent.Type.KeyPress and event.key() in (
                        Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space))):
            self.choose(label)
            return True
        return super().eventFilter(watched, event)

    def choose(self, label: str) -> None:
        self.chosen = label
        for bar in self.bars:
            bar.setProperty("chosen", bar.property("label") == label)
            bar.style().polish(bar)
        self.class_chosen.emit(label)

    def _render(self) -> None:
        """Show the top k of ``_probs``. Row widgets are kept and refilled, not rebuilt: making
        and styling fresh widgets for every result cost a few ms of each drop-to-bars."""
        self.low_warning.hide()
        if self._probs is None:
            for row in self._rows:
                row.hide()
            self.bars = []
            return
        top, threshold = float(self._probs.max()), self.current_threshold()
        if top < threshold:
            self.low_warning.setText(f"Low confidence ({top:.1%} is below {threshold:.1%}): "
                                     "maybe none of these classes.")
            self.low_warning.show()
        order = np.argsort(-self._probs, kind="stable")[: self.k]
        grown = len(self._rows) < len(order)
        while len(self._rows) < len(order):
            row = _BarRow(self)
            self._rows.append(row)
            self.rows.addWidget(row)
        if grown:
            self._chain_focus()
        for rank, row in enumerate(self._rows):
            if rank < len(order):
                label = self._names[order[rank]]
                row.fill(label, float(self._probs[order[rank]]), rank == 0, label == self.chosen)
                row.show()
            else:
                row.hide()
        self.bars = [row.bar for row in self._rows[: len(order)]]

    def _chain_focus(self) -> None:
        """Tab from Reset walks the bars top to bottom, then on to ``focus_after``: rows made
        after the window (on the first result) would otherwise come last, after the controls
        below them."""
        chain = [self.reset_threshold, *(row.bar for row in self._rows)]
        if self.focus_after is not None:
            chain.append(self.focus_after)
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)


class _BarRow(QWidget):
    """One class: its name, a clickable bar (an event filter of ``owner``) and the percentage."""

    def __init__(self, owner: TopKBars) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel()
        self.name.setMinimumWidth(90)
        self.bar = QProgressBar(minimum=0, maximum=1000)
        self.bar.setTextVisible(False)
        self.bar.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab walks through the bars
        self.bar.setCursor(Qt.CursorShape.PointingHandCursor)
        self.bar.installEventFilter(owner)
        self.percent = QLabel()
        self.percent.setMinimumWidth(52)
        self.percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.name)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.percent)
        self._top = None

    def fill(self, label: str, probability: float, top: bool, chosen: bool) -> None:
        text = f"{label}: {probability:.1%}"
        self.name.setText(label)
        self.percent.setText(f"{probability:.1%}")
        self.bar.setValue(round(probability * 1000))
        self.bar.setAccessibleName(text + (" (top prediction)" if top else ""))
        self.bar.setToolTip(text + "\nClick (or Enter) to see where the evidence for it lies")
        self.bar.setProperty("label", label)
        restyle = self.bar.property("chosen") != chosen or self._top != top
        self.bar.setProperty("chosen", chosen)
        if self._top != top:
            self._top = top
            self.bar.setProperty("top", top)
            for widget in (self.name, self.percent):
                font = widget.font()
                font.setBold(top)
                widget.setFont(font)
        if restyle:  # the style sheet colours the top bar and outlines the chosen one
            self.bar.style().polish(self.bar)
