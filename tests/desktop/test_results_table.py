"""The results table: filters, sorting, keyboard, copy, export, the right-click menu, and the
low-confidence flag."""
import csv
import json

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from .conftest import WAIT, drop


def colour_folder(root, n=4):
    root.mkdir()
    for i in range(n):
        for name, colour in (("r", (220, 30, 30)), ("g", (30, 220, 30)), ("b", (30, 30, 220))):
            Image.new("RGB", (32 + 8 * i, 32), tuple(min(255, c + 5 * i) for c in colour)).save(
                root / f"{name}{i}.png")
    (root / "broken.png").write_bytes(b"not a png")
    return root


def settled(window, n):
    items = window.session.items.items
    return len(items) == n and all(i.state in ("classified", "failed") for i in items)


def shown_names(view):
    return [view.proxy.index(r, 0).data() for r in range(view.proxy.rowCount())]


def test_filters_sort_and_flags(qtbot, make_window, tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    view = window.results
    drop(window, [colour_folder(tmp_path / "pics")])
    qtbot.waitUntil(lambda: settled(window, 13), timeout=WAIT)
    model = window.session.items
    assert view.count.text() == "13 image(s)"
    tops = {i.name: model.top(i) for i in model.items if i.state == "classified"}
    # Flag filter: failed rows only, with the reason in the Flags column.
    view.flag_filter.setCurrentIndex(view.flag_filter.findData("failed"))
    assert shown_names(view) == ["broken.png"]
    assert view.proxy.index(0, 3).data().startswith("failed: ")
    # Class filter: exactly the images whose top class it is.
    view.flag_filter.setCurrentIndex(0)
    some_class = next(iter(tops.values()))[0]
    view.class_filter.setCurrentIndex(view.class_filter.findData(some_class))
    assert sorted(shown_names(view)) == sorted(n for n, t in tops.items() if t[0] == some_class)
    assert view.count.text().endswith("of 13")
    view.class_filter.setCurrentIndex(0)
    # Confidence filter and sorting by probability, highest first.
    cut = float(np.median([t[1] for t in tops.values()]))
    view.min_probability.setValue(cut * 100)
    expected = {n for n, t in tops.items() if t[1] >= round(cut * 100) / 100}  # whole percents
    assert set(shown_names(view)) == expected and len(expected) >= len(tops) // 2
    view.min_probability.setValue(0)
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    probs = [tops[n][1] for n in shown_names(view) if n in tops]
    assert probs == sorted(probs, reverse=True)
    # Converted: the wider images were resized, the 32x32 ones were not.
    assert "converted" in model.flags_of(model.items[[i.name for i in model.items].index("r1.png")])
    assert "converted" not in model.flags_of(model.items[[i.name for i in model.items].index("r0.png")])


def test_low_confidence_threshold_flags_rows_and_warns(qtbot, make_window, tiny_checkpoint, image_dir):
    window = make_window(tiny_checkpoint)
    assert "not calibrated" in window.bars.calibrated.text()  # the tiny checkpoint has none
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window, 1) and bool(window.bars.bars), timeout=WAIT)
    item = window.session.items.items[0]
    top = float(item.probabilities.max())
    window.bars.threshold.setValue(min(100, top * 100 + 5))
    assert "low confidence" in window.session.items.flags_of(item)
    assert window.bars.low_warning.isVisible() and "maybe none of these" in window.bars.low_warning.text()
    assert "(low confidence)" in window.session.items.status_text(item)
    window.bars.threshold.setValue(max(0, top * 100 - 5))
    assert "low confidence" not in window.session.items.flags_of(item)
    assert not window.bars.low_warning.isVisible()


def test_calibrated_threshold_comes_from_the_sidecar(qtbot, make_window, copy_of_tiny):
    from dataclasses import replace
    from training.checkpoints import atomic_write_bytes, read_info, sidecar_path
    path = copy_of_tiny("calibrated")
    info = replace(read_info(path), calibration={"threshold": 0.4321, "images": 77})
    atomic_write_bytes(sidecar_path(path), info.to_json().encode())
    window = make_window(path)
    assert window.bars.threshold.value() == 43.2
    assert window.bars.calibrated.text() == "calibrated: 43.2% on 77 validation images"


