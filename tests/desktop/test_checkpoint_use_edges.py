"""Which checkpoint predictions use, at its edges: an undo that fails, a model file replaced
behind the app's back or refused by Keras, the deleted one in use put back, a relative
``--checkpoint`` and a checkpoint renamed in a file manager."""
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import training.moves
from training.checkpoints import CheckpointError, atomic_write_bytes, read_info, sidecar_path

from .conftest import WAIT, drop
from .test_checkpoints_panel import bar_labels, open_checkpoints, user_checkpoint

CTRL = Qt.KeyboardModifier.ControlModifier


def test_an_undo_or_redo_that_fails_can_be_tried_again(qtbot, make_window, tiny_checkpoint,
                                                       monkeypatch):
    mine = user_checkpoint("mine", ("a", "b"))
    window = make_window(tiny_checkpoint)  # (loaded: the window is active, Ctrl+Z reaches it)
    panel = open_checkpoints(window)
    panel.select(mine)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(training.moves, "atomic_write_bytes", disk_full)  # the move's journal
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert not mine.exists() and "No space left on device" in panel.notice.text()
    assert "nothing was moved" in panel.notice.text()
    # still to undo (Ctrl+Z again), not lost: closing the app would have emptied the trash
    assert window.undo_action.isEnabled() and window.undo_action.text() == "&Undo Delete mine"
    assert not window.redo_action.isEnabled()
    monkeypatch.undo()  # room again
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert mine.is_file() and window.statusBar().currentMessage() == "Restored mine"
    monkeypatch.setattr(training.moves, "atomic_write_bytes", disk_full)
    window.redo_action.trigger()  # the delete again, which fails too: Redo stays
    assert mine.is_file() and window.redo_action.text() == "&Redo Delete mine"
    assert not window.undo_action.isEnabled()
    monkeypatch.undo()
    window.redo_action.trigger()
    assert not mine.exists() and window.undo_action.text() == "&Undo Delete mine"


def test_an_undo_that_can_never_succeed_gives_way_to_the_steps_before_it(
        qtbot, make_window, tiny_checkpoint):
    gone = user_checkpoint("gone", ("a", "b"))
    mine = user_checkpoint("mine", ("a", "b"), seed=2)
    window = make_window(tiny_checkpoint)
    panel = open_checkpoints(window)
    window.store.delete(gone)
    renamed = window.store.rename(mine, "renamed")
    by_hand = renamed.with_name("by hand.keras")  # renamed again in a file manager
    os.rename(renamed, by_hand)
    os.rename(sidecar_path(renamed), sidecar_path(by_hand))
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)  # the rename's undo: its file is not there
    assert "checkpoint not found" in panel.notice.text()
    assert window.undo_action.text() == "&Undo Delete gone"  # not stuck on the rename for ever
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert gone.is_file()  # (the trash goes when the window closes: it would have been lost)


def use(qtbot, window, path):
    """Select ``path`` on the Checkpoints tab and click Use for Predictions."""
    panel = open_checkpoints(window)
    panel.select(path)
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    return panel


def still_on(qtbot, window, good):
    """Predictions use ``good``, marked and remembered so, and the status line says it."""
    assert window.session.checkpoint == good == window.store.active
    assert window.settings.value("checkpoint") == str(good)
    qtbot.waitUntil(lambda: window.model_status.text().startswith("Model: good"), timeout=WAIT)
    panel = window.checkpoints_panel
    panel.select(good)
    assert not panel.use_button.isEnabled()  # "In Use for Predictions"


def test_a_checkpoint_whose_model_file_was_replaced_is_refused_and_the_model_stays(
        qtbot, make_window, image_dir):
    good = user_checkpoint("good", ("cat", "dog"))
    other = user_checkpoint("other", ("x", "y", "z"), seed=3)
    swapped = user_checkpoint("swapped", ("a", "b"), seed=2)
    window = make_window(good)
    window.settings.setValue("checkpoint", str(good))  # chosen in an earlier session
    shutil.copyfile(other, swapped)  # behind the app's back: another model under its name
    use(qtbot, window, swapped)
    assert window.statusBar().currentMessage() == (
        "Cannot use swapped: swapped.keras is not the model its sidecar was written for "
        "(SHA-256 differs). Still using good.")
    still_on(qtbot, window, good)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: bar_labels(window) == ["cat", "dog"], timeout=WAIT)


def keras_in_use(window):
    return getattr(window.session.classifier, "model", None) is not None


