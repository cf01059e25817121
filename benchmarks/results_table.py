"""Results table with 10,000 rows: filling, sorting, filtering and scrolling, against a
``QTableWidget`` filled with one item per cell (the usual alternative) in the same run.

    python benchmarks/results_table.py [--rows 10000] [--runs 3]

Offscreen Qt, one process. Rows are synthetic classified images (random probabilities over the
CIFAR-10 classes, a 40 px thumbnail each), added to the real ``ImageListModel`` behind the real
``ResultsView`` in batches of 256 as a folder drop delivers them. Scrolling: the view jumps a page
at a time from top to bottom and each step is painted (``viewport().repaint()``); the median and
95th-percentile time per step say whether it stays smooth (under 16 ms is 60 frames a second).
Medians over the runs, and ratios to the baseline, are printed. No thresholds.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def scroll_steps(table, app) -> list[float]:
    bar = table.verticalScrollBar()
    times, value = [], 0
    bar.setValue(0)
    while True:
        t0 = time.perf_counter()
        bar.setValue(value)
        table.viewport().repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
        if value >= bar.maximum():
            return times
        value = min(bar.maximum(), value + bar.pageStep())


def run_ours(rows: int, app, thumb, rng) -> dict:
    from desktop.items import ImageItem, ImageListModel
    from desktop.results_view import ResultsView

    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    model = ImageListModel()
    model.class_names = names
    view = ResultsView(model, lambda: {"name": "bench"})
    view.resize(520, 700)
    view.show()
    view.set_class_names(names)
    probs = rng.dirichlet(np.full(10, 0.3), rows).astype(np.float32)
    from PySide6.QtGui import QIcon
    icon = QIcon(thumb)  # a row's picture as the app keeps it (desktop.items.row_icon)
    t0 = time.perf_counter()
    for start in range(0, rows, 256):
        batch = []
        for i in range(start, min(start + 256, rows)):
            item = ImageItem(source=Path(f"/data/img{i:05d}.png"), name=f"img{i:05d}.png",
                             state="classified", probabilities=probs[i], thumbnail=icon)
            batch.append(item)
        model.add(batch)
        app.processEvents()
    fill = time.perf_counter() - t0
    t0 = time.perf_counter()
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    app.processEvents()
    sort = time.perf_counter() - t0
    t0 = time.perf_counter()
    view.class_filter.setCurrentIndex(view.class_filter.findData("cat"))
    app.processEvents()
    filtered = time.perf_counter() - t0
    view.class_filter.setCurrentIndex(0)
    app.processEvents()
    steps = scroll_steps(view.table, app)
    view.close()
    return {"fill": fill, "sort": sort, "filter": filtered, "scroll": steps}


def run_widget_table(rows: int, app, thumb, rng) -> dict:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

    table = QTableWidget(0, 4)
    table.resize(520, 700)
    table.show()
    icon = QIcon(thumb)
    probs = rng.dirichlet(np.full(10, 0.3), rows)
    t0 = time.perf_counter()
    for start in range(0, rows, 256):
        for i in range(start, min(start + 256, rows)):
            table.insertRow(i)
            name = QTableWidgetItem(icon, f"img{i:05d}.png")
            table.setItem(i, 0, name)
            table.setItem(i, 1, QTableWidgetItem(str(int(probs[i].argmax()))))
            table.setItem(i, 2, QTableWidgetItem(f"{probs[i].max():.1%}"))
            table.setItem(i, 3, QTableWidgetItem(""))
        app.processEvents()
    fill = time.perf_counter() - t0
    t0 = time.perf_counter()
    table.sortItems(2, Qt.SortOrder.DescendingOrder)
    app.processEvents()
    sort = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(rows):  # filtering a widget table: hide rows one by one
        table.setRowHidden(i, table.item(i, 1).text() != "3")
    app.processEvents()
    filtered = time.perf_counter() - t0
    for i in range(rows):
        table.setRowHidden(i, False)
    steps = scroll_steps(table, app)
    table.close()
    return {"fill": fill, "sort": sort, "filter": filtered, "scroll": steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    global np, Qt
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPixmap
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    thumb = QPixmap(40, 40)
    thumb.fill(QColor("#8aa9d6"))
    rng = np.random.default_rng(0)
    results = {"ours": [], "widget table": []}
    for _ in range(args.runs):
        results["ours"].append(run_ours(args.rows, app, thumb, rng))
        results["widget table"].append(run_widget_table(args.rows, app, thumb, rng))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, offscreen Qt; {args.rows} rows, {args.runs} runs")
    summary = {}
    for name, runs in results.items():
        steps = [t for run in runs for t in run["scroll"]]
        summary[name] = {k: statistics.median(run[k] for run in runs)
                         for k in ("fill", "sort", "filter")}
        summary[name]["scroll p50"] = statistics.median(steps)
        summary[name]["scroll p95"] = sorted(steps)[int(0.95 * (len(steps) - 1))]
    print(f"{'':14s}" + "".join(f"{k:>14s}" for k in summary["ours"]))
    for name, row in summary.items():
        print(f"{name:14s}" + "".join(f"{v * 1000:12.1f}ms" for v in row.values()))
    print(f"{'ratio':14s}" + "".join(
        f"{summary['widget table'][k] / max(v, 1e-9):13.1f}x" for k, v in summary["ours"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
