"""Two copies of the app open on the same data folder: an unfinished run both offer is resumed
or discarded in one window only, and the checkpoints a run in the other window writes or started
from are kept there as they are here."""
import os
import shutil
from pathlib import Path

from PySide6.QtCore import Qt

from training import runs


def offered_run(tmp_path, out=None, parent=None):
    """An unfinished run whose process is gone, stopped after epoch 1: each window offers it."""
    from training.recipes import TrainConfig
    data = tmp_path / "fruit"
    data.mkdir()
    record = runs.new_run(str(data), out or tmp_path / "fruit.keras", TrainConfig().to_dict(),
                          parent)
    (record.backup_dir / "latest.weights.h5").write_bytes(b"w" * 10)
    (record.backup_dir / "training_metadata.json").write_text('{"epoch": 1}')
    return runs.update(record, pid=0, pid_started="")


def resumed_in_another_window(record):
    """What Resume in another copy of the app records: the run is that live process's."""
    other = os.getppid()  # alive, and not this process
    return runs.update(record, status=runs.RUNNING, pid=other,
                       pid_started=runs.process_started(other))


def window_offering(make_window, tiny_checkpoint, record, monkeypatch):
    """A window that offers ``record``; what it would start training is listed, not trained."""
    window = make_window(tiny_checkpoint, load=False)
    assert window.banner.isVisible() and "Resume it from epoch 2?" in window.banner.label.text()
    window.submitted = []
    monkeypatch.setattr(window.trainer, "_submit",
                        lambda record, fn, args: window.submitted.append(record))
    return window


def test_resume_of_a_run_another_window_resumed_is_refused_and_no_longer_offered(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """Both windows trained the run, into the same backup folder and checkpoint."""
    record = offered_run(tmp_path)
    window = window_offering(make_window, tiny_checkpoint, record, monkeypatch)
    data_box = window.train_panel.data_view.path_edit.text()
    resumed_in_another_window(record)  # after this window offered it
    qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
    assert window.submitted == [] and not window.trainer.running()
    assert runs.read_run(Path(record.folder)).pid == os.getppid()  # still the other window's
    assert window.banner.isVisible() and window.banner.label.text() == (
        "Not resumed: this run was resumed in another Pixel Classifier window.")
    assert [b.text() for b in window.banner.buttons] == ["OK"]  # no Resume or Discard now
    assert window.train_panel.data_view.path_edit.text() == data_box  # the Train tab as it was
    qtbot.mouseClick(window.banner.button("OK"), Qt.MouseButton.LeftButton)
    assert not window.banner.isVisible()


def test_discard_of_a_run_another_window_resumed_keeps_it_and_that_run_ends_as_finished(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """Discard deleted the backup the other window trained from; at that run's end, recording
    it raised FileNotFoundError and the saved run was reported as failed."""
    record = offered_run(tmp_path)
    window = window_offering(make_window, tiny_checkpoint, record, monkeypatch)
    theirs = resumed_in_another_window(record)
    qtbot.mouseClick(window.banner.button("Discard"), Qt.MouseButton.LeftButton)
    assert window.banner.label.text() == (
        "Not discarded: this run was resumed in another Pixel Classifier window.")
    assert record.backup_dir.is_dir() and runs.read_run(Path(record.folder)).pid == os.getppid()
    assert runs.set_status(theirs, runs.FINISHED).status == runs.FINISHED  # the other's end
    assert runs.read_run(Path(record.folder)).status == runs.FINISHED


def test_resume_of_a_run_another_window_discarded_says_so(qtbot, make_window, tiny_checkpoint,
                                                          tmp_path, monkeypatch):
    """It said "cannot record the run in the data folder: [Errno 2] No such file…"."""
    record = offered_run(tmp_path)
    window = window_offering(make_window, tiny_checkpoint, record, monkeypatch)
    shutil.rmtree(record.folder)  # Discard in the other window
    qtbot.mouseClick(window.banner.button("Resume"), Qt.MouseButton.LeftButton)
    assert window.submitted == [] and window.banner.label.text() == (
        "Not resumed: this run is no longer in the data folder (another Pixel Classifier "
        "window discarded it).")
    assert "cannot record the run" not in window.train_panel.result_label.text()


def test_checkpoints_a_run_in_another_window_writes_or_started_from_are_kept(
        qtbot, make_window, tiny_checkpoint, tmp_path, monkeypatch):
    """Only this window's own jobs were checked: the other window's run lost the file it wrote
    (renamed here) and the one it started from (deleted here)."""
    from .test_checkpoints_panel import open_checkpoints, user_checkpoint
    parent = user_checkpoint("start", ("a", "b"))
    out = user_checkpoint("writing", ("a", "b"), seed=2)  # its best epoch so far
    record = offered_run(tmp_path, out, parent)
    resumed_in_another_window(record)
    window = make_window(tiny_checkpoint, load=False)
    assert not window.banner.isVisible()  # not offered here: it runs there
    panel = open_checkpoints(window)
    assert window.store.rename(out, "best") is None and out.is_file()
    assert "writing is in use by a training run in another Pixel Classifier window" in \
        panel.notice.text()
    assert not window.store.delete(parent) and parent.is_file()
    assert "start is in use by a training run in another Pixel Classifier window" in \
        panel.notice.text()
    runs.set_status(record, runs.FINISHED)  # that run has ended: they are free again
    assert window.store.rename(out, "best") is not None and window.store.delete(parent)


def test_a_rename_in_another_window_is_followed_by_the_checkpoint_remembered_for_next_time(
        qtbot, make_window, tiny_checkpoint, tmp_path):
    """Window A uses "mine" (remembered for the next launch); window B renames it: the next
    launch fell back to the bundled checkpoint though "my best" is the same model."""
    from PySide6.QtCore import QSettings

    from desktop.__main__ import remembered_checkpoint

    from .test_checkpoints_panel import user_checkpoint
    mine = user_checkpoint("mine", ("cat", "dog"))
    b = make_window(tiny_checkpoint)  # both on the same settings file, as two copies are
    a = make_window(tiny_checkpoint)
    with qtbot.waitSignal(a.session.model_ready, timeout=60_000):
        a.use_checkpoint(mine)
    a.settings.sync()
    renamed = b.store.rename(mine, "my best")
    assert renamed is not None
    b.settings.sync()
    next_launch = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert remembered_checkpoint(next_launch) == renamed