def test_keyboard_copy_and_export_with_the_checkpoint_in_the_header(qtbot, make_window,
                                                                    tiny_checkpoint, tmp_path):
    window = make_window(tiny_checkpoint)
    view = window.results
    drop(window, [colour_folder(tmp_path / "pics", n=2)])
    qtbot.waitUntil(lambda: settled(window, 7), timeout=WAIT)
    view.table.setFocus()
    view.select_row(0)
    qtbot.keyClick(view.table, Qt.Key.Key_Down)
    assert view.current_item() is window.session.items.items[1]
    assert window.input_check.facts.text().startswith(f"<b>{window.session.items.items[1].name}")
    qtbot.keyClick(view.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QApplication.clipboard().text().split("\t")
    assert copied[0].endswith(window.session.items.items[1].name) and len(copied) >= 3
    written = view.export("csv", str(tmp_path / "results.csv"))
    assert b"\r" not in written.read_bytes()  # one line ending: the rows' were \r\n, the rest \n
    lines = written.read_text().splitlines()
    assert lines[0] == "# name: tiny" and lines[1].startswith("# model_sha256: ")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == 7 and {r["file"].split("/")[-1] for r in rows} >= {"r0.png", "broken.png"}
    data = json.loads(view.export("json", str(tmp_path / "results.json")).read_text())
    assert data["checkpoint"]["name"] == "tiny" and data["checkpoint"]["data_fingerprint"] == ""
    broken = next(r for r in data["results"] if r["file"].endswith("broken.png"))
    assert broken["flags"] == ["failed"] and broken["error"] and broken["class"] is None
    named = view.export("json", str(tmp_path / "my results"))  # typed without a suffix
    assert named.name == "my results.json" and json.loads(named.read_text())["results"]


def test_wrong_predictions_can_be_collected_into_a_class_folder(qtbot, make_window,
                                                                 tiny_checkpoint, image_dir, tmp_path):
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png", image_dir / "green.jpg"])
    qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
    window.results.table.selectAll()
    root = tmp_path / "my data"
    (root / "green").mkdir(parents=True)
    (root / "green" / "green.jpg").write_bytes(b"already there")
    said = []
    window.results.message.connect(said.append)
    window.results.add_to_class(str(root), "green")  # copied on a worker: the window stays live
    window.results.add_to_class(str(root), "again")  # a second one queued behind the first
    qtbot.waitUntil(lambda: sum(m.startswith("Copied") for m in said) == 2, timeout=WAIT)
    assert [m for m in said if m.startswith("Copied")] == [
        f"Copied 2 image(s) to {root / name}; fine-tune on that folder in the Train tab."
        for name in ("green", "again")]  # each says how it ended
    assert sorted(p.name for p in (root / "green").iterdir()) == ["green (2).jpg", "green.jpg",
                                                                  "red.png"]
    assert sorted(p.name for p in (root / "again").iterdir()) == ["green.jpg", "red.png"]
    assert (root / "green" / "green.jpg").read_bytes() == b"already there"  # never overwritten
    assert (image_dir / "red.png").is_file()  # copies, not moves
    assert window.results.add_to_class(str(root), "../escape") is None
    assert said[-1].startswith("Not added: '../escape' is not a usable class folder name")


def test_reveal_opens_the_folder_holding_the_file(qtbot, make_window, tiny_checkpoint, image_dir,
                                                  monkeypatch):
    from PySide6.QtGui import QDesktopServices
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "nested" / "blue.png"])
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    window.results.select_row(0)
    window.results.reveal_action.trigger()
    assert opened == [str(image_dir / "nested")]


def test_a_file_name_that_is_not_utf8_exports_and_copies(qtbot, make_window, tiny_checkpoint,
                                                         tmp_path):
    import os
    folder = tmp_path / "latin1"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # a Latin-1 name from an old disk
    Image.new("RGB", (32, 32), (200, 20, 20)).save(raw.decode("utf-8", "surrogateescape"))
    window = make_window(tiny_checkpoint)
    view = window.results
    drop(window, [folder])
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    written = view.export("csv", str(tmp_path / "results.csv"))
    assert written is not None and b"caf\xe9.png" in written.read_bytes()
    view.select_row(0)
    assert "caf\\xe9.png" in view.copy()  # shown escaped, not silently dropped