@pytest.mark.parametrize("settled", [True, False], ids=["in-use-a-while", "still-loading"])
def test_a_checkpoint_keras_refuses_after_the_switch_gives_the_model_back(
        qtbot, make_window, image_dir, settled):
    good = user_checkpoint("good", ("cat", "dog"))
    bad = user_checkpoint("bad", ("x", "y", "z"), seed=2)  # its sidecar names two classes:
    atomic_write_bytes(sidecar_path(bad), replace(read_info(bad), class_names=("x", "y"))
                       .to_json().encode())  # (its hash is right: only loading tells)
    window = make_window(good)
    window.settings.setValue("checkpoint", str(good))
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: bar_labels(window) == ["cat", "dog"], timeout=WAIT)
    if settled:  # (else its Keras load may still run: given up for the switch, loaded again)
        qtbot.waitUntil(lambda: keras_in_use(window), timeout=WAIT)
    kept = window.session.classifier
    use(qtbot, window, bad)
    qtbot.waitUntil(lambda: "Cannot use bad" in window.statusBar().currentMessage(),
                    timeout=WAIT)
    assert window.statusBar().currentMessage() == (
        "Cannot use bad: model has 3 outputs but the sidecar names 2 classes. Still using good.")
    still_on(qtbot, window, good)
    assert window.session.classifier is kept or not settled  # not loaded again
    # classified by good again (numpy's read of bad refused it too), not "not classified"
    qtbot.waitUntil(lambda: window.session.items.items[0].state == "classified", timeout=WAIT)
    assert bar_labels(window) == ["cat", "dog"]


def test_a_checkpoint_keras_refuses_as_the_window_closes_starts_nothing_after(
        qtbot, make_window, monkeypatch):
    """The refusal arrived after the window had closed, and going back to the model used before
    started a load (and the progress timer) on lanes already shut down."""
    import threading

    from training.predict import Classifier
    good = user_checkpoint("good", ("cat", "dog"))
    bad = user_checkpoint("bad", ("x", "y", "z"), seed=2)
    window = make_window(good)  # (its own Keras load may still run: going back loads it again)
    started, closing, real = threading.Event(), threading.Event(), Classifier.load

    def load(path, *args, **kwargs):
        if Path(path) == bad:  # refused only once the window is closing (renamed meanwhile)
            started.set()
            closing.wait(WAIT / 1000)
            raise CheckpointError(f"checkpoint not found: {path}")
        return real(path, *args, **kwargs)
    monkeypatch.setattr(Classifier, "load", staticmethod(load))
    use(qtbot, window, bad)
    real_shutdown = window.session.shutdown
    monkeypatch.setattr(window.session, "shutdown", lambda: (closing.set(), real_shutdown()))
    qtbot.waitUntil(started.is_set, timeout=WAIT)
    window.close()  # waits for the lanes: the refusal is queued for the window meanwhile
    QApplication.processEvents()  # and arrives here
    assert not window.classify.progress_timer.isActive()
    assert not any(lane.busy() for lane in window.session._lanes)


def test_undoing_the_delete_of_the_checkpoint_in_use_uses_it_again(qtbot, make_window,
                                                                   tiny_checkpoint):
    mine = user_checkpoint("mine", ("cat", "dog"))
    window = make_window(tiny_checkpoint)
    panel = use(qtbot, window, mine)
    qtbot.waitUntil(lambda: window.model_status.text().startswith("Model: mine"), timeout=WAIT)
    panel.select(mine)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert window.session.checkpoint == window.store.bundled  # as it did
    assert window.settings.value("checkpoint") is None
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert mine.is_file() and window.session.checkpoint == mine == window.store.active
    assert window.settings.value("checkpoint") == str(mine)  # and at the next launch
    assert window.statusBar().currentMessage() == "Restored mine, in use for predictions again"
    assert "● mine" in [window.store.model.index(r, 0).data()
                        for r in range(window.store.model.rowCount())]
    qtbot.waitUntil(lambda: window.model_status.text().startswith("Model: mine"), timeout=WAIT)
    window.redo_action.trigger()  # deleted again: back to the bundled one, as before
    assert not mine.exists() and window.session.checkpoint == window.store.bundled


def test_a_relative_checkpoint_path_at_launch_is_the_library_checkpoint_in_use(
        qtbot, make_window, monkeypatch):
    mine = user_checkpoint("mine", ("cat", "dog"))
    monkeypatch.chdir(mine.parent.parent)  # python -m desktop --checkpoint checkpoints/mine.keras
    window = make_window(Path("checkpoints") / "mine.keras")
    panel = open_checkpoints(window)
    assert "● mine" in [window.store.model.index(r, 0).data()
                        for r in range(window.store.model.rowCount())]
    panel.select(mine)
    assert panel.use_button.text() == "In Use for Predictions"
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert not mine.exists() and window.session.checkpoint == window.store.bundled


def test_a_checkpoint_renamed_in_a_file_manager_goes_by_its_new_name(qtbot, make_window,
                                                                     tmp_path):
    from tests.training.test_train import TINY, colour_set
    from training.train import train
    mine = user_checkpoint("mine", ("cat", "dog"))
    best = mine.with_name("best.keras")
    os.rename(mine, best)  # both files, while the app was closed: the sidecar still says "mine"
    os.rename(sidecar_path(mine), sidecar_path(best))
    window = make_window(best)
    assert window.model_status.text() == "Model: best (2 classes)"
    open_checkpoints(window)
    window.tabs.setCurrentWidget(window.train_panel)
    assert window.train_panel.form.start_combo.itemText(0) == "best, the model in use (fine-tune)"
    assert [e.name for e in window.store.model.entries if not e.bundled] == ["best"]
    # a fine-tune records it as its parent by the name the library lists
    result = train(colour_set(8), replace(TINY, epochs=1), tmp_path / "child.keras", parent=best)
    assert read_info(result.checkpoint).parent == "best"
