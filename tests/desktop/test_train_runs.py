"""A training run's life as a user drives it: Stop at any moment, Pause and Resume, a crash or a
killed process offered for resumption, Discard, closing mid-run, data dropped during a run."""
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from training import runs
from training.checkpoints import load_checkpoint

from .conftest import WAIT, JobRecord, drop
from .test_train_panel import (RUN_WAIT, TINY_NET, fruit_folders, long_run_past_its_first_epoch,
                               train_window, wait_checked)

def test_predictions_keep_working_while_training_and_stop_ends_it_in_the_epoch_it_is_in(
        qtbot, make_window, tiny_checkpoint, tmp_path, image_dir):
    """Stop reaches the training process and ends the run in the epoch it was in. That it ends
    at the very next batch is the training callback's part, tested in-process (tests/training/
    test_train.py: test_stop_takes_effect_at_the_next_batch...), where batches can be counted
    without the pipe's lag."""
    window, panel = long_run_past_its_first_epoch(qtbot, make_window, tiny_checkpoint, tmp_path)
    drop(window, [image_dir / "red.png"])  # the Classify tab, on the active checkpoint
    qtbot.waitUntil(lambda: len(window.bars.bars) == 3, timeout=WAIT)
    assert window.trainer.running() and window.tabs.currentIndex() == 0
    batches = []
    window.trainer.batch.connect(batches.append)
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=WAIT)
    # No wall-clock bound (a loaded CI machine decides that): the run must end in the epoch it
    # was in when Stop was clicked (one more allowed for batch reports still queued), keeping
    # the epochs it had finished.
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        epoch_at_click = batches[-1]["epoch"]
    info = finished.args[0].info
    assert info.config["stopped"] == "user" and info.metrics["best_epoch"] >= 1
    assert 1 <= info.config["epochs_run"] <= epoch_at_click + 1 < 200
    assert "stopped by you" in panel.result_label.text()
    assert runs.read_run(runs.runs_dir() / window.trainer.record.id).status == runs.STOPPED


def test_pause_holds_the_run_and_resume_continues_it(qtbot, make_window, tiny_checkpoint, tmp_path):
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"),
                                 epochs=4)
    wait_checked(qtbot, panel)
    batches = []
    window.trainer.batch.connect(batches.append)
    panel.start()
    qtbot.waitUntil(lambda: len(batches) >= 1, timeout=RUN_WAIT)
    with qtbot.waitSignal(window.trainer.held, timeout=RUN_WAIT) as held:
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
        assert panel.pause_button.text() == "Resume" and "Pausing" in panel.rate_label.text()
        # the window's status bar (seen from every tab) says so at once, not at the next report
        assert window.train_status.text().endswith("(paused)")
    # every batch before the run stopped has arrived now (the same pipe, in order)
    assert batches[-1]["batch"] == held.args[0]["batch"]
    assert "Paused after batch" in panel.rate_label.text()
    last = batches[-1]  # the bar names the batch the run waits after
    assert panel.progress.format() == f"Paused · Epoch {last['epoch']}/4 · batch {last['batch']}/{last['steps']}"
    seen = len(batches)
    with qtbot.assertNotEmitted(window.trainer.batch, wait=600):
        pass  # the event loop runs for 0.6 s; the paused run does not
    assert len(batches) == seen
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
        assert window.train_status.text().startswith("Training ")
        assert "paused" not in window.train_status.text()
    assert finished.args[0].info.config["epochs_run"] == 4 and panel.pause_button.text() == "Pause"


