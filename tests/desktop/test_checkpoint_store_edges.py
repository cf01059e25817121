"""The Checkpoints tab at its edges: the selection across a list read again, an undo or redo
refused while a job holds the checkpoint, a checkpoint deleted behind the app's back."""
from dataclasses import replace

from PySide6.QtCore import Qt

from training.checkpoints import atomic_write_bytes, read_info, sidecar_path

from .test_checkpoints_panel import open_checkpoints, user_checkpoint


def listed(window):
    return [e.name for e in window.store.model.entries]


def test_the_selection_stays_when_the_tab_is_visited_again_or_the_list_is_read_again(
        qtbot, make_window, tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    other = user_checkpoint("other", ("x", "y"), seed=2)
    window = make_window(tiny_checkpoint, load=False)
    panel = open_checkpoints(window)
    panel.select(mine)
    window.tabs.setCurrentIndex(0)  # Ctrl+1, then back with Ctrl+3: the list is read again
    open_checkpoints(window)
    assert panel.selected_paths() == [mine] and str(mine) in panel.details.toPlainText()
    assert panel.rename_button.isEnabled() and panel.delete_button.isEnabled()
    assert panel.table.currentIndex().data() == "mine"  # the keyboard goes on from there
    panel.select(mine, other)
    window.library.refresh()  # what a finished evaluation or training run does
    assert set(panel.selected_paths()) == {mine, other} and panel.compare_button.isEnabled()


def test_an_undo_and_a_redo_refused_while_a_job_holds_the_checkpoint_wait_for_it(
        qtbot, make_window, tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint, load=False)
    panel = open_checkpoints(window)
    renamed = window.store.rename(mine, "evaluated now")
    window.store.in_use = lambda: {renamed: "a running job: stop it first"}
    window.undo_action.trigger()  # Ctrl+Z while the evaluation runs
    assert renamed.is_file() and "stop it first" in panel.notice.text()
    # the Edit menu offers the same undo as before, not a redo of what was not undone
    assert window.undo_action.isEnabled() and not window.redo_action.isEnabled()
    assert window.undo_action.text() == "&Undo Rename mine to evaluated now"
    window.store.in_use = lambda: {}  # the evaluation ended
    window.undo_action.trigger()
    assert mine.is_file() and not renamed.exists()
    assert window.statusBar().currentMessage() == "Renamed evaluated now back to mine"
    window.store.in_use = lambda: {mine: "a running job: stop it first"}
    window.redo_action.trigger()
    assert mine.is_file() and window.redo_action.text() == "&Redo Rename mine to evaluated now"
    window.store.in_use = lambda: {}
    window.redo_action.trigger()
    assert renamed.is_file() and not mine.exists()
    assert window.statusBar().currentMessage() == "Renamed mine to evaluated now again"


def test_a_redo_of_a_delete_refused_while_a_job_holds_the_checkpoint_waits_for_it(
        qtbot, make_window, tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint, load=False)
    panel = open_checkpoints(window)
    panel.select(mine)
    panel.delete_selected()
    window.undo_action.trigger()  # restored
    window.store.in_use = lambda: {mine: "a running job: stop it first"}  # e.g. exported now
    window.redo_action.trigger()
    assert mine.is_file() and "stop it first" in panel.notice.text()
    assert window.redo_action.isEnabled() and window.redo_action.text() == "&Redo Delete mine"
    assert not window.undo_action.isEnabled()
    window.store.in_use = lambda: {}
    window.redo_action.trigger()
    assert not mine.exists() and window.undo_action.text() == "&Undo Delete mine"


def test_a_checkpoint_deleted_behind_the_apps_back_is_neither_renamed_nor_left_listed(
        qtbot, make_window, tiny_checkpoint):
    parent = user_checkpoint("parent", ("a", "b"))
    child = user_checkpoint("child", ("a", "b"), seed=2)
    atomic_write_bytes(sidecar_path(child), replace(read_info(child), parent="parent")
                       .to_json().encode())
    other = user_checkpoint("other", ("x", "y"), seed=3)
    window = make_window(tiny_checkpoint, load=False)
    panel = open_checkpoints(window)
    parent.unlink()  # both files deleted in a file manager after the list was shown
    sidecar_path(parent).unlink()
    assert window.store.rename(parent, "renamed parent") is None
    assert panel.notice.text() == (f"Could not rename parent: checkpoint not found: {parent}")
    assert not window.undo_action.isEnabled()  # nothing to undo
    assert read_info(child).parent == "parent"  # not a name no checkpoint has
    assert "parent" not in listed(window)
    panel.select(other)
    other.unlink()
    sidecar_path(other).unlink()
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert panel.notice.text() == f"Could not delete other: checkpoint not found: {other}"
    assert "other" not in listed(window) and "child" in listed(window)
