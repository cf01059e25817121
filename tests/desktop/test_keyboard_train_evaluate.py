"""The Train and Evaluate tabs by keyboard alone: the keyboard stays on the run buttons (Start,
Pause, Stop; Evaluate, Cancel) and comes back when a run or a re-read ends, Tab skips what takes
no key, Enter evaluates, and the controls have names a screen reader says."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from .conftest import WAIT
from .test_keyboard_and_menus import focus
from .test_train_panel import RUN_WAIT, fruit_folders


def tab_walk(qtbot, window, start, steps=80):
    """Every widget Tab gives the keyboard to, from ``start`` round to it again."""
    focus(qtbot, window, start)
    seen = []
    for _ in range(steps):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        if QApplication.focusWidget() is start:
            return seen
        seen.append(QApplication.focusWidget())
    raise AssertionError(f"Tab never came back to {start}: {seen}")


def test_space_on_start_and_stop_leaves_the_keyboard_on_the_run_buttons(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """Disabling the pressed button threw the keyboard to the tab bar, far from Pause and Stop."""
    from .test_train_panel import train_window, wait_checked
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"),
                                 epochs=200)
    wait_checked(qtbot, panel)
    focus(qtbot, window, panel.start_button)
    with qtbot.waitSignal(window.trainer.running_changed, timeout=WAIT):
        qtbot.keyClick(panel.start_button, Qt.Key.Key_Space)
    assert not panel.start_button.isEnabled()
    assert QApplication.focusWidget() is panel.pause_button  # the run's next control
    qtbot.keyClick(panel.pause_button, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.stop_button
    with qtbot.waitSignal(window.trainer.running_changed, timeout=RUN_WAIT,
                          check_params_cb=lambda running: not running):
        qtbot.keyClick(panel.stop_button, Qt.Key.Key_Space)
    assert not panel.stop_button.isEnabled()
    assert QApplication.focusWidget() is panel.start_button  # ready for the next run


def test_a_resumed_run_ending_leaves_the_keyboard_on_check_where_start_waits_for_it(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """After a resumed run Start waits for a Check: the keyboard went to the tab bar."""
    from .test_train_runs import crashed_run
    crashed_run(tmp_path, fruit_folders(tmp_path / "fruit"), epochs=200)
    window = make_window(tiny_checkpoint)
    panel = window.train_panel
    with qtbot.waitSignal(window.trainer.running_changed, timeout=WAIT):
        qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.trainer.batch, timeout=RUN_WAIT):  # training again
        pass
    focus(qtbot, window, panel.stop_button)
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT):
        qtbot.keyClick(panel.stop_button, Qt.Key.Key_Space)
    assert not panel.start_button.isEnabled()
    assert QApplication.focusWidget() is panel.data_view.check_button


def test_start_reading_the_data_again_gives_the_keyboard_back_to_start_when_done(
        qtbot, make_window, tmp_path):
    """Start re-reads the data when the chosen start reads images another way: Start is
    disabled meanwhile, and the keyboard went to the tab bar instead of waiting on Check."""
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.model import build_model
    from training.preprocessing import Preprocessing

    from .test_train_panel import train_window, wait_checked
    active = save_checkpoint(build_model(3, widths=(4, 8, 8), stem=4),
                             CheckpointInfo(class_names=("apple", "lime", "plum"),
                                            preprocessing=Preprocessing(resize="pad")),
                             tmp_path / "padded.keras")
    window, panel = train_window(make_window, active, fruit_folders(tmp_path / "fruit"), epochs=1)
    wait_checked(qtbot, panel)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    focus(qtbot, window, panel.start_button)
    qtbot.keyClick(panel.start_button, Qt.Key.Key_Space)
    assert "read again" in panel.result_label.text() and not panel.start_button.isEnabled()
    assert QApplication.focusWidget() is panel.data_view.check_button
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=WAIT)
    assert QApplication.focusWidget() is panel.start_button


def test_space_on_evaluate_leaves_the_keyboard_on_cancel_then_on_evaluate(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    from .test_evaluation_panel import colour_folders
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    window.tabs.setCurrentWidget(panel)
    colour_folders(tmp_path / "shapes")
    panel.path_edit.setText(str(tmp_path / "shapes"))
    focus(qtbot, window, panel.run_button)
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT):
        qtbot.keyClick(panel.run_button, Qt.Key.Key_Space)
        assert panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
        assert QApplication.focusWidget() is panel.cancel_button  # not the table below
    assert QApplication.focusWidget() is panel.run_button  # and back when it is done


def test_tab_on_the_train_tab_stops_only_where_a_key_does_something(qtbot, make_window,
                                                                    tiny_checkpoint):
    """The settings' scroll area and the chart were Tab stops that showed no focus and took no
    key: a keyboard user seemed to lose the cursor twice per round."""
    from PySide6.QtWidgets import QScrollArea
    window = make_window(tiny_checkpoint)
    panel = window.train_panel
    window.tabs.setCurrentWidget(panel)
    seen = tab_walk(qtbot, window, window.tabs.tabBar())
    assert panel.data_view.path_edit in seen and panel.preview.shuffle_button in seen  # the walk
    assert not [w for w in seen if isinstance(w, QScrollArea) or w is panel.chart]


def test_the_evaluate_tabs_controls_say_what_they_are(qtbot, make_window, tiny_checkpoint):
    from PySide6.QtGui import QAccessible
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    assert "data path" in panel.path_edit.accessibleName().lower()
    assert "per-class" in panel.per_class.accessibleName().lower()
    assert "progress" in panel.progress.accessibleName().lower()
    # a Linux screen reader names a combo box by the label that labels it: the heading
    assert panel.heading.buddy() is panel.model_combo
    combo = QAccessible.queryAccessibleInterface(panel.model_combo)
    labels = [r[0].text(QAccessible.Text.Name) for r in combo.relations(QAccessible.RelationFlag.Label)]
    assert labels == ["Evaluate"]


def test_enter_in_the_evaluate_data_box_starts_the_evaluation(qtbot, make_window, tiny_checkpoint,
                                                              tmp_path):
    from .test_evaluation_panel import colour_folders
    window = make_window(tiny_checkpoint)
    panel = window.evaluation_panel
    window.tabs.setCurrentWidget(panel)
    colour_folders(tmp_path / "shapes")
    focus(qtbot, window, panel.path_edit)
    panel.path_edit.clear()
    qtbot.keyClicks(panel.path_edit, str(tmp_path / "shapes"))
    with qtbot.waitSignal(panel.evaluated, timeout=WAIT) as done:
        qtbot.keyClick(panel.path_edit, Qt.Key.Key_Return)
        job = panel.job
        assert job is not None  # started by Enter
        qtbot.keyClick(panel.path_edit, Qt.Key.Key_Return)  # again while it runs: no second one
        assert panel.job is job
    assert done.args[0]["images"] == 15
    assert panel.status.text().startswith("Saved with")
