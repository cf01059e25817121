"""Input check, "what the model sees": facts, conversions, and the exact input tensor enlarged."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QSizePolicy

from .items import ImageItem, to_qimage

VIEW = 192  # px: both pictures are shown at this size


class InputCheckView(QGroupBox):
    """Shows the selected image's original beside the model's 32x32 input (crisp pixels)."""

    def __init__(self, parent=None) -> None:
        super().__init__("What the model sees", parent)
        self.original = self._picture("Original image")
        self.model_view = self._picture("Model input, enlarged with crisp pixels")
        self.facts = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                           | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts.setAccessibleName("Input check details")
        grid = QGridLayout(self)
        grid.addWidget(QLabel("Original"), 0, 0)
        grid.addWidget(QLabel("Model input (32×32)"), 0, 1)
        grid.addWidget(self.original, 1, 0)
        grid.addWidget(self.model_view, 1, 1)
        grid.addWidget(self.facts, 2, 0, 1, 2)
        self.show_item(None)

    def _picture(self, accessible: str) -> QLabel:
        label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        label.setFixedSize(VIEW, VIEW)
        label.setObjectName("picture")
        label.setAccessibleName(accessible)
        label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return label

    def show_item(self, item: ImageItem | None, input_size=(32, 32)) -> None:
        self.original.clear()
        self.model_view.clear()
        if item is None:
            self.facts.setText("Select an image to see how it is prepared for the model.")
            return
        name = html.escape(item.name)
        if item.report is None:
            reason = {"failed": "Cannot use: " + html.escape(item.error),
                      "stopped": "Not read: stopped"}.get(item.state, "reading…")
            self.facts.setText(f"<b>{name}</b><br>{reason}")
            return
        report = item.report
        self.original.setPixmap(QPixmap.fromImage(to_qimage(report.original.convert("RGB")))
                                .scaled(VIEW, VIEW, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation))
        # Nearest-neighbour enlargement: every model pixel becomes a crisp square.
        self.model_view.setPixmap(QPixmap.fromImage(to_qimage(report.array))
                                  .scaled(VIEW, VIEW, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))
        w, h = input_size
        verdict = (f"<span style='color:#1b7f3b'>meets the model's {w}×{h} RGB input as is</span>"
                   if report.conforms else
                   f"<span style='color:#a15c00'>converted to the model's {w}×{h} RGB input</span>")
        frames = f", {report.frames} frames" if report.frames > 1 else ""
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in report.conversions) or "<li>none</li>"
        self.facts.setText(
            f"<b>{name}</b><br>{html.escape(report.format)}, {report.width}×{report.height}, "
            f"colour mode {html.escape(report.mode)}{frames}<br>{verdict}"
            f"<br>Conversions applied:<ul style='margin:0'>{steps}</ul>")
