"""Top-k probability bars: class names, bars and percentages, top class highlighted."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)


class TopKBars(QGroupBox):
    """The k most probable classes of the selected image; keyboard and screen-reader friendly."""

    k_changed = Signal(int)
    class_chosen = Signal(str)  # a bar was clicked (or Enter/Space on it): explain this class
    threshold_changed = Signal(float)  # the low-confidence threshold, 0-1

    def __init__(self, k: int = 5, parent=None) -> None:
        super().__init__("Top predictions", parent)
        self.k_box = QSpinBox(minimum=1, maximum=100, value=k)
        self.k_box.setAccessibleName("Number of classes shown")
        self.k_box.valueChanged.connect(self._on_k)
        self.threshold = QDoubleSpinBox(minimum=0, maximum=100, decimals=1, singleStep=1,
                                        suffix=" %", value=50)
        self.threshold.setAccessibleName("Low-confidence threshold")
        self.threshold.valueChanged.connect(lambda v: self._on_threshold(v / 100))
        self.calibrated = QLabel(objectName="note", wordWrap=True)
        self.reset_threshold = QPushButton("Reset", toolTip="Back to the checkpoint's calibrated "
                                           "threshold")
        self._calibrated_value = 0.5
        self.reset_threshold.clicked.connect(
            lambda: self.threshold.setValue(self._calibrated_value * 100))
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold)
        threshold_row.addWidget(self.reset_threshold)
        threshold_row.addWidget(self.calibrated, 1)
        form = QFormLayout()
        form.addRow("Classes shown (k):", self.k_box)
        form.addRow("Low confidence below:", threshold_row)
        self.low_warning = QLabel(objectName="warnings", wordWrap=True, visible=False)
        self.rows = QVBoxLayout()
        self.message = QLabel()
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.low_warning)
        layout.addLayout(self.rows)
        layout.addStretch(1)
        self.bars: list[QProgressBar] = []
        self._probs, self._names = None, ()
        self.chosen: str | None = None  # the class whose bar is marked as explained
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
        self.threshold.setValue(threshold * 100)

    def _on_threshold(self, value: float) -> None:
        self._render()
        self.threshold_changed.emit(value)

    def show_message(self, text: str) -> None:
        self._probs = None
        self.message.setText(text)
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
        while self.rows.count():
            row = self.rows.takeAt(0).widget()
            if row is not None:
                row.deleteLater()
        self.bars = []
        self.low_warning.hide()
        if self._probs is None:
            return
        top = float(self._probs.max())
        if top < self.threshold.value() / 100:
            self.low_warning.setText(f"Low confidence ({top:.0%} is below {self.threshold.value():.0f} %"
                                     "): maybe none of these classes.")
            self.low_warning.show()
        order = np.argsort(-self._probs, kind="stable")[: self.k]
        for rank, index in enumerate(order):
            self.rows.addWidget(self._row(self._names[index], float(self._probs[index]), rank == 0))

    def _row(self, label: str, probability: float, top: bool) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        name = QLabel(label)
        name.setMinimumWidth(90)
        bar = QProgressBar(minimum=0, maximum=1000, value=round(probability * 1000))
        bar.setTextVisible(False)
        bar.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab walks through the bars
        text = f"{label}: {probability:.1%}"
        bar.setAccessibleName(text + (" (top prediction)" if top else ""))
        bar.setToolTip(text + "\nClick (or Enter) to see where the evidence for it lies")
        bar.setProperty("label", label)
        bar.setProperty("chosen", label == self.chosen)
        bar.setCursor(Qt.CursorShape.PointingHandCursor)
        bar.installEventFilter(self)
        percent = QLabel(f"{probability:.1%}")
        percent.setMinimumWidth(52)
        percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if top:
            for widget in (name, percent):
                font = widget.font()
                font.setBold(True)
                widget.setFont(font)
            bar.setProperty("top", True)
        layout.addWidget(name)
        layout.addWidget(bar, 1)
        layout.addWidget(percent)
        self.bars.append(bar)
        return row
