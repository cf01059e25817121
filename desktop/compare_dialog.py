"""Two checkpoints side by side: metrics, per-class accuracy difference, config difference and
their training curves overlaid."""
from __future__ import annotations

import json
import math

from PySide6.QtCharts import QChart, QChartView, QLegend, QLineSeries, QValueAxis
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout)

from training.compare import compare
from training.library import Entry

from .styling import themed

COLOURS = ("#2f6fca", "#d9822b")  # checkpoint A, checkpoint B
METRIC_NAMES = {  # sidecar keys in words; the key stays in the row's tooltip
    "test_accuracy": "Test accuracy", "val_accuracy": "Validation accuracy",
    "val_accuracy_tta": "Validation accuracy (averaged with mirror images)", "best_epoch": "Best epoch",
    "command_wall_s": "Whole command, seconds", "train_images": "Training images",
    "val_images": "Validation images", "test_images": "Test images"}


def _text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if abs(value) >= 10:
            return f"{value:,.1f}"
        # 4 significant digits below 0.01 (learning rates 1e-4 vs 5e-5 must not both read 0.0001)
        return f"{value:.4g}" if 0 < abs(value) < 0.01 else f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def _table(headers, rows, name: str = "", colour_last: bool = False,
           percent: bool = False) -> QTableWidget:
    """A read-only table, called ``name`` by screen readers; accuracies (or every float, with
    ``percent``) shown as percentages."""
    table = QTableWidget(len(rows), len(headers))
    table.setAccessibleName(name)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(_text(value))
            item.setToolTip(_text(value))
            if colour_last and c == len(row) - 1 and isinstance(value, float) and value:
                item.setForeground(themed("#187436" if value > 0 else "#b00020"))
                item.setText(f"{value:+.2%}")
            elif isinstance(value, float) and c and (percent or "accuracy" in str(row[0])):
                item.setText(f"{value:.2%}")
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # A and B get equal room
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    return table


class CompareDialog(QDialog):
    """Metrics, per-class recall (on data both were evaluated on), config and curves of A and B."""

    def __init__(self, a: Entry, b: Entry, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Compare {a.name} and {b.name}")
        self.resize(860, 560)
        self.result = compare(a.info, b.info)
        names = (a.name, b.name)
        tabs = QTabWidget()
        numeric = [row for row in self.result["metrics"]  # notes and such stay in the details
                   if all(v is None or isinstance(v, (int, float)) for v in row[1:])]
        self.metrics = _table(["Metric", *names], numeric, "Metrics of A and B")
        for r, row in enumerate(numeric):
            key = self.metrics.item(r, 0)
            key.setText(METRIC_NAMES.get(row[0], row[0]))
            key.setToolTip(f"sidecar key: {row[0]}")
        tabs.addTab(self.metrics, "Metrics")
        if self.result["per_class"]:
            self.per_class = _table(["Class", f"accuracy {names[0]}", f"accuracy {names[1]}",
                                     "difference (B − A)"], self.result["per_class"],
                                    "Accuracy per class of A and B", colour_last=True, percent=True)
            tabs.addTab(self.per_class, f"Per class ({self.result['per_class_data']})")
        else:
            self.per_class = QLabel("Evaluate both checkpoints on the same data (Evaluate tab) to "
                                    "compare them class by class.", wordWrap=True,
                                    alignment=Qt.AlignmentFlag.AlignCenter)
            tabs.addTab(self.per_class, "Per class")
        self.config = _table(["Setting", *names], self.result["config"], "Config differences")
        tabs.addTab(self.config, f"Config ({len(self.result['config'])} differences)")
        self.chart = self._curves(names, self.result["histories"])
        tabs.addTab(self.chart, "Training curves")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)

    @staticmethod
    def _curves(names, histories) -> QChartView:
        chart = QChart()
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        chart.setTitle("Validation loss (dashed) and accuracy (solid) per epoch")
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.legend().setMarkerShape(QLegend.MarkerShape.MarkerShapeFromSeries)  # dashes show
        x_axis = QValueAxis(titleText="epoch", labelFormat="%d")
        loss_axis = QValueAxis(titleText="validation loss", labelFormat="%.2f")
        acc_axis = QValueAxis(titleText="validation accuracy %", labelFormat="%d")
        chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(loss_axis, Qt.AlignmentFlag.AlignLeft)
        chart.addAxis(acc_axis, Qt.AlignmentFlag.AlignRight)
        most, losses, accs = 1, [], []
        for name, history, colour in zip(names, histories, COLOURS):
            for key, axis, scale, dashed in (("val_loss", loss_axis, 1.0, True),
                                             ("val_accuracy", acc_axis, 100.0, False)):
                # (epoch, value): an epoch whose value was not finite (None in the history)
                # leaves a gap, and the later epochs stay where they were
                points = [(i + 1, v) for i, v in enumerate(history.get(key, []))
                          if isinstance(v, (int, float)) and math.isfinite(v)]
                values = [v for _, v in points]
                if not values:
                    continue
                series = QLineSeries(name=f"{name} ({'loss' if dashed else 'accuracy'})")
                pen = QPen(QColor(colour).lighter(135) if dashed else QColor(colour), 2.0)
                if dashed:
                    pen.setStyle(Qt.PenStyle.DashLine)
                series.setPen(pen)
                series.append([QPointF(epoch, v * scale) for epoch, v in points])
                chart.addSeries(series)
                series.attachAxis(x_axis)
                series.attachAxis(axis)
                (losses if dashed else accs).extend(v * scale for v in values)
                most = max(most, points[-1][0])
        x_axis.setRange(1, max(most, 2))
        x_axis.applyNiceNumbers()
        if losses:
            loss_axis.setRange(0, max(losses) * 1.05)
        acc_axis.setRange(min(accs, default=0) // 10 * 10, 100)
        view = QChartView(chart)
        view.setRenderHint(QPainter.RenderHint.Antialiasing)
        view.setAccessibleName("Training curves of both checkpoints")
        return view
