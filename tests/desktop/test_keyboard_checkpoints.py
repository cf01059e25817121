"""The Checkpoints tab, its dialogs and the banner by keyboard, mouse and screen reader: Delete
goes on to the next row, a double-click uses a checkpoint, the export and compare dialogs' fields
and tables have names, and the banner's buttons come where the banner is in the Tab order (before
the tabs)."""
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QApplication

from .conftest import WAIT, drop, tflite_export_dialog
from .test_checkpoints_panel import bar_labels, open_checkpoints, user_checkpoint


def focus(qtbot, window, widget):
    """Give ``widget`` the keyboard, as a user's click on it would."""
    qtbot.waitUntil(widget.isVisible, timeout=WAIT)  # a banner's new buttons show when idle
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=WAIT)


def listed(panel):
    """The checkpoints as the table shows them, top to bottom."""
    return [panel.store.model.entries[panel.proxy.mapToSource(panel.proxy.index(r, 0)).row()].path
            for r in range(panel.proxy.rowCount())]


def spoken_name(widget):
    return QAccessible.queryAccessibleInterface(widget).text(QAccessible.Text.Name)


def test_delete_by_keyboard_goes_on_to_the_next_checkpoint_and_undo_restores(
        qtbot, make_window, tiny_checkpoint):
    """The Delete key (or Space on the Delete button) leaves the row below selected, with its
    details, and the keyboard on the table: Down and Delete go on from there."""
    for n, name in enumerate(("one", "two", "three")):
        user_checkpoint(name, ("a", "b"), seed=n)
    window = make_window(tiny_checkpoint, load=False)
    panel = open_checkpoints(window)
    rows = listed(panel)
    middle = next(r for r, p in enumerate(rows) if p.stem in ("one", "two", "three")) + 1
    gone, after = rows[middle], rows[middle + 1]
    panel.select(gone)
    focus(qtbot, window, panel.table)
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)  # the button's shortcut: it clicks it
    qtbot.waitUntil(lambda: not gone.exists(), timeout=WAIT)  # (shown pressed a moment first)
    assert listed(panel) == rows[:middle] + rows[middle + 1:]
    assert panel.selected_paths() == [after] and panel.table.currentIndex().row() == middle
    assert after.stem in panel.details.toPlainText()
    assert QApplication.focusWidget() is panel.table
    qtbot.keyClick(panel.table, Qt.Key.Key_Up)  # the keyboard goes on from the new row
    assert panel.selected_paths() == [rows[middle - 1]]
    qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    assert panel.selected_paths() == [after]
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert gone.exists() and listed(panel) == rows and panel.selected_paths() == [gone]
    # the Delete button by keyboard: it is disabled a moment, and the keyboard went on to
    # "Import .keras…"; it stays on the list, on the row below
    focus(qtbot, window, panel.delete_button)
    qtbot.keyClick(panel.delete_button, Qt.Key.Key_Space)
    assert not gone.exists() and panel.selected_paths() == [after]
    assert QApplication.focusWidget() is panel.table
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert gone.exists() and panel.selected_paths() == [gone]
    # the last row deleted: the one now last is selected
    panel.select(rows[-1])
    focus(qtbot, window, panel.table)
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: not rows[-1].exists(), timeout=WAIT)
    assert panel.selected_paths() == [rows[-2]]


def test_double_clicking_a_checkpoint_uses_it_and_classifies_the_dropped_images_again(
        qtbot, make_window, tiny_checkpoint, image_dir):
    """README: "Use for Predictions (or double-click)"."""
    user_checkpoint("animals", ("cat", "dog"))
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: bar_labels(window) == ["blue", "green", "red"], timeout=WAIT)
    panel = open_checkpoints(window)
    animals = next(path for path in listed(panel) if path.stem == "animals")
    index = panel.proxy.index(listed(panel).index(animals), 0)
    panel.table.scrollTo(index)
    here = panel.table.visualRect(index).center()
    for click in (qtbot.mouseClick, qtbot.mouseDClick):  # (QTest's double-click is the second
        click(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=here)  # click of two)
    qtbot.waitUntil(lambda: bar_labels(window) == ["cat", "dog"], timeout=WAIT)
    assert window.session.checkpoint == animals
    [item] = window.session.items.items  # the dropped image, with the new checkpoint's classes
    assert item.state == "classified" and window.session.items.top(item)[0] in ("cat", "dog")


def test_export_and_compare_dialogs_name_their_fields_and_tables(qtbot, make_window,
                                                                 tiny_checkpoint, tmp_path):
    """A screen reader says what the export folder field, the export progress and the compare
    tables are ("Folder:" labels a row of two widgets, so it names neither)."""
    window = make_window(tiny_checkpoint, load=False)
    dialog = tflite_export_dialog(window, tiny_checkpoint, tmp_path / "export")
    assert spoken_name(dialog.folder) == "Export folder"
    assert spoken_name(dialog.progress) == "Export progress"
    dialog.close()
    paths = [user_checkpoint(name, ("a", "b")) for name in ("first", "second")]
    panel = open_checkpoints(window)
    panel.select(*paths)
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    compare = panel.compare_dialog
    assert spoken_name(compare.metrics) == "Metrics of A and B"
    assert spoken_name(compare.config) == "Config differences"
    compare.close()


def test_the_banners_buttons_come_before_the_tabs_in_the_tab_order(qtbot, make_window,
                                                                   tiny_checkpoint):
    """The banner is above the tabs: Tab goes from its first button to the next and on to the
    tab bar, and Shift+Tab from the tab bar back to its last button, also on a tab built after
    the offer (Checkpoints), whose contents came between them."""
    window = make_window(tiny_checkpoint, load=False)
    window.banner.offer("New checkpoint gamma is saved. Use it for predictions?",
                        [("Use it", None), ("Keep current", None)])
    first, last = window.banner.buttons
    bar = window.tabs.tabBar()
    for tab in (2, 0):  # Checkpoints, built on this first visit; Classify
        window.tabs.setCurrentIndex(tab)
        focus(qtbot, window, first)
        qtbot.keyClick(first, Qt.Key.Key_Tab)
        assert QApplication.focusWidget() is last
        qtbot.keyClick(last, Qt.Key.Key_Tab)
        assert QApplication.focusWidget() is bar
        qtbot.keyClick(bar, Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
        assert QApplication.focusWidget() is last
    window.banner.offer("Resume the unfinished run?", [("Resume", None), ("Discard", None)])
    resume, discard = window.banner.buttons  # a new offer's buttons take the same place
    focus(qtbot, window, resume)
    qtbot.keyClick(resume, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is discard
    qtbot.keyClick(discard, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is bar
