"""The Checkpoints tab as a user drives it: switch, delete and undo (also across windows and
with a name taken meanwhile), rename (also cut short by a crash), import refusals, details,
compare, checkpoints in use, the Classes column."""

from PySide6.QtCore import Qt

from training.checkpoints import CheckpointInfo, save_checkpoint, sidecar_path
from training.model import build_model
from training.paths import user_checkpoints_dir

from .conftest import WAIT, drop


def user_checkpoint(name, classes, seed=1):
    import keras
    keras.utils.set_random_seed(seed)
    model = build_model(len(classes), widths=(4, 8, 8), stem=4)
    return save_checkpoint(model, CheckpointInfo(class_names=tuple(classes)),
                           user_checkpoints_dir() / f"{name}.keras")


def bar_labels(window):
    return sorted(bar.accessibleName().split(":")[0].split()[0] for bar in window.bars.bars)


def open_checkpoints(window):
    window.tabs.setCurrentWidget(window.checkpoints_panel)
    return window.checkpoints_panel


def test_switching_checkpoints_reclassifies_and_is_remembered(qtbot, make_window, image_dir,
                                                               tiny_checkpoint, tmp_path):
    from desktop.__main__ import remembered_checkpoint
    animals = user_checkpoint("animals", ("cat", "dog"))
    window = make_window(tiny_checkpoint)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: bar_labels(window) == ["blue", "green", "red"], timeout=WAIT)
    panel = open_checkpoints(window)
    names = [e.name for e in window.store.model.entries]
    assert names[0] == "cifar10" and "animals" in names  # the bundled one first
    panel.select(animals)
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar_labels(window) == ["cat", "dog"], timeout=WAIT)
    assert window.session.checkpoint == animals
    assert window.store.model.data(window.store.model.index(names.index("animals"), 0)) == "● animals"
    assert remembered_checkpoint(window.settings) == animals
    window.use_checkpoint(window.store.bundled)  # back to the bundled one: remembered as such,
    assert window.settings.value("checkpoint") is None  # not as this copy's path
    animals.unlink()
    assert remembered_checkpoint(window.settings).name == "cifar10.keras"  # gone: the bundled one


def test_a_rename_cut_short_by_a_power_cut_is_whole_again_when_the_app_starts(make_window,
                                                                              tiny_checkpoint):
    from tests.training.test_move_crash_safety import run_child
    mine = user_checkpoint("mine", ("a", "b"))
    assert run_child("rename", 3, mine, "renamed") == -9  # journal, model moved, then killed
    window = make_window(tiny_checkpoint, load=False)
    open_checkpoints(window)
    [entry] = [e for e in window.store.model.entries if not e.bundled]
    assert entry.name == "mine" and entry.info.name == "mine" and entry.info.class_names == (
        "a", "b")


def test_a_delete_that_fails_half_way_and_cannot_go_back_is_whole_again_after_closing(
        make_window, tiny_checkpoint, monkeypatch):
    """A file held open (Windows) stops a delete half-way and its undoing: the window says
    so, and when it closes the files come back before its trash is emptied."""
    from tests.training.test_move_crash_safety import failing_renames
    from training.checkpoints import read_info
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint, load=False)
    open_checkpoints(window)
    errors = []
    window.store.error.connect(errors.append)
    failing_renames(monkeypatch, lambda n, source: n >= 2)
    assert not window.store.delete(mine)
    monkeypatch.undo()
    assert "could not be moved back" in errors[0] and not mine.exists()
    window.close()
    assert mine.exists() and read_info(mine).class_names == ("a", "b")  # model and sidecar


