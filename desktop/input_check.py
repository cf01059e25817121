"""Input check, "what the model sees": facts, conversions, and the exact input tensor enlarged."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QSizePolicy, QSlider)

from .items import ImageItem, to_qimage
from .pixels import fitted_pixmap
from .styling import themed

VIEW = 192  # px: both pictures are shown at this size


SALIENCY_METHODS = (  # key, menu text, what it costs (the item's tooltip)
    ("occlusion", "Occlusion", "Clearer: greys 8-px patches and watches the probability; about "
     "0.1 s, with a quick Grad-CAM preview first"),
    ("grad-cam", "Grad-CAM", "Fast (about 12 ms) but coarser: the gradient-weighted activations "
     "of an inner layer"))


class InputCheckView(QGroupBox):
    """Shows the selected image's original beside the model's input (crisp pixels), and
    optionally where the evidence for a class lies, drawn over both."""

    saliency_wanted = Signal()  # the toggle or the method changed: (re)compute for the current item

    def __init__(self, parent=None) -> None:
        super().__init__("What the model sees", parent)
        self.report = None
        self.policy = None
        self.heat: np.ndarray | None = None  # model-input sized map for the current item
        self.show_why = QCheckBox("Show why", toolTip="Draw where the evidence for the chosen "
                                  "class lies (click a bar to choose another class)")
        self.method = QComboBox(toolTip="How the evidence is found")
        for key, text, tip in SALIENCY_METHODS:
            self.method.addItem(text, key)
            self.method.setItemData(self.method.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=60,
                               toolTip="Overlay opacity")
        self.opacity.setAccessibleName("Overlay opacity")
        self.opacity.setMinimumWidth(80)  # never squeezed to a bare knob
        self.opacity.setMaximumWidth(120)
        self.caption = QLabel(objectName="saliencyCaption", wordWrap=True)
        self.scale = QLabel(toolTip="The overlay's colours, from no evidence (the picture shows "
                            "through) to the strongest evidence")
        self.scale.setAccessibleName("Evidence colour scale, weak to strong")
        self.scale.setPixmap(_scale_pixmap())
        self.show_why.toggled.connect(self._on_toggle)
        self.method.currentIndexChanged.connect(lambda *_: self._on_toggle(self.show_why.isChecked()))
        self.opacity.valueChanged.connect(lambda *_: self._render())
        self.original = self._picture("Original image")
        self.model_view = self._picture("Model input, enlarged with crisp pixels")
        self.facts = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                           | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts.setAccessibleName("Input check details")
        # A long word (a file name without spaces) cannot wrap and would widen the whole detail
        # side past the window: names are shortened to the label's width instead, so it never
        # asks for more than a picture's width.
        self.facts.setMinimumWidth(VIEW)
        self.item: ImageItem | None = None
        self._facts_width = 0  # the label width the shown names were shortened to
        grid = QGridLayout(self)
        self.titles = (QLabel("Original"), QLabel("Model input (32×32)"))
        grid.addWidget(self.titles[0], 0, 0)
        grid.addWidget(self.titles[1], 0, 1)
        grid.addWidget(self.original, 1, 0)
        grid.addWidget(self.model_view, 1, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.show_why)
        controls.addWidget(self.method)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity)
        controls.addStretch(1)
        grid.addLayout(controls, 2, 0, 1, 2)
        legend = QHBoxLayout()
        self.legend = (QLabel("weak", objectName="note"), self.scale,
                       QLabel("strong evidence", objectName="note"))
        for widget in self.legend:
            legend.addWidget(widget)
        legend.addStretch(1)
        grid.addLayout(legend, 3, 0, 1, 2)
        grid.addWidget(self.caption, 4, 0, 1, 2)
        grid.addWidget(self.facts, 5, 0, 1, 2)
        self._on_toggle(False)
        self.show_item(None)

    def _on_toggle(self, on: bool) -> None:
        self.method.setEnabled(on)
        self.opacity.setEnabled(on)
        if not on:
            self.clear_saliency()
        self.saliency_wanted.emit()

    def wants_saliency(self) -> bool:
        return self.show_why.isChecked()

    def set_saliency(self, heat: np.ndarray | None, caption: str = "") -> None:
        """Draw ``heat`` (model-input sized, 0-1) over both pictures; None removes it."""
        self.heat = heat
        self.caption.setText(caption)
        self.caption.setVisible(bool(caption))
        for widget in self.legend:
            widget.setVisible(heat is not None)
        self._render()

    def clear_saliency(self, caption: str = "") -> None:
        self.set_saliency(None, caption)

    def _picture(self, accessible: str) -> QLabel:
        label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        label.setFixedSize(VIEW, VIEW)
        label.setObjectName("picture")
        label.setAccessibleName(accessible)
        label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return label

    @staticmethod
    def _input_size(item: ImageItem | None, policy) -> tuple[int, int]:
        """(width, height) of the model input shown: the prepared array's own, else the
        checkpoint's preprocessing size, else the 32x32 assumed until a checkpoint is read."""
        report = item.report if item is not None else None
        if report is not None and getattr(report, "array", None) is not None:
            height, width = report.array.shape[:2]
            return width, height
        return tuple(policy.size) if policy is not None else (32, 32)

    def _crop(self) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of the part of the current original the model sees, when the crop
        policy cut the rest away; None when it sees the whole picture."""
        if self.report is None or self.policy is None or self.policy.resize != "crop":
            return None
        from training.conversions import crop_box
        width, height = self.report.original.size
        box = crop_box(width, height, tuple(self.policy.size))
        return box if box[2:] != (width, height) else None

    def _frame_crop(self, picture: QPixmap) -> QPixmap:
        """Frame the part of the original the model sees when the crop policy cut the rest."""
        box = self._crop()
        if box is None:
            return picture
        x, y, w, h = box
        # logical pixels: a painter on a pixmap made for a 200 % screen draws in those
        scale = picture.deviceIndependentSize().width() / self.report.original.size[0]
        painter = QPainter(picture)
        frame = QRectF(x * scale + 1, y * scale + 1, w * scale - 2, h * scale - 2)
        for colour, style in (("white", Qt.PenStyle.SolidLine), ("#2f6fca", Qt.PenStyle.DashLine)):
            painter.setPen(QPen(QColor(colour), 2, style))  # dashes on white: seen on any picture
            painter.drawRect(frame)
        painter.end()
        return picture

    def show_item(self, item: ImageItem | None, policy=None) -> None:
        """Show ``item`` as prepared by ``policy`` (the checkpoint's preprocessing; None until a
        checkpoint is read: then 32x32 is assumed and no overlay maps onto the original)."""
        self.original.clear()
        self.model_view.clear()
        self.item, self.report, self.policy, self.heat = item, None, policy, None
        self.titles[1].setText("Model input ({}×{})".format(*self._input_size(item, policy)))
        self.caption.hide()
        for widget in self.legend:
            widget.hide()
        for widget in (*self.titles, self.original, self.model_view):
            # no empty frames for a file that could not be read: its reason says it all
            widget.setVisible(item is None or item.state != "failed")
        if item is not None and item.report is not None:
            self.report = item.report
            self._render()
        self._write_facts()

    def _write_facts(self) -> None:
        """The facts under the pictures, in colours readable on the palette in use, with the
        name and folder shortened to the label's width (whole in its tooltip)."""
        item, report, policy = self.item, self.report, self.policy
        # on a dark window the light theme's colours read at about 2.5:1: their lighter twins
        muted, good, warning = (themed(c, self.palette()).name()
                                for c in ("#666", "#187436", "#9a5b00"))
        self._facts_width = width = self.facts.contentsRect().width()
        self.facts.setToolTip("")
        if item is None:
            self.facts.setText("Select an image to see how it is prepared for the model.")
            return
        bold = QFont(self.facts.font())
        bold.setBold(True)  # the name line is bold, folder too
        metrics = QFontMetrics(bold)
        shown = metrics.elidedText(item.name, Qt.TextElideMode.ElideMiddle, width)
        name, whole, shortened = html.escape(shown), item.name, shown != item.name
        if isinstance(item.source, Path):  # the folder too: two "0000.jpg" are told apart
            folder = str(item.source.parent).encode("utf-8", "surrogateescape").decode(
                "utf-8", "backslashreplace")
            short = metrics.elidedText(folder, Qt.TextElideMode.ElideLeft,  # the end tells most
                                       width - metrics.horizontalAdvance("in "))
            name += f" <span style='color:{muted}'>in {html.escape(short)}</span>"
            whole, shortened = f"{item.name}\nin {folder}", shortened or short != folder
        if shortened:
            self.facts.setToolTip(whole)
        if report is None:
            reason = {"failed": "Cannot use: " + html.escape(item.error),
                      "stopped": "Not read: stopped"}.get(item.state, "reading…")
            self.facts.setText(f"<b>{name}</b><br>{reason}")
            return
        w, h = tuple(policy.size) if policy is not None else (32, 32)
        verdict = (f"<span style='color:{good}'>meets the model's {w}×{h} RGB "
                   "input as is</span>" if report.conforms else
                   f"<span style='color:{warning}'>converted to the model's "
                   f"{w}×{h} RGB input</span>")
        frames = f", {report.frames} frames" if report.frames > 1 else ""
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in report.conversions) or "<li>none</li>"
        if self._crop() is not None:
            verdict += "<br>the dashed frame on the original marks the part the model sees"
        self.facts.setText(
            f"<b>{name}</b><br>{html.escape(item.origin or report.format)}, {report.width}×{report.height}, "
            f"colour mode {html.escape(report.mode)}{frames}<br>{verdict}"
            f"<br>Conversions applied:<ul style='margin:0'>{steps}</ul>")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.facts.contentsRect().width() != self._facts_width:  # names fit the new width
            self._write_facts()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # a light/dark switch: recolour the text
            self._write_facts()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:  # moved to a screen of another
            self._render()  # scale (it never reaches changeEvent): made again for its pixels
        return super().event(event)

    def _render(self) -> None:
        """The two pictures, with the saliency overlay when there is one."""
        report = self.report
        if report is None:
            return
        original = np.asarray(report.original.convert("RGB"))
        array = report.array
        if self.heat is not None:
            from training.saliency import overlay, to_original
            alpha = self.opacity.value() / 100
            if self.policy is not None:
                height, width = original.shape[:2]
                original = overlay(original, to_original(self.heat, (width, height), self.policy),
                                   alpha)
            array = overlay(array, self.heat, alpha)
        # A small original is enlarged with crisp pixels too (smoothed, a 32x32 file looked
        # blurrier than the very same pixels as model input); a large one is shrunk smoothly.
        small = max(original.shape[:2]) < VIEW
        ratio = self.original.devicePixelRatioF()  # both pictures are on this screen
        self.original.setPixmap(self._frame_crop(fitted_pixmap(original, VIEW, ratio, small)))
        # Nearest-neighbour enlargement: every model pixel becomes a crisp square.
        self.model_view.setPixmap(fitted_pixmap(array, VIEW, ratio))


def _scale_pixmap(width: int = 120, height: int = 10) -> QPixmap:
    """The overlay's colour scale drawn the way a map is drawn: over mid-grey, weak to strong."""
    from training.saliency import overlay

    ramp = np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))
    grey = np.full((height, width, 3), 128, np.uint8)
    return QPixmap.fromImage(to_qimage(overlay(grey, ramp, 1.0)))
