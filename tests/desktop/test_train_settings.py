"""The Train tab's settings as a user meets them: remembered per starting point, the
validation share as a percentage and the split it makes, the learning rate scaled to the data,
"Start from" naming the model in use and reading the data its way, and an estimate for any
checkpoint (the data check and runs: test_train_panel.py)."""
import pytest
from PySide6.QtCore import Qt

from .conftest import WAIT
from .test_train_panel import RUN_WAIT, fruit_folders, train_window, wait_checked


def test_settings_are_remembered_per_starting_point(qtbot, make_window, tiny_checkpoint):
    window, panel = train_window(make_window, tiny_checkpoint)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("scratch"))
    panel.form.epochs.setValue(7)
    panel.form.lr.setValue(0.123)
    panel.form.flip.setChecked(False)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    assert panel.form.epochs.value() != 7  # fine-tuning has its own settings
    from desktop.train_panel import TrainPanel
    again = TrainPanel(window.trainer, window.settings, lambda: (tiny_checkpoint, None))
    qtbot.addWidget(again)
    again.form.restore_start()
    assert again.form.start_mode() == "active"
    again.form.start_combo.setCurrentIndex(again.form.start_combo.findData("scratch"))
    assert (again.form.epochs.value(), again.form.lr.value(), again.form.flip.isChecked()) == (7, 0.123, False)
    again.form.n_images = 600  # as after a data check
    again.form.val_fraction.setValue(0.3)
    again.form.defaults_button.click()  # Defaults restores the validation share too
    assert again.form.val_fraction.value() == again.form.recipe_config().val_fraction


def test_the_validation_share_reads_and_types_as_a_percentage(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from desktop.train_settings import TrainSettingsForm

    form = TrainSettingsForm(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(form)
    box = form.val_fraction
    box.setValue(0.1)
    assert box.text() == "10 %"
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "25")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.text() == "25 %" and form.config().val_fraction == 0.25


def test_changing_start_from_reads_the_data_the_way_the_new_start_needs(qtbot, make_window,
                                                                        tmp_path):
    """Fine-tuning a model that reads images differently (here: padded, not cropped) needs the
    data decoded its way; a new network needs the default way. Start re-reads when they differ."""
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.model import build_model
    from training.preprocessing import Preprocessing
    padded = Preprocessing(resize="pad")
    active = save_checkpoint(build_model(3, widths=(4, 8, 8), stem=4),
                             CheckpointInfo(class_names=("apple", "lime", "plum"),
                                            preprocessing=padded), tmp_path / "padded.keras")
    window, panel = train_window(make_window, active, fruit_folders(tmp_path / "fruit"), epochs=1)
    wait_checked(qtbot, panel)
    assert window.trainer.data_policy == Preprocessing()  # scratch: the default way
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    panel.start()
    assert not window.trainer.running() and "read again" in panel.result_label.text()
    qtbot.waitUntil(lambda: window.trainer.data is not None, timeout=WAIT)
    assert window.trainer.data_policy == padded
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        panel.start()
    assert finished.args[0].info.preprocessing == padded


def test_the_split_warning_follows_the_validation_share(qtbot, make_window, tiny_checkpoint,
                                                        tmp_path):
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "f", n=3))
    wait_checked(qtbot, panel)
    panel.form.val_fraction.setValue(0.1)  # 3 images a class: one of lime's drawn, no other
    assert "no validation images for: apple, plum" in panel.data_view.warnings.text()
    panel.form.val_fraction.setValue(0.4)  # one each now
    assert "no validation images" not in panel.data_view.warnings.text()
    assert "fewer than" in panel.data_view.warnings.text()  # the others stay


def test_the_start_from_label_follows_the_model_in_use_while_the_tab_is_open(
        qtbot, make_window, tiny_checkpoint):
    from training.paths import bundled_checkpoint
    window, panel = train_window(make_window, tiny_checkpoint)
    assert panel.form.start_combo.itemText(0).startswith("tiny, the model in use")
    window.use_checkpoint(bundled_checkpoint())  # "Use it" on the banner, the Train tab open
    assert panel.form.start_combo.itemText(0).startswith("cifar10, the model in use")