def test_use_of_a_checkpoint_whose_sidecar_went_meanwhile_keeps_the_one_in_use_marked(
        qtbot, make_window, tiny_checkpoint):
    gone = user_checkpoint("gone", ("a", "b"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    sidecar_path(gone).unlink()  # deleted by hand after the list was shown
    panel.select(gone)
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    assert window.statusBar().currentMessage().startswith("Cannot use gone:")
    assert window.store.active == window.session.checkpoint == tiny_checkpoint
    assert "● gone" not in [e for e in (window.store.model.data(window.store.model.index(r, 0))
                                        for r in range(window.store.model.rowCount()))]


def test_delete_then_undo_restores_the_checkpoint(qtbot, make_window, tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    panel.select(mine)
    assert panel.delete_button.isEnabled()
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert not mine.exists() and not sidecar_path(mine).exists()
    assert "mine" not in [e.name for e in window.store.model.entries]
    assert window.undo_action.isEnabled() and "Delete mine" in window.undo_action.text()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert mine.exists() and sidecar_path(mine).exists()
    assert "mine" in [e.name for e in window.store.model.entries]
    # it says so, and the restored checkpoint is selected with its buttons
    assert window.statusBar().currentMessage() == "Restored mine"
    assert panel.selected_paths() == [mine] and panel.delete_button.isEnabled()
    here = panel.table.currentIndex()
    qtbot.keyClick(panel.table, Qt.Key.Key_Tab)  # Tab leaves the table, not walks its cells
    assert panel.table.currentIndex() == here
    panel.select(window.store.bundled)
    assert not panel.delete_button.isEnabled()
    assert not window.store.delete(window.store.bundled)  # refused even when asked directly
    assert window.store.bundled.is_file() and "cannot be deleted" in panel.notice.text()


def test_redo_of_a_delete_of_the_checkpoint_in_use_goes_back_to_the_bundled_one(
        qtbot, make_window, image_dir, tiny_checkpoint):
    mine = user_checkpoint("mine", ("cat", "dog"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    panel.select(mine)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo
    panel.select(mine)
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)  # put back, then used
    assert window.session.checkpoint == mine
    assert "Delete mine" in window.redo_action.text()
    window.redo_action.trigger()
    assert not mine.exists()
    assert window.session.checkpoint == window.store.bundled == window.store.active
    assert window.settings.value("checkpoint") is None
    drop(window, [image_dir / "red.png"])  # classified by the bundled model, not a trashed one
    qtbot.waitUntil(lambda: len(bar_labels(window)) == 5, timeout=WAIT)


def test_deleted_checkpoints_are_gone_for_good_after_closing(qtbot, make_window, tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    panel.select(mine)
    panel.delete_selected()
    trash = window.store.trash
    assert any(trash.iterdir())
    window.close()
    assert not trash.exists() and not mine.exists()


def test_closing_another_window_keeps_this_windows_deleted_checkpoint_restorable(
        qtbot, make_window, tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    first, second = make_window(tiny_checkpoint), make_window(tiny_checkpoint)
    open_checkpoints(first).select(mine)
    first.checkpoints_panel.delete_selected()
    open_checkpoints(second)
    second.close()  # two instances of the app share the user folder: each empties its own trash
    first.undo_action.trigger()
    assert mine.is_file() and "mine" in [e.name for e in first.store.model.entries]


def test_undo_of_a_delete_whose_name_was_taken_restores_beside_it(qtbot, make_window,
                                                                   tiny_checkpoint):
    mine = user_checkpoint("model", ("a", "b"))
    window = make_window(tiny_checkpoint)
    open_checkpoints(window).select(mine)
    window.checkpoints_panel.delete_selected()
    newcomer = user_checkpoint("model", ("x", "y"), seed=2)  # e.g. imported meanwhile
    window.undo_action.trigger()
    restored = mine.with_name("model (restored).keras")
    assert restored.is_file() and newcomer.is_file()
    assert [e.info.class_names for e in window.store.model.entries if e.name == "model"] == [
        ("x", "y")]
    assert "Delete model (restored)" in window.redo_action.text()
    window.redo_action.trigger()  # deletes the restored one again, never the newcomer
    assert not restored.exists() and newcomer.is_file()


def test_a_checkpoint_a_running_job_writes_cannot_be_renamed_or_deleted(qtbot, make_window,
                                                                       tiny_checkpoint):
    mine = user_checkpoint("being trained", ("a", "b"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    window.store.in_use = lambda: {mine: "a running job (training, evaluation or export)"}
    assert window.store.rename(mine, "other") is None and not window.store.delete(mine)
    assert mine.is_file() and "running job" in panel.notice.text()
    window.store.in_use = lambda: {}
    assert window.store.rename(mine, "other") is not None


def test_rename_keeps_it_active_and_can_be_undone(qtbot, make_window):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(mine)
    open_checkpoints(window)
    renamed = window.store.rename(mine, "holiday photos")
    assert renamed.name == "holiday photos.keras" and renamed.is_file()
    assert window.session.checkpoint == renamed and window.store.active == renamed
    window.undo_action.trigger()
    assert mine.is_file() and not renamed.exists() and window.session.checkpoint == mine
    assert window.statusBar().currentMessage() == "Renamed holiday photos back to mine"
    qtbot.waitUntil(lambda: window.model_status.text().startswith("Model: mine"), timeout=WAIT)


def lambda_keras(folder):
    import keras
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    return save_checkpoint(model, CheckpointInfo(class_names=("a", "b")), folder / "sneaky.keras")


def test_importing_a_lambda_model_is_refused_with_a_reason(qtbot, make_window, tiny_checkpoint,
                                                           tmp_path):
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    source = lambda_keras(tmp_path)
    before = sorted(user_checkpoints_dir().glob("*")) if user_checkpoints_dir().exists() else []
    panel.import_file(source)
    qtbot.waitUntil(lambda: "Lambda layer" in panel.notice.text(), timeout=WAIT)
    assert panel.notice.isVisible()
    after = sorted(user_checkpoints_dir().glob("*")) if user_checkpoints_dir().exists() else []
    assert after == before


def test_importing_a_good_model_lists_and_selects_it(qtbot, make_window, tiny_checkpoint,
                                                      copy_of_tiny):
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    source = copy_of_tiny("friend")
    panel.import_file(source)
    qtbot.waitUntil(lambda: panel.selected_paths() == [user_checkpoints_dir() / "friend.keras"],
                    timeout=WAIT)
    assert (user_checkpoints_dir() / "friend.keras").is_file()


def test_details_say_where_a_checkpoint_came_from_and_the_button_says_which_is_in_use(
        qtbot, make_window, tiny_checkpoint):
    from training.paths import bundled_checkpoint

    mine = user_checkpoint("mine", ("a", "b"))  # saved without any training record
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    panel.select(bundled_checkpoint())
    text = panel.details.toPlainText()
    assert "Started from\trandom weights (trained from scratch)" in text.replace("\n", "\t")
    assert "cifar10-jpg.tar.gz, 45,000 training images" in text and "% test (10,000 images)" in text
    assert not panel.delete_button.isEnabled()
    assert "cannot be renamed or deleted" in panel.delete_button.toolTip()
    panel.select(mine)
    assert "unknown: this file carries no training record" in panel.details.toPlainText()
    assert panel.use_button.isEnabled() and panel.use_button.text() == "Use for Predictions"
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.use_button.text() == "In Use for Predictions", timeout=WAIT)
    assert not panel.use_button.isEnabled()


def test_compare_shows_metrics_per_class_difference_config_and_both_curves(qtbot, make_window,
                                                                          tiny_checkpoint):
    from dataclasses import replace
    from training.checkpoints import atomic_write_bytes, read_info
    record = {"class_names": ["a", "b"], "data_fingerprint": "sha256:same", "created": "t",
              "accuracy": 0.6, "per_class": {"a": {"recall": 0.5}, "b": {"recall": 0.7}}}
    paths = []
    for name, recall_a, epochs, lr in (("first", 0.5, 10, 1e-4), ("second", 0.8, 20, 5e-5)):
        path = user_checkpoint(name, ("a", "b"))
        info = replace(read_info(path), metrics={"test_accuracy": recall_a},
                       config={"epochs": epochs, "lr": lr},
                       history={"val_loss": [1.0, 0.8], "val_accuracy": [0.4, recall_a]},
                       evaluations={"CIFAR-10 test part": {
                           **record, "per_class": {"a": {"recall": recall_a}, "b": {"recall": 0.7}}}})
        atomic_write_bytes(sidecar_path(path), info.to_json().encode())
        paths.append(path)
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    panel.select(*paths)
    assert panel.compare_button.isEnabled()
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    dialog = panel.compare_dialog
    a, b = dialog.windowTitle().removeprefix("Compare ").split(" and ")  # newest first: B, A
    assert (a, b) == ("second", "first")
    cells = lambda table: [[table.item(r, c).text() for c in range(table.columnCount())]  # noqa: E731
                           for r in range(table.rowCount())]
    assert ["Test accuracy", "80.00%", "50.00%"] in cells(dialog.metrics)
    assert ["a", "80.00%", "50.00%", "-30.00%"] in cells(dialog.per_class)
    assert ["b", "70.00%", "70.00%", "0.00%"] in cells(dialog.per_class)  # no difference
    assert cells(dialog.config) == [["epochs", "20", "10"], ["lr", "5e-05", "0.0001"]]
    assert len(dialog.chart.chart().series()) == 4  # loss and accuracy of each
    dialog.close()


def test_undo_leaves_a_checkpoint_alone_while_a_job_writes_it(qtbot, make_window,
                                                              tiny_checkpoint):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    renamed = window.store.rename(mine, "evaluated now")
    window.store.in_use = lambda: {renamed: "a running job"}  # an evaluation of it started
    window.undo_action.trigger()
    assert renamed.is_file() and not mine.exists()
    assert "running job" in panel.notice.text()
    window.store.in_use = lambda: {}


def test_the_classes_column_shows_every_class_and_its_tooltip_lists_them(qtbot, make_window,
                                                                         tiny_checkpoint):
    from training.data import CIFAR10_CLASSES
    user_checkpoint("many", [f"kind {i:03d}" for i in range(120)])
    window = make_window(tiny_checkpoint, load=False)
    window.resize(1600, 700)
    panel = open_checkpoints(window)
    table = panel.table
    rows = {table.model().index(r, 0).data().removeprefix("● "): r
            for r in range(table.model().rowCount())}
    cell = table.model().index(rows["cifar10 (bundled)"], 2)
    # the model hands over the whole list; the view cuts at the column's edge, not at 36 chars
    assert cell.data() == ", ".join(CIFAR10_CLASSES)
    assert table.textElideMode() == Qt.TextElideMode.ElideRight
    qtbot.waitUntil(lambda: table.columnWidth(2) > table.fontMetrics().horizontalAdvance(
        cell.data()), timeout=WAIT)  # wide enough at 1600 px: all ten are on screen
    tip = cell.data(Qt.ItemDataRole.ToolTipRole)
    assert "Classes (10): " in tip and all(name in tip for name in CIFAR10_CLASSES)
    # hundreds of classes: the cell has them all, the tooltip the first 50 and how many more
    cell = table.model().index(rows["many"], 2)
    assert cell.data().count(", ") == 119
    tip = cell.data(Qt.ItemDataRole.ToolTipRole)
    assert "Classes (120): kind 000, " in tip
    assert "kind 049 … and 70 more" in tip.replace("\n", " ")
    assert "kind 050" not in tip