def test_a_checkpoints_folder_that_cannot_be_written_is_said_at_start_not_after_an_epoch(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """The run trained its whole first epoch, then failed naming a hidden temporary file, and
    the epoch was lost. (The tests run as root, for whom chmod does not stop writes: the
    folder lies below a file instead.)"""
    import desktop.trainer
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setattr(desktop.trainer, "user_checkpoints_dir", lambda: blocked / "checkpoints")
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"))
    wait_checked(qtbot, panel)
    batches = []
    window.trainer.batch.connect(batches.append)
    with qtbot.waitSignal(window.trainer.run_failed, timeout=WAIT) as failed:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert failed.args[0].startswith(f"cannot save the checkpoint: cannot write in {blocked}")
    assert failed.args[0] in panel.result_label.text()
    assert not window.trainer.running() and batches == [] and panel.start_button.isEnabled()
    assert runs.unfinished_runs() == [] and not list(runs.runs_dir().glob("*"))


def crashed_run(tmp_path, data_root, epochs=3):
    """A run record and backup as a process killed during epoch 2 leaves them."""
    from training.data import load_labelled
    from training.train import TrainConfig, train

    from tests.training.test_train import RecordingReporter

    class Crash(Exception):
        pass

    class CrashInEpoch2(RecordingReporter):
        def partial(self, payload):
            if payload["kind"] == "batch" and payload["epoch"] == 2:
                raise Crash

    data = load_labelled(data_root)
    config = TrainConfig(epochs=epochs, batch_size=8, val_fraction=0.25, **TINY_NET)
    record = runs.new_run(str(data_root), tmp_path / "out" / "fruit.keras", config.to_dict(),
                          data_fingerprint=data.fingerprint())
    with pytest.raises(Crash):
        train(data, config, record.out, CrashInEpoch2(), backup_dir=record.backup_dir)
    return runs._write(replace(record, pid=0))  # its process is gone


def test_an_unfinished_run_is_offered_at_launch_and_resumes_from_its_next_epoch(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    record = crashed_run(tmp_path, fruit_folders(tmp_path / "fruit"))
    window, panel = train_window(make_window, tiny_checkpoint)
    assert window.banner.isVisible()
    assert "did not finish: it stopped after epoch 1 of 3. Resume it from epoch 2?" in \
        window.banner.label.text()
    epochs = []
    window.trainer.epoch.connect(lambda p: epochs.append(p["epoch"]))
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
    assert epochs == [2, 3]  # epoch 1 was not trained again
    info = finished.args[0].info
    assert len(info.history["loss"]) == 3 and finished.args[0].checkpoint == tmp_path / "out" / "fruit.keras"
    assert panel.chart.val_loss.count() == 3  # the earlier epoch is on the chart too
    assert runs.unfinished_runs() == [] and not record.backup_dir.exists()


def test_a_training_process_killed_mid_run_is_reported_and_offered_for_resumption(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    import multiprocessing
    import os
    import signal
    window, panel = long_run_past_its_first_epoch(qtbot, make_window, tiny_checkpoint, tmp_path)
    record = window.trainer.record
    qtbot.waitUntil(lambda: runs.read_run(record.folder).completed_epochs() >= 1, timeout=RUN_WAIT)
    child, = [p for p in multiprocessing.active_children() if p.name == "pixelclassifier-training"]
    os.kill(child.pid, signal.SIGKILL)  # what the OOM killer or a crash in native code does
    qtbot.waitUntil(lambda: "ended unexpectedly" in panel.result_label.text(), timeout=WAIT)
    assert "the training process ended unexpectedly (signal 9)" in panel.result_label.text()
    assert panel.start_button.isEnabled() and window.isVisible()  # the app itself lives on
    done = runs.read_run(record.folder).completed_epochs()
    assert f"Resume it from epoch {done + 1}?" in window.banner.label.text()
    epochs = []
    window.trainer.epoch.connect(lambda p: epochs.append(p["epoch"]))
    qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(epochs) >= 1, timeout=RUN_WAIT)
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT) as finished:
        window.trainer.stop()
    assert epochs[0] == done + 1  # carried on, not started again
    assert len(finished.args[0].info.history["loss"]) >= done + 1


def test_the_window_opens_beside_damaged_run_records_and_offers_the_good_run(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """A run.json holding null, a list, a pid that is text or too large, or JSON nested
    100,000 deep stopped `python -m desktop` at every launch, with no window."""
    from tests.training.test_runs import broken_records
    record = crashed_run(tmp_path, fruit_folders(tmp_path / "fruit"))
    broken_records(runs.runs_dir())
    window, _ = train_window(make_window, tiny_checkpoint)
    assert window.isVisible() and window.banner.isVisible()
    assert f"A training run on {Path(record.data).name} " in window.banner.label.text()
    assert "stopped after epoch 1 of 3" in window.banner.label.text()


def test_discarding_an_unfinished_run_forgets_it(qtbot, make_window, tiny_checkpoint, tmp_path):
    import shutil
    shutil.rmtree(crashed_run(tmp_path, fruit_folders(tmp_path / "fruit")).data)  # unplugged
    window, _ = train_window(make_window, tiny_checkpoint)
    assert "is not there now: reconnect it first, or discard the run" in window.banner.label.text()
    qtbot.mouseClick(window.banner.button("Discard"), Qt.MouseButton.LeftButton)
    assert not window.banner.isVisible() and runs.unfinished_runs() == []


def test_closing_mid_run_asks_then_stops_cleanly(qtbot, make_window, tiny_checkpoint, tmp_path,
                                                 monkeypatch):
    window, panel = long_run_past_its_first_epoch(qtbot, make_window, tiny_checkpoint, tmp_path)
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kw: (asked.append(args[2]), answers.pop(0))[1])
    window.close()
    assert window.isVisible() and window.trainer.running()  # "No" keeps it open and training
    window.close()
    assert not window.isVisible() and len(asked) == 2 and "best epoch" in asked[0]
    assert not window.trainer.lane.thread.is_alive()
    record = runs.read_run(runs.runs_dir() / window.trainer.record.id)
    assert record.status == runs.STOPPED
    load_checkpoint(record.out)  # the best epoch so far was kept


def test_stop_while_the_run_waits_its_turn_ends_it_and_frees_the_tab(qtbot, make_window,
                                                                     tiny_checkpoint, tmp_path):
    """Start queues the run behind whatever the train lane does (a data check of a resumed
    run's path, say); Stop then must end it, not leave the tab 'running' for good."""
    import threading

    from desktop.jobs import Job
    window, panel = train_window(make_window, tiny_checkpoint, fruit_folders(tmp_path / "fruit"))
    wait_checked(qtbot, panel)
    gate = threading.Event()
    window.trainer.lane.submit(Job(lambda reporter: gate.wait(60), "a check before the run"))
    panel.start()
    assert window.trainer.running() and panel.stop_button.isEnabled()
    record = window.trainer.record
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    gate.set()
    qtbot.waitUntil(lambda: not window.trainer.running(), timeout=WAIT)
    assert "before the first epoch began" in panel.result_label.text()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert runs.read_run(runs.runs_dir() / record.id) is None  # nothing ran: nothing to resume
    assert not (tmp_path / record.out).exists()


def test_stop_while_paused_says_stopping_not_paused(qtbot, make_window, tiny_checkpoint, tmp_path):
    window, panel = long_run_past_its_first_epoch(qtbot, make_window, tiny_checkpoint, tmp_path)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert panel.pause_button.text() == "Resume"
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        assert panel.pause_button.text() == "Pause" and "Stopping" in panel.rate_label.text()


def test_data_dropped_during_a_run_leaves_the_runs_data_shown(qtbot, make_window, tiny_checkpoint,
                                                              tmp_path):
    window, panel = long_run_past_its_first_epoch(qtbot, make_window, tiny_checkpoint, tmp_path)
    shown = panel.data_view.path_edit.text()
    other = fruit_folders(tmp_path / "other", classes=("x", "y"))
    drop(window, [other])
    assert panel.data_view.path_edit.text() == shown and "when it ends" in panel.result_label.text()
    assert window.trainer.data_path == shown
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT):
        panel.stop()


def test_the_checkpoint_a_run_started_from_is_kept_while_it_runs_or_can_be_resumed(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    from .test_checkpoints_panel import open_checkpoints, user_checkpoint
    parent = user_checkpoint("start", ("a", "b"))
    record = crashed_run(tmp_path, fruit_folders(tmp_path / "fruit"))
    runs._write(replace(record, parent=str(parent)))  # a resume reads it: renamed, it would fail
    window, _ = train_window(make_window, tiny_checkpoint)
    panel = open_checkpoints(window)
    assert window.store.rename(parent, "renamed") is None and not window.store.delete(parent)
    assert parent.is_file() and "resume or discard that run first" in panel.notice.text()
    out = Path(record.out)  # what it writes (its best epoch so far)
    assert out.is_file() and window.store.rename(out, "renamed") is None
    qtbot.mouseClick(window.banner.button("Discard"), Qt.MouseButton.LeftButton)
    renamed = window.store.rename(parent, "renamed")
    assert renamed is not None
    # a fine-tune from it running (its sidecar will name it): kept until the run ends
    monkeypatch.setattr(window.trainer, "running", lambda: True)
    monkeypatch.setattr(window.trainer, "record", replace(record, parent=str(renamed)),
                        raising=False)
    assert window.store.rename(renamed, "again") is None and renamed.is_file()
    assert "training started from it" in panel.notice.text()
    monkeypatch.undo()  # nothing runs: closing the window asks nothing


def test_after_a_resume_start_does_not_train_the_data_checked_before(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    record = crashed_run(tmp_path, fruit_folders(tmp_path / "fruit"))
    other = fruit_folders(tmp_path / "other", classes=("fig", "kiwi"))
    window, panel = train_window(make_window, tiny_checkpoint, other)
    wait_checked(qtbot, panel)
    assert panel.start_button.isEnabled()
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT):
        qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
        assert window.trainer.data is None and panel.data_view.check is None
    assert panel.data_view.path() == record.data  # the box shows the resumed run's data
    assert not panel.start_button.isEnabled()  # not "other", which the box no longer shows


def test_a_resume_during_a_data_check_leaves_no_stale_reading_status(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    import threading
    import time

    import desktop.trainer
    from training.data import DataError
    record = crashed_run(tmp_path, fruit_folders(tmp_path / "fruit"))
    reading = threading.Event()

    def slow_check(path, policy, val_fraction, seed, reporter, more_seeds=()):
        reporter.progress(0.1, "read 0 of 9 images")
        reading.set()
        while not reporter.cancelled():  # a big folder being read
            time.sleep(0.01)
        reporter.progress(0.5, "read 5 of 9 images")  # reported as the cancel arrives
        raise DataError("cancelled")

    monkeypatch.setattr(desktop.trainer, "load_and_check", slow_check)
    window, panel = train_window(make_window, tiny_checkpoint,
                                 fruit_folders(tmp_path / "other", classes=("fig", "kiwi")))
    assert reading.wait(30)
    qtbot.waitUntil(lambda: "read 0 of 9" in panel.data_view.status.text(), timeout=WAIT)
    with qtbot.waitSignal(panel.checkpoint_trained, timeout=RUN_WAIT):
        qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
    assert panel.data_view.path() == record.data
    assert panel.data_view.status.text().startswith("Not checked: a resumed run reads its own")


def test_a_data_check_ending_while_the_window_closes_starts_no_training_process(
        qtbot, monkeypatch):
    """The last part of a check cannot be cancelled (hashing, a cached archive): when it ends
    after the window began closing, the training process it would prepare is not started."""
    import multiprocessing
    import threading

    import desktop.trainer
    from desktop.trainer import TrainController
    running, release = threading.Event(), threading.Event()

    def uncancellable_check(path, policy, val_fraction, seed, reporter, more_seeds=()):
        running.set()
        assert release.wait(30)
        return "data", "check"

    monkeypatch.setattr(desktop.trainer, "load_and_check", uncancellable_check)
    trainer = TrainController()
    record = JobRecord(monkeypatch, trainer.lane)  # its slots run after the trainer's own
    trainer.check("anything", None, 0.1)
    assert running.wait(30)
    threading.Timer(0.2, release.set).start()  # it ends while shutdown waits for the lane
    assert trainer.shutdown()
    qtbot.waitUntil(lambda: bool(record.ended), timeout=WAIT)  # the result, after the close
    assert record.ended[0][0] == "finished"
    assert trainer._child is None and not multiprocessing.active_children()