def test_the_split_shown_is_the_split_the_run_holds_out(qtbot, make_window, tiny_checkpoint,
                                                        tmp_path):
    """Fine-tuning a checkpoint that recorded no split (as the bundled one) showed each class's
    quota, "12 for training, about 0 held out", and warned for every class, while the run drew
    each image and held one out; a fine-tune of that run keeps its split, whatever the share."""
    import re

    from training.data import load_labelled
    from training.evaluate import validation_part
    from training.splits import split

    def shown():
        text = panel.data_view.split_label.text()
        found = re.match(r"Split: ([\d,]+) for training, (about )?([\d,]+) held out", text)
        return int(found[1].replace(",", "")), int(found[3].replace(",", "")), bool(found[2])

    def run_and_compare():
        train_images, val_images, about = shown()
        warned = panel.data_view.warnings.text()
        with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
            panel.start()
        info = finished.args[0].info
        assert (train_images, val_images, about) == (info.metrics["train_images"],
                                                     info.metrics["val_images"], False)
        held = {int(label) for label in validation_part(load_labelled(data), info).labels}
        empty = [name for i, name in enumerate(info.class_names) if i not in held]
        assert f"no validation images for: {', '.join(empty)}" in warned
        return finished.args[0]

    window, panel = train_window(make_window, tiny_checkpoint)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    panel.form.epochs.setValue(1)
    panel.form.batch_size.setValue(8)
    panel.form.val_fraction.setValue(0.1)  # 4 images a class: a quota of none, a draw of one
    data = fruit_folders(tmp_path / "fruit", n=4)
    panel.set_data_path(data)
    wait_checked(qtbot, panel)
    first = run_and_compare()
    # its fine-tune keeps its split: the share chosen now does not change what is held out
    with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
        window.use_checkpoint(first.checkpoint)
    panel.form.val_fraction.setValue(0.4)
    assert shown()[1] == first.info.metrics["val_images"]
    run_and_compare()
    # a new network splits at the share chosen after Check, counted as exactly
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("scratch"))
    panel.form.val_fraction.setValue(0.25)
    train_part, val_part = split(load_labelled(data), 0.25, 0)
    assert shown() == (len(train_part), len(val_part), False)


def test_the_learning_rate_scaled_to_a_small_data_set_is_trained_exactly(qtbot, tmp_path):
    """The recipe's rate scaled to 150 images (0.00125 fine-tuning, 0.00664 from scratch) was
    rounded to 4 decimals (0.0013: 4 % more than the command line's run on the same data)."""
    from PySide6.QtCore import QSettings

    from desktop.train_settings import TrainSettingsForm
    from training.recipes import fit_to_data

    form = TrainSettingsForm(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(form)
    form.data_checked(150)
    expected = fit_to_data(form.recipe_config(), 150).lr
    assert round(expected, 4) != expected  # (what this test is about)
    assert form.config().lr == pytest.approx(expected, rel=1e-6)
    assert form.lr.text() == f"{expected:.4g}"  # shown as it is, not "0.0066"


def test_a_checkpoint_whose_sidecar_records_an_odd_network_still_gets_an_estimate(
        qtbot, make_window, tmp_path):
    """An imported checkpoint's sidecar config with a wrong-typed architecture field ("stem":
    "x"): every settings change on the Train tab raised (the error dialog) while estimating."""
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.model import build_model
    odd = save_checkpoint(build_model(3, widths=(4, 8, 8), stem=4),
                          CheckpointInfo(class_names=("apple", "lime", "plum"),
                                         config={"stem": "x", "widths": 5}),
                          tmp_path / "odd.keras")
    window, panel = train_window(make_window, odd, fruit_folders(tmp_path / "fruit"), epochs=1)
    wait_checked(qtbot, panel)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    panel.form.epochs.setValue(3)
    assert panel.estimate_label.text()  # estimated, no exception in the slot
