"""The live training chart (QtCharts): smoothed batch loss, validation loss and accuracy per epoch.

Points arrive as fast as batches finish; they are buffered and drawn by a 10 Hz timer that runs
only while a run is live, so the chart never redraws once per batch.
"""
from __future__ import annotations

import math

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QValueAxis
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen

from .styling import is_dark

REDRAW_MS = 100  # at most ~10 chart updates per second
MAX_POINTS = 2000  # training-loss points drawn over a whole run
SMOOTHING = 0.9  # exponential moving average of the batch loss (debiased, as TensorBoard does)


def _series(name: str, colour: str, width: float = 2.0, markers: bool = False) -> QLineSeries:
    series = QLineSeries()
    series.setName(name)
    pen = QPen(QColor(colour))
    pen.setWidthF(width)
    series.setPen(pen)
    series.setPointsVisible(markers)
    return series


class TrainingChart(QChartView):
    """Loss on the left axis, validation accuracy (%) on the right, epochs along the bottom."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(220)
        self.setAccessibleName("Training chart")
        # no key does anything on the chart: as a Tab stop it was an invisible one
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        chart = QChart()
        chart.setMargins(chart.margins() * 0)
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        # short legend names: a 900-pixel window cut "training loss (smoothed)" to "(smoo..."
        self.train_loss = _series("training loss", "#8aa9d6", 1.6)
        self.val_loss = _series("validation loss", "#2f6fca", 2.2, markers=True)
        self.val_acc = _series("validation accuracy", "#d9822b", 2.2, markers=True)
        self.x_axis = QValueAxis(titleText="epoch", labelFormat="%g")
        self.loss_axis = QValueAxis(titleText="loss (training: smoothed)", labelFormat="%.3g")
        self.acc_axis = QValueAxis(titleText="accuracy %", labelFormat="%d", min=0, max=100)
        chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.loss_axis, Qt.AlignmentFlag.AlignLeft)
        chart.addAxis(self.acc_axis, Qt.AlignmentFlag.AlignRight)
        for series, y_axis in ((self.train_loss, self.loss_axis), (self.val_loss, self.loss_axis),
                               (self.val_acc, self.acc_axis)):
            chart.addSeries(series)
            series.attachAxis(self.x_axis)
            series.attachAxis(y_axis)
        self.setChart(chart)
        self._follow_palette()
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self.flush)
        self.redraws = 0  # how many times points were drawn (tests check the throttle)
        self.clear()
        chart.setTitle("Loss and validation accuracy are drawn here, live, while a run trains")

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # a desktop turning dark or light
            self._follow_palette()

    def _follow_palette(self) -> None:
        """The window's colours for the panel and its text: on a dark palette the chart was
        a white slab. There the validation loss takes a lighter blue (2.5-3.6:1 on dark greys,
        5.5-7.9:1 now) and the training loss a darker one, so the two stay apart."""
        palette = self.palette()
        text, window = (palette.color(QPalette.ColorRole.WindowText),
                        palette.color(QPalette.ColorRole.Base))
        grid = QColor(text)
        grid.setAlphaF(0.15)
        chart = self.chart()
        chart.setBackgroundBrush(QBrush(window))
        chart.setTitleBrush(QBrush(text))
        chart.legend().setLabelColor(text)
        for axis in (self.x_axis, self.loss_axis, self.acc_axis):
            axis.setLabelsBrush(QBrush(text))
            axis.setTitleBrush(QBrush(text))
            axis.setGridLineColor(grid)
            axis.setLinePenColor(grid)
        dark = is_dark(palette)  # training loss muted, validation loss bright, as on light
        for series, light, dark_twin in ((self.train_loss, "#8aa9d6", "#56769f"),
                                         (self.val_loss, "#2f6fca", "#7fb0f0")):
            pen = series.pen()
            pen.setColor(QColor(dark_twin if dark else light))
            series.setPen(pen)
        self.setBackgroundBrush(QBrush(window))

    # -- data in ---------------------------------------------------------------------------------
    def clear(self, epochs: int = 1) -> None:
        self._pending_batches: list[QPointF] = []
        self._pending_epochs: list[tuple[float, float | None, float | None]] = []
        self._ema, self._ema_n = 0.0, 0
        self._epochs = max(epochs, 1)
        self._losses: list[float] = []  # every loss drawn: the axis range comes from them
        self._last_x = -math.inf
        for series in (self.train_loss, self.val_loss, self.val_acc):
            series.clear()
        self.x_axis.setRange(0, self._epochs)
        # Whole epochs along the bottom (0, 1, 2 ... or every few), never "1.75".
        self.x_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.x_axis.setTickAnchor(0)
        self.x_axis.setTickInterval(max(1, math.ceil(self._epochs / 8)))
        self.loss_axis.setRange(0, 1)

    def start(self, epochs: int) -> None:
        """A new run: empty the chart and start the redraw timer."""
        self.clear(epochs)
        self.chart().setTitle("")
        self._timer.start()

    def stop(self) -> None:
        """The run ended: draw what is left and stop the timer."""
        self._timer.stop()
        self.flush()

    def add_batch(self, step: int, steps_per_epoch: int, loss: float) -> None:
        if not math.isfinite(loss):
            return
        if self._ema_n >= 10:  # one absurd batch (1e30) would sway the average for hundreds
            loss = min(loss, 10 * self._ema / (1 - SMOOTHING ** self._ema_n))  # of steps
        self._ema_n += 1
        self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * loss
        smoothed = self._ema / (1 - SMOOTHING ** self._ema_n)
        x = step / max(steps_per_epoch, 1)
        # at most MAX_POINTS along the run: appending to a QLineSeries costs time in the points
        # it already has (60,000 points: 0.2 s per redraw, on the GUI thread)
        if x - self._last_x >= self._epochs / MAX_POINTS:
            self._last_x = x
            self._pending_batches.append(QPointF(x, smoothed))

    def add_epoch(self, epoch: int, val_loss: float | None, val_acc: float | None) -> None:
        self._pending_epochs.append((float(epoch), val_loss, val_acc))

    def add_history(self, history: dict) -> None:
        """Earlier epochs of a resumed run: their training loss per epoch and validation."""
        losses = history.get("loss", [])
        for i, loss in enumerate(losses, start=1):
            if loss is not None:
                self._pending_batches.append(QPointF(float(i), float(loss)))
            val_loss = (history.get("val_loss") or [None] * len(losses))[i - 1]
            val_acc = (history.get("val_accuracy") or [None] * len(losses))[i - 1]
            self.add_epoch(i, val_loss, val_acc)
        self.flush()

    # -- drawing ---------------------------------------------------------------------------------
    def flush(self) -> None:
        if not self._pending_batches and not self._pending_epochs:
            return
        self.redraws += 1
        ys = [p.y() for p in self._pending_batches]
        if self._pending_batches:
            self.train_loss.append(self._pending_batches)
        for epoch, val_loss, val_acc in self._pending_epochs:
            if val_loss is not None and math.isfinite(val_loss):
                self.val_loss.append(epoch, val_loss)
                ys.append(val_loss)
            if val_acc is not None and math.isfinite(val_acc):
                self.val_acc.append(epoch, 100 * val_acc)
        last_x = max([p.x() for p in self._pending_batches] +
                     [e for e, _, _ in self._pending_epochs] + [0.0])
        self._pending_batches, self._pending_epochs = [], []
        if ys:
            self._losses.extend(ys)
            # robust: one spike (a learning rate too high for a batch) must not flatten the
            # rest of the curve against the bottom for the rest of the run
            values = sorted(self._losses)
            low = values[0]
            high = max(values[min(len(values) - 1, int(0.98 * len(values)))], *self._losses[-20:])
            pad = max((high - low) * 0.08, 0.02)
            self.loss_axis.setRange(max(0.0, low - pad), high + pad)
            self.loss_axis.applyNiceNumbers()
        self.x_axis.setRange(0, max(self._epochs, math.ceil(last_x)))

    def point_counts(self) -> tuple[int, int, int]:
        return self.train_loss.count(), self.val_loss.count(), self.val_acc.count()
