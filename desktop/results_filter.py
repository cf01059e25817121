"""The results table's filter (class, minimum probability, flag) and its end-eliding cells."""
from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QStyledItemDelegate

from .items import ImageListModel

FLAG_FILTERS = (("", "All flags"), ("none", "No flags"), ("low confidence", "Low confidence"),
                ("converted", "Converted"), ("failed", "Failed"))


class ResultsFilter(QSortFilterProxyModel):
    """Rows whose top class, top probability and flags pass the chosen filters."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.class_name = ""  # "" = every class
        self.min_probability = 0.0
        self.flag = ""  # "" = any; "none" = unflagged; else a flag word

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """The source model sorts itself (fast); this proxy only filters."""
        self.sourceModel().sort(column, order)

    def set_filters(self, class_name: str, min_probability: float, flag: str) -> None:
        self.beginFilterChange()  # Qt 6.9+: invalidateFilter() is deprecated
        self.class_name, self.min_probability, self.flag = class_name, min_probability, flag
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        model: ImageListModel = self.sourceModel()
        item = model.items[row]
        if self.class_name or self.min_probability > 0:
            top = model.top(item)
            if top is None or (self.class_name and top[0] != self.class_name) or \
                    top[1] < self.min_probability:
                return False
        if self.flag:
            flags = model.flags_of(item)
            return not flags if self.flag == "none" else self.flag in flags
        return True


class ElideRight(QStyledItemDelegate):
    """Cuts a cell's text at its end: a reason ("failed: cannot identify image file") keeps its
    beginning, where the table's middle elision (right for file names) left only fragments."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight
