"""The Train tab as a user drives it: data check, a live run and its chart and messages, and a
trained checkpoint the window then uses (its settings: test_train_settings.py; stopping,
pausing and resuming runs: test_train_runs.py)."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from training.checkpoints import load_checkpoint

from .conftest import WAIT, drop


TINY_NET = {"widths": (4, 8, 8), "stem": 4, "precision": "float32"}


RUN_WAIT = 120_000


def fruit_folders(root, n=12, classes=("apple", "lime", "plum")):
    """One folder per class; each class has its own dominant colour; one broken file."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 70, (28, 36, 3), dtype=np.uint8)
            pixels[..., label] += 180
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / classes[0] / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    return root


def train_window(make_window, checkpoint, data=None, epochs=3):
    """A window whose Train tab uses a tiny network (so a run takes seconds) on checked data."""
    window = make_window(checkpoint)
    panel = window.train_panel
    panel.form.recipes = {k: {**v, **TINY_NET} for k, v in panel.form.recipes.items()}
    window.tabs.setCurrentWidget(panel)
    if data is not None:
        panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("scratch"))
        panel.form.epochs.setValue(epochs)
        panel.form.batch_size.setValue(8)
        panel.set_data_path(data)
    return window, panel


def wait_checked(qtbot, panel):
    qtbot.waitUntil(lambda: panel.data_view.check is not None, timeout=WAIT)


def long_run_past_its_first_epoch(qtbot, make_window, checkpoint, tmp_path):
    """A 200-epoch run on generated folders, started and waited on until epoch 1 has ended."""
    window, panel = train_window(make_window, checkpoint, fruit_folders(tmp_path / "fruit"),
                                 epochs=200)
    wait_checked(qtbot, panel)
    panel.start()
    qtbot.waitUntil(lambda: panel.chart.val_loss.count() + len(panel.chart._pending_epochs) >= 1,
                    timeout=RUN_WAIT)
    return window, panel


def test_data_check_shows_counts_warnings_skipped_files_and_the_split(qtbot, make_window,
                                                                      tiny_checkpoint, tmp_path):
    data = fruit_folders(tmp_path / "fruit", n=8)
    window, panel = train_window(make_window, tiny_checkpoint, data)
    wait_checked(qtbot, panel)
    rows = {panel.data_view.counts.item(r, 0).text(): panel.data_view.counts.item(r, 1).text()
            for r in range(panel.data_view.counts.rowCount())}
    assert rows == {"apple": "8", "lime": "8", "plum": "8"}
    assert "24 images in 3 classes" in panel.data_view.status.text()
    assert "fewer than 10 images: apple (8), lime (8), plum (8)" in panel.data_view.warnings.text()
    assert "apple/broken.jpg" in panel.data_view.skipped.toPlainText()
    assert "for training" in panel.data_view.split_label.text() and "held out for validation" in panel.data_view.split_label.text()
    assert not panel.preview.labels[0].pixmap().isNull()  # augmented samples are shown
    assert panel.start_button.isEnabled()


@pytest.mark.parametrize("make_bad, message", [
    (lambda root: root / "does-not-exist", "no such file or folder"),
    (lambda root: (root / "only").mkdir() or (root / "only" / "one").mkdir() or root / "only",
     "needs at least two class subfolders"),
])
def test_unusable_data_is_explained_in_the_panel(qtbot, make_window, tiny_checkpoint, tmp_path,
                                                 make_bad, message):
    window, panel = train_window(make_window, tiny_checkpoint, make_bad(tmp_path))
    qtbot.waitUntil(lambda: "Cannot train on this" in panel.data_view.status.text(), timeout=WAIT)
    assert message in panel.data_view.status.text() and not panel.start_button.isEnabled()


def test_files_in_other_formats_are_said_as_skipped_files_and_explain_an_empty_class(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """A Thumbs.db in each class folder: "3 folder(s) cannot be read" was said while every
    image was used; a class of HEIC photos only was refused without saying why."""
    data = fruit_folders(tmp_path / "fruit")
    for name in ("apple", "lime", "plum"):
        (data / name / "Thumbs.db").write_bytes(b"\0" * 64)
    window, panel = train_window(make_window, tiny_checkpoint, data)
    wait_checked(qtbot, panel)
    view = panel.data_view
    assert "36 images in 3 classes" in view.status.text()
    assert view.warnings.text().splitlines() == [
        "⚠ 1 unreadable file(s) will be skipped",
        "⚠ 3 file(s) in formats the app does not read are skipped (.db)"]
    assert "lime/Thumbs.db: " in view.skipped.toPlainText()
    assert panel.start_button.isEnabled()
    phone = data / "phone"  # now a class without one image the app reads
    phone.mkdir()
    for i in range(3):
        (phone / f"IMG_{i}.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    qtbot.mouseClick(view.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Cannot train on this" in view.status.text(), timeout=WAIT)
    assert view.status.text() == ("Cannot train on this: no readable image in class folder(s): "
                                  "phone (3 file(s) not in an image format the app reads: .heic)")
    assert not panel.start_button.isEnabled()


def test_check_with_no_data_says_what_it_needs(qtbot, make_window, tiny_checkpoint):
    panel = make_window(tiny_checkpoint, load=False).train_panel
    panel.data_view.path_edit.setText("")
    qtbot.mouseClick(panel.data_view.check_button, Qt.MouseButton.LeftButton)  # it did nothing
    assert panel.data_view.status.text().startswith("Nothing to check yet: choose the data")


def test_a_failed_check_leaves_nothing_said_about_the_data_checked_before(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"))
    wait_checked(qtbot, panel)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    panel.model_changed()
    qtbot.waitUntil(lambda: panel.data_view.check is not None, timeout=WAIT)  # (read again)
    assert "Your 3 classes differ" in panel.form.transfer_note.text()
    assert panel.estimate_label.text().startswith("Expected time")
    panel.data_view.path_edit.setText(str(tmp_path / "gone"))
    qtbot.mouseClick(panel.data_view.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Cannot train on this" in panel.data_view.status.text(), timeout=WAIT)
    assert "classes differ" not in panel.form.transfer_note.text()
    assert panel.estimate_label.text() == ""
    # nor does Check with the box emptied leave the fruit ready to train
    panel.data_view.path_edit.setText(str(tmp_path / "fruit"))
    qtbot.mouseClick(panel.data_view.check_button, Qt.MouseButton.LeftButton)
    wait_checked(qtbot, panel)
    qtbot.waitUntil(panel.start_button.isEnabled, timeout=WAIT)
    panel.data_view.path_edit.setText("")
    qtbot.mouseClick(panel.data_view.check_button, Qt.MouseButton.LeftButton)
    assert not panel.start_button.isEnabled() and panel.controller.data is None
    assert panel.data_view.status.text().startswith("Nothing to check yet")


def test_a_run_draws_the_chart_and_its_checkpoint_becomes_the_active_model(
        qtbot, make_window, tiny_checkpoint, tmp_path, image_dir, monkeypatch):
    from desktop.train_panel import format_minutes
    from training.recipes import TrainConfig, speed_key

    monkeypatch.setattr("desktop.train_panel.MIN_MEASURED_S", 0.0)  # this tiny run counts
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"))
    wait_checked(qtbot, panel)
    assert "known after the first batches" in panel.estimate_label.text()  # no run of it yet
    batches = []
    window.trainer.batch.connect(batches.append)
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    result = finished.args[0]
    train_points, val_points, acc_points = panel.chart.point_counts()
    assert train_points == len(batches) > 0 and val_points == acc_points == 3
    assert "Saved" in panel.result_label.text() and "validation accuracy" in panel.result_label.text()
    assert not panel.stop_button.isEnabled() and panel.start_button.isEnabled()
    # saved in the per-user folder with its sidecar, and loads
    from training.paths import user_checkpoints_dir
    assert result.checkpoint.parent == user_checkpoints_dir()
    model, info = load_checkpoint(result.checkpoint)
    assert info.class_names == ("apple", "lime", "plum") and len(info.history["val_loss"]) == 3
    assert info.data_fingerprint and info.versions and info.config["epochs"] == 3
    # the next run's expected time comes from this run's measured speed
    rate = info.metrics["train_images"] * 3 / info.config["wall_time_s"]
    assert f"at {rate:,.0f} training images/s, this computer's last run" in panel.estimate_label.text()
    panel.form.epochs.setValue(30)
    expected = format_minutes(info.metrics["train_images"] * 30 / rate)
    assert f"Expected time: {expected} (30 epochs" in panel.estimate_label.text()
    # by default a run this short (mostly start-up) is not remembered as this computer's speed
    monkeypatch.setattr("desktop.train_panel.MIN_MEASURED_S", 60.0)
    panel.settings.remove(f"train/speed/{speed_key(TrainConfig.from_dict(info.config))}")
    panel._on_finished(result)
    panel.update_estimate()
    assert "known after the first batches" in panel.estimate_label.text()
    # the window offers it; taking the offer makes its predictions show
    assert window.banner.isVisible() and "New checkpoint" in window.banner.label.text()
    with qtbot.waitSignal(window.session.model_ready, timeout=WAIT):
        qtbot.mouseClick(window.banner.button("Use it"), Qt.MouseButton.LeftButton)
    drop(window, [image_dir / "red.png"])
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    shown = {bar.accessibleName().split(":")[0] for bar in window.bars.bars}
    assert shown == {"apple", "lime", "plum"} and window.tabs.currentIndex() == 0


def test_head_only_fine_tune_keeps_the_backbone_and_records_its_parent(qtbot, make_window,
                                                                       tiny_checkpoint, tmp_path):
    window, panel = train_window(make_window, tiny_checkpoint)
    panel.form.start_combo.setCurrentIndex(panel.form.start_combo.findData("active"))
    panel.form.layers_combo.setCurrentIndex(panel.form.layers_combo.findData("head"))
    panel.form.epochs.setValue(2)
    panel.form.batch_size.setValue(8)
    panel.set_data_path(fruit_folders(tmp_path / "fruit", classes=("ant", "bee")))
    wait_checked(qtbot, panel)
    assert "transfer learning" in panel.form.transfer_note.text()
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        panel.start()
    model, info = load_checkpoint(finished.args[0].checkpoint)
    parent, _ = load_checkpoint(tiny_checkpoint)
    assert info.parent == "tiny" and info.config["fine_tune"] == "head" and info.class_names == ("ant", "bee")
    np.testing.assert_allclose(model.get_layer("stem_conv").get_weights()[0],
                               parent.get_layer("stem_conv").get_weights()[0])


def test_a_folder_dropped_on_the_train_tab_becomes_its_data(qtbot, make_window, tiny_checkpoint,
                                                            tmp_path):
    data = fruit_folders(tmp_path / "fruit")
    window, panel = train_window(make_window, tiny_checkpoint)
    drop(window, [data])
    wait_checked(qtbot, panel)
    assert panel.data_view.path_edit.text() == str(data) and window.session.items.rowCount() == 0


def test_a_full_disk_is_reported_in_the_panel_and_the_saved_epoch_survives(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    import errno

    import keras
    real_save, calls = keras.Model.save, []

    def save_until_full(model, path, *args, **kwargs):
        calls.append(path)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(model, path, *args, **kwargs)

    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"),
                                 epochs=1)
    window.trainer.isolate = False  # the patched Keras is this process's: train here
    wait_checked(qtbot, panel)
    monkeypatch.setattr(keras.Model, "save", save_until_full)
    panel.start()
    qtbot.waitUntil(lambda: "No space left on device" in panel.result_label.text(), timeout=RUN_WAIT)
    monkeypatch.setattr(keras.Model, "save", real_save)
    assert panel.result_label.text().startswith("Training stopped:") and panel.start_button.isEnabled()
    load_checkpoint(window.trainer.record.out)  # the epoch saved before the disk filled up


def test_a_job_ended_by_an_interrupt_still_says_so(qtbot):
    """A KeyboardInterrupt from a training child (Ctrl+C) ended the worker thread without a
    signal: the Train tab stayed 'running' for good."""
    from desktop.jobs import Job, JobLane
    lane = JobLane("test")

    def interrupted(reporter):
        raise KeyboardInterrupt

    job = Job(interrupted, "train")
    with qtbot.waitSignal(job.failed, timeout=WAIT) as failed:
        lane.submit(job)
    assert failed.args == ["KeyboardInterrupt"]
    following = Job(lambda reporter: 7, "next")
    with qtbot.waitSignal(following.finished, timeout=WAIT):  # connected before it can run
        lane.submit(following)  # the lane's thread lives on
    assert lane.shutdown()


def test_pause_and_resume_say_so_once_and_then_go_back(qtbot, make_window, tiny_checkpoint):
    window, panel = train_window(make_window, tiny_checkpoint)
    panel.progress.setFormat("Epoch 1/7 · batch 3/23")
    panel.run_view._on_paused(True)
    panel.run_view._on_paused(False)
    panel.run_view._on_paused(True)  # again before the next batch came
    assert panel.progress.format() == "Paused · Epoch 1/7 · batch 3/23"
    panel.run_view._on_paused(False)
    assert panel.progress.format() == "Epoch 1/7 · batch 3/23"
    assert not panel.rate_label.text().startswith("Paused")


def test_the_first_batch_says_speed_and_time_left_are_being_measured(qtbot, make_window,
                                                                      tiny_checkpoint):
    """The first batch's report has no speed yet (its start-up is not training): it showed
    "nan images/s"; then the numbers."""
    window, panel = train_window(make_window, tiny_checkpoint)
    nan = float("nan")
    batch = dict(epoch=1, epochs=3, batch=1, steps=5, step=1, loss=1.0, images_per_s=nan, eta_s=nan)
    panel.run_view._on_batch(batch)
    assert panel.rate_label.text() == "measuring speed · estimating time left"
    panel.run_view._on_batch({**batch, "batch": 2, "step": 2, "images_per_s": 1234.4, "eta_s": 75})
    assert panel.rate_label.text() == "1,234 images/s · 1 min 15 s left"


def test_a_run_named_in_the_same_second_as_another_keeps_its_own_checkpoint(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """Another copy of the app (or the command line) started a run on the same data in the same
    second: both took the same default name and one run's checkpoint replaced the other's."""
    from training.library import run_name
    from training.paths import release_checkpoint, reserve_checkpoint, user_checkpoints_dir

    monkeypatch.setattr("desktop.trainer.now_iso", lambda: "2026-11-27T06:49:20+00:00")
    data = fruit_folders(tmp_path / "fruit")
    window, panel = train_window(make_window, tiny_checkpoint, data, epochs=1)
    window.trainer.isolate = False  # (a child process would take seconds to start)
    wait_checked(qtbot, panel)
    folder = user_checkpoints_dir()  # the other run, training there meanwhile, holds the name:
    theirs = reserve_checkpoint(folder / f"{run_name(data, '2026-11-27T06:49:20')}.keras")
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    mine = finished.args[0].checkpoint
    assert theirs.name == "fruit-2026-11-27T064920.keras"
    assert mine == folder / "fruit-2026-11-27T064920 (2).keras" and mine.is_file()
    assert panel.result_label.text().startswith(f"Saved {mine.name}: ")
    release_checkpoint(theirs)  # that run failed: nothing of it stays, nothing listed broken
    window.store.refresh()
    assert [e.name for e in window.store.model.entries if not e.bundled] == [mine.stem]
    assert not [e for e in window.store.model.entries if e.error]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
