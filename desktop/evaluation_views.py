"""The Evaluate tab's result views: the confusion matrix (a heat map of counts), the reliability
chart (accuracy against confidence per bin) and the per-class table."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .table_model import RowsTableModel


class ConfusionModel(QAbstractTableModel):
    """Counts with rows = true class and columns = predicted class, coloured by row share."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.matrix = np.zeros((0, 0), np.int64)
        self.names: list[str] = []

    def set_matrix(self, matrix, names) -> None:
        self.beginResetModel()
        self.matrix, self.names = np.asarray(matrix, np.int64), list(names)
        self.endResetModel()

    def fit_header(self, view) -> None:
        """Stretched columns, cut at the end of a long class name ("automo…", the whole name in
        the tooltip) instead of losing its first letters; a column is never narrower than about
        four characters (ten classes fit a 900-pixel window), so a many-class matrix scrolls
        sideways instead."""
        header = view.horizontalHeader()
        header.setTextElideMode(Qt.TextElideMode.ElideRight)
        header.setMinimumSectionSize(header.fontMetrics().horizontalAdvance("air…") + 8)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.names)

    def columnCount(self, parent=QModelIndex()) -> int:
        return self.rowCount(parent)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole:
            return self.names[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            kind = "true class" if orientation == Qt.Orientation.Vertical else "predicted class"
            return f"{kind}: {self.names[section]}"
        return None

    def share(self, row: int, column: int) -> float:
        total = self.matrix[row].sum()
        return float(self.matrix[row, column] / total) if total else 0.0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        share = self.share(r, c)
        if role == Qt.ItemDataRole.DisplayRole:
            return str(int(self.matrix[r, c]))
        if role == Qt.ItemDataRole.BackgroundRole:
            base = (47, 111, 202) if r == c else (217, 72, 43)  # blue right, red wrong
            strength = share if r == c else min(1.0, share * 4)  # mistakes are rarer: stretch
            return QColor(*(int(255 - (255 - v) * strength) for v in base))
        if role == Qt.ItemDataRole.ForegroundRole:
            strength = share if r == c else min(1.0, share * 4)
            return QColor("white" if strength > 0.55 else "black")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignCenter
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{self.matrix[r, c]} {self.names[r]} image(s) predicted as {self.names[c]} "
                    f"({share:.1%} of {self.names[r]}); click to see them")
        return None


class ReliabilityChart(QWidget):
    """Accuracy (blue) beside mean confidence (orange) per confidence bin: where they match,
    the model is calibrated (the orange bars stand for the diagonal of a reliability plot)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        from PySide6.QtCharts import QChart, QChartView
        from PySide6.QtGui import QPainter
        self.chart = QChart()
        self.chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setAccessibleName("Reliability diagram")
        self.summary = QLabel(wordWrap=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)

    def show_bins(self, calibration: dict) -> None:
        from PySide6.QtCharts import QBarCategoryAxis, QBarSeries, QBarSet, QValueAxis
        self.chart.removeAllSeries()
        for axis in self.chart.axes():
            self.chart.removeAxis(axis)
        bins = calibration["bins"]
        accuracy = QBarSet("accuracy in the bin")
        accuracy.setColor(QColor("#2f6fca"))
        confidence = QBarSet("mean confidence in the bin")
        confidence.setColor(QColor("#d9822b"))
        for row in bins:
            accuracy.append(100 * (row["accuracy"] or 0))
            confidence.append(100 * (row["confidence"] or 0))
        bars = QBarSeries()
        bars.append(accuracy)
        bars.append(confidence)
        self.chart.addSeries(bars)
        x_axis = QBarCategoryAxis(titleText="confidence (top probability), %")
        x_axis.append([f"{row['low'] * 100:.0f}–{row['high'] * 100:.0f}" for row in bins])
        x_axis.setTruncateLabels(False)  # "90–100" is a little wider than its bar group
        y_axis = QValueAxis(titleText="%", min=0, max=100, labelFormat="%d")
        self.chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
        bars.attachAxis(x_axis)
        bars.attachAxis(y_axis)
        counts = ", ".join(str(row["count"]) for row in bins)
        self.summary.setText(
            f"<b>Expected calibration error {calibration['ece']:.3f}</b> (0 = the confidence "
            "shown is the accuracy you get). Blue above orange: the model is more often right "
            f"than it claims (under-confident); below: over-confident. Images per bin: {counts}.")
        self.bins = bins


class PerClassModel(RowsTableModel):
    HEADERS = ("Class", "Precision", "Recall", "F1", "Images")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tuple] = []

    def set_rows(self, per_class: dict) -> None:
        self.beginResetModel()
        self._rows = [(n, r["precision"], r["recall"], r["f1"], r["support"])
                     for n, r in per_class.items()]
        self.endResetModel()

    def rows(self) -> list:
        return self._rows

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)  # numbers
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        value = self._rows[index.row()][index.column()]
        if isinstance(value, str):
            return value
        if value is None:
            return "—"  # no images of the class, or none predicted as it: undefined
        return f"{value:.1%}" if isinstance(value, float) else f"{int(value):,}"