def test_a_chosen_sort_order_holds_while_rows_stream_in(qtbot, make_window, tiny_checkpoint,
                                                        tmp_path):
    window = make_window(tiny_checkpoint)
    view = window.results
    model = window.session.items
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # clicked before the drop
    drop(window, [colour_folder(tmp_path / "first", n=2)])
    qtbot.waitUntil(lambda: settled(window, 7), timeout=WAIT)
    drop(window, [colour_folder(tmp_path / "more", n=3)])
    qtbot.waitUntil(lambda: settled(window, 17), timeout=WAIT)

    def probabilities_shown():
        return [model.top(model.items[view.proxy.mapToSource(view.proxy.index(r, 0)).row()])
                for r in range(view.proxy.rowCount())]
    qtbot.waitUntil(lambda: [t[1] for t in probabilities_shown() if t] == sorted(
        (t[1] for t in probabilities_shown() if t), reverse=True), timeout=WAIT)
    assert [t is None for t in probabilities_shown()][-2:] == [True, True]  # unreadable: last


def menu_items(view):
    """The right-click menu's items as the user sees them: text (without '&' and the shortcut)
    and whether it can be chosen."""
    menu = view.context_menu()
    items = {a.text().replace("&", "").split("\t")[0]: a.isEnabled()
             for a in menu.actions() if not a.isSeparator()}
    menu.deleteLater()
    return items


def test_the_context_menu_offers_only_what_applies_to_the_selection(qtbot, make_window,
                                                                    tiny_checkpoint, image_dir):
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QColor, QImage
    window = make_window(tiny_checkpoint)
    view = window.results
    said = []
    view.message.connect(said.append)
    # An empty table: nothing to copy, show, add or export.
    assert menu_items(view) == {"Copy Result": False, "Show in File Manager": False,
                                "Add to Training Class…": False, "Export Table as CSV…": False,
                                "Export Table as JSON…": False}
    view.add_to_class()  # reached anyway (a stale menu): the reason is the selection
    assert said[-1] == "Select the images to add to a class folder first."
    # A pasted image: no file, so no folder to show and nothing to copy into a class folder.
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(QColor(200, 120, 30))
    mime = QMimeData()
    mime.setImageData(image)
    QApplication.clipboard().setMimeData(mime)
    window.paste()
    QApplication.clipboard().clear()
    qtbot.waitUntil(lambda: settled(window, 1), timeout=WAIT)
    view.select_row(0)
    assert menu_items(view) == {"Copy Result": True, "Show in File Manager": False,
                                "Add to Training Class…": False, "Export Table as CSV…": True,
                                "Export Table as JSON…": True}
    view.reveal_action.trigger()
    assert said[-1] == "No folder to show: the pasted image is not a file."
    # A file: everything applies.
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: settled(window, 2), timeout=WAIT)
    view.select_row(1)
    assert all(menu_items(view).values())


def test_export_writes_the_rows_shown_filtered_and_in_the_tables_order(qtbot, make_window,
                                                                       tiny_checkpoint, tmp_path):
    """README: the table exports "with the filters applied", as sorted on screen."""
    from PySide6.QtCore import QPoint
    window = make_window(tiny_checkpoint)
    view = window.results
    drop(window, [colour_folder(tmp_path / "pics")])
    qtbot.waitUntil(lambda: settled(window, 13), timeout=WAIT)
    model = window.session.items
    dropped = [i.name for i in model.items]
    tops = [model.top(i)[0] for i in model.items if i.state == "classified"]
    view.class_filter.setCurrentIndex(view.class_filter.findData(max(tops, key=tops.count)))
    header = view.table.horizontalHeader()  # a click on the Probability column's header
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(
        header.sectionViewportPosition(2) + header.sectionSize(2) // 2, header.height() // 2))
    shown = shown_names(view)
    assert 1 < len(shown) < 13 and shown != [n for n in dropped if n in shown]  # filtered, sorted
    lines = view.export("csv", str(tmp_path / "shown.csv")).read_text().splitlines()
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert [row["file"].rsplit("/", 1)[-1] for row in rows] == shown


def test_ctrl_c_copies_every_selected_row_in_the_tables_order(qtbot, make_window, tiny_checkpoint,
                                                             tmp_path):
    window = make_window(tiny_checkpoint)
    view = window.results
    drop(window, [colour_folder(tmp_path / "pics", n=2)])
    qtbot.waitUntil(lambda: settled(window, 7), timeout=WAIT)
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    view.table.setFocus()
    view.table.setCurrentIndex(view.proxy.index(0, 0))
    qtbot.keyClick(view.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(view.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QApplication.clipboard().text().splitlines()
    assert [line.split("\t")[0].rsplit("/", 1)[-1] for line in lines] == shown_names(view)[:2]
