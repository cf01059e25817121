"""`python -m training train`: a checkpoint with its history and TensorBoard logs, outputs
refused before any work, one line for bad data, resuming after SIGKILL, Ctrl+C as the app's Stop,
a fine-tune's config, and runs started in the same second each keeping their checkpoint (the
other commands: test_cli.py)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from .test_cli import ROOT, make_class_folders, run_cli


def test_train_writes_checkpoint_history_and_tensorboard_logs(tmp_path):
    data = make_class_folders(tmp_path / "colours")
    out = tmp_path / "out" / "colours.keras"
    proc = run_cli("train", "--data", str(data), "--epochs", "2", "--batch-size", "8",
                   "--widths", "4,8,8", "--precision", "float32", "--out", str(out),
                   "--tensorboard", str(tmp_path / "tb"))
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stdout and "epoch 2/2" in proc.stdout  # a line per epoch
    from training.checkpoints import load_checkpoint
    _, info = load_checkpoint(out)
    assert info.class_names == ("blue", "green", "red") and len(info.history["loss"]) == 2
    assert info.command.startswith("python -m training train --data")
    # what the user waited: at least the training itself, and said at the end
    assert info.metrics["command_wall_s"] >= info.config["wall_time_s"] > 0
    # class folders have no test part: no test evaluation is claimed
    assert "whole command:" in proc.stdout and "test evaluation" not in proc.stdout
    assert (tmp_path / "out" / "colours.history.csv").read_text().startswith("epoch,")
    assert json.loads((tmp_path / "out" / "colours.history.json").read_text())["val_loss"]
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    # the sidecar's config re-runs the same recipe
    again = run_cli("train", "--data", str(data), "--config", str(out.with_suffix(".json")),
                    "--epochs", "1", "--out", str(tmp_path / "again.keras"), "--precision", "float32")
    assert again.returncode == 0, again.stderr
    _, info2 = load_checkpoint(tmp_path / "again.keras")
    assert info2.config["widths"] == [4, 8, 8] and info2.config["batch_size"] == 8


def test_an_output_that_cannot_be_written_is_refused_before_the_data_is_read(tmp_path):
    taken = tmp_path / "taken.keras"
    taken.mkdir()  # a folder with the name
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:  # (root writes anyway: the folder case is checked there, the lock where it holds)
        for out, said in ((taken, "is a folder: name a file"),
                          (locked / "new" / "m.keras", "cannot write in")):
            if said == "cannot write in" and os.access(locked, os.W_OK):
                continue
            proc = run_cli("train", "--data", str(tmp_path / "no-such-data"), "--out", str(out))
            assert proc.returncode == 2 and "error: --out: " in proc.stderr and said in proc.stderr
        (tmp_path / "report.csv").mkdir()
        proc = run_cli("evaluate", "--data", str(tmp_path / "no-such-data"), "--report",
                       str(tmp_path / "report.csv"))
        assert proc.returncode == 2 and "is a folder: name a file" in proc.stderr
    finally:
        locked.chmod(0o700)
    assert not (locked / "new").exists()


def test_train_on_bad_data_exits_1_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    make_class_folders(tmp_path / "one").joinpath("green").rename(tmp_path / "elsewhere")
    for path, message in ((tmp_path / "nowhere", "no such file or folder"),
                          (tmp_path / "empty", "at least two class subfolders"),
                          (tmp_path / "one" / "red", "at least two class subfolders")):
        proc = run_cli("train", "--data", str(path), "--out", str(tmp_path / "x.keras"))
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "x.keras").exists()


@pytest.mark.slow
def test_a_run_killed_after_its_first_epoch_resumes_from_epoch_2(tmp_path):
    from training.backups import completed_epochs
    data = make_class_folders(tmp_path / "colours", n=300, size=32)
    backup, out = tmp_path / "backup", tmp_path / "run.keras"
    args = [sys.executable, "-m", "training", "train", "--data", str(data), "--epochs", "4",
            "--batch-size", "16", "--widths", "8,16,16", "--precision", "float32",
            "--backup", str(backup), "--out", str(out)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while completed_epochs(backup) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # a subprocess, not the Qt event loop: poll its backup file
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL and completed_epochs(backup) == 1
    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from epoch 2/4" in resumed.stdout and "epoch 1/4 " not in resumed.stdout
    from training.checkpoints import load_checkpoint
    _, info = load_checkpoint(out)
    assert len(info.history["loss"]) == 4 and info.config["epochs_run"] == 4


@pytest.mark.slow
def test_ctrl_c_stops_a_run_as_the_apps_stop_does_keeping_its_best_epoch_whole(tmp_path):
    data = make_class_folders(tmp_path / "colours", n=300, size=32)
    out, backup = tmp_path / "run.keras", tmp_path / "backup"
    proc = subprocess.Popen([sys.executable, "-m", "training", "train", "--data", str(data),
                             "--epochs", "200", "--batch-size", "16", "--widths", "8,16,16",
                             "--precision", "float32", "--out", str(out), "--backup", str(backup)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the first epoch was saved
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted: stopped by Ctrl+C; kept its best epoch so far" in stderr
    from training.checkpoints import load_checkpoint
    _, info = load_checkpoint(out)  # whole: history beside it, and its sidecar says how it ended
    assert info.config["stopped"] == "user" and info.config["epochs_run"] < 200
    assert (tmp_path / "run.history.csv").is_file() and f"saved {out}" in stdout
    from training.backups import completed_epochs  # and the same command goes on from there
    assert completed_epochs(backup) >= 1
    assert f"the same command goes on from epoch {completed_epochs(backup) + 1}" in stderr


def test_ctrl_c_after_the_last_batch_keeps_the_whole_run_and_says_so(tmp_path, capsys,
                                                                     monkeypatch):
    import training.train
    from training.__main__ import main

    real = training.train.train

    def then_ctrl_c(*args, **kwargs):  # the run ends, then Ctrl+C arrives (while it saves)
        result = real(*args, **kwargs)
        args[3].cancel.set()
        return result

    monkeypatch.setattr(training.train, "train", then_ctrl_c)
    data = make_class_folders(tmp_path / "colours", n=12, size=32)
    out = tmp_path / "run.keras"
    assert main(["train", "--data", str(data), "--epochs", "1", "--widths", "4,8,8",
                 "--precision", "float32", "--out", str(out)]) == 130
    assert "interrupted: the run had finished and is saved whole" in capsys.readouterr().err
    from training.checkpoints import read_info
    assert read_info(out).metrics["command_wall_s"] > 0  # (exit 1, "error: cancelled", on an archive)


def test_ctrl_c_during_the_calibration_pass_says_all_epochs_ran(tmp_path, capsys, monkeypatch):
    import training.train
    from training.__main__ import main

    real = training.train._finished

    def ctrl_c_then_finish(keeper, val_set, stopped, first_epoch, reporter):
        reporter.cancel.set()  # every epoch is done: Ctrl+C as the calibration pass begins
        return real(keeper, val_set, stopped, first_epoch, reporter)

    monkeypatch.setattr(training.train, "_finished", ctrl_c_then_finish)
    data = make_class_folders(tmp_path / "colours", n=12, size=32)
    out = tmp_path / "run.keras"
    assert main(["train", "--data", str(data), "--epochs", "1", "--widths", "4,8,8",
                 "--precision", "float32", "--out", str(out), "--backup",
                 str(tmp_path / "backup")]) == 130
    err = capsys.readouterr().err  # not "goes on from epoch 2": there is none
    assert "stopped by Ctrl+C; kept its best epoch so far (1); all its epochs ran, only its " \
           "calibration was skipped" in err


def test_a_truncated_archive_is_one_line_not_a_traceback(tmp_path):
    import tarfile
    archive = tmp_path / "cifar10-jpg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(40):
            path = tmp_path / f"{i}.jpg"
            pixels = np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=95)
            tar.add(path, f"cifar10/test/cat/{i}.jpg")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    proc = run_cli("evaluate", "--data", str(archive))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "damaged or incomplete" in error


def test_config_of_a_fine_tune_needs_its_parent_and_keeps_head_only(tmp_path, tiny_checkpoint,
                                                                      capsys):
    """`train --config SIDECAR` re-runs what the sidecar records: a fine-tune's start is its
    parent, so without --from it is refused (it trained from random weights, saying nothing);
    with --from it fine-tunes the head only again, as recorded."""
    from training.__main__ import main
    from training.checkpoints import read_info
    data = make_class_folders(tmp_path / "colours", n=8, size=32)
    first = tmp_path / "first.keras"
    common = ["--data", str(data), "--epochs", "1", "--precision", "float32"]
    assert main(["train", *common, "--from", str(tiny_checkpoint), "--head-only",
                 "--out", str(first)]) == 0
    assert read_info(first).config["fine_tune"] == "head"
    capsys.readouterr()
    again = tmp_path / "again.keras"
    assert main(["train", *common, "--config", str(first.with_suffix(".json")),
                 "--out", str(again)]) == 2
    assert "fine-tuned from 'tiny'" in capsys.readouterr().err and not again.exists()
    assert main(["train", *common, "--config", str(first.with_suffix(".json")),
                 "--from", str(tiny_checkpoint), "--out", str(again)]) == 0
    info = read_info(again)
    assert info.parent == "tiny" and info.config["fine_tune"] == "head"


def test_a_run_without_validation_images_says_so_and_a_kept_share_is_said(tmp_path, capsys):
    """With nothing held out, each epoch line gave 'val_loss 0.0000 val_acc 0.0000' (read as a
    model always wrong); a fine-tune that keeps its parent's validation share instead of the one
    asked for lowered it without a word."""
    from training.__main__ import main
    data = make_class_folders(tmp_path / "colours", n=12, size=32)
    common = ["--data", str(data), "--epochs", "1", "--widths", "4,8,8", "--precision", "float32"]
    assert main(["train", *common, "--val-fraction", "0", "--out", str(tmp_path / "a.keras")]) == 0
    out = capsys.readouterr().out
    assert "no validation images" in out and "val_loss" not in out
    assert main(["train", *common, "--val-fraction", "0.25", "--out",
                 str(tmp_path / "parent.keras")]) == 0
    capsys.readouterr()
    assert main(["train", *common, "--val-fraction", "0.5", "--from", str(tmp_path / "parent.keras"),
                 "--out", str(tmp_path / "child.keras")]) == 0
    assert "validation share 0.25, not 0.5" in capsys.readouterr().out


def test_runs_started_in_the_same_second_each_keep_their_checkpoint(tmp_path, capsys,
                                                                      monkeypatch):
    """A seed sweep in the background (no --out): runs started in the same second took the same
    name; each said "saved" and exited 0, and one checkpoint was left. A run that fails leaves
    nothing behind, not even the placeholder that held its name."""
    import training.checkpoints
    import training.train
    from training.__main__ import main
    from training.library import list_checkpoints
    from training.paths import user_checkpoints_dir

    monkeypatch.setattr(training.checkpoints, "now_iso", lambda: "2026-11-27T06:49:20+00:00")
    data = make_class_folders(tmp_path / "own", n=8, size=32)
    common = ["train", "--data", str(data), "--epochs", "1", "--widths", "4,8,8",
              "--precision", "float32"]
    real, second = training.train.train, []

    def another_run_starts_meanwhile(*args, **kwargs):  # named, not saved yet: the other starts
        if not second:
            second.append("running")
            second[0] = main([*common, "--seed", "2"])
        return real(*args, **kwargs)

    monkeypatch.setattr(training.train, "train", another_run_starts_meanwhile)
    assert main([*common, "--seed", "1"]) == 0 and second == [0]
    saved = [line[len("saved "):].split(" (history: ")[0]
             for line in capsys.readouterr().out.splitlines() if line.startswith("saved ")]
    folder = user_checkpoints_dir()
    assert sorted(saved) == [str(folder / "own-2026-11-27T064920 (2).keras"),
                             str(folder / "own-2026-11-27T064920.keras")]
    entries = list_checkpoints(folder)
    assert sorted(e.info.config["seed"] for e in entries) == [1, 2]
    left = sorted(p.name for p in folder.iterdir())
    assert not [name for name in left if name.startswith(".")]  # no placeholder left behind
    assert main(["train", "--data", str(tmp_path / "nowhere")]) == 1
    assert sorted(p.name for p in folder.iterdir()) == left


def test_an_unwritable_per_user_folder_is_named_as_such_not_as_out(tmp_path, capsys,
                                                                     monkeypatch):
    """Without --out, a per-user data folder that cannot be written was said as "error: --out:
    cannot write in ...", an option the user never gave."""
    from training.__main__ import main

    (tmp_path / "afile").write_text("a file where the data folder would be")
    monkeypatch.setenv("PIXELCLASSIFIER_HOME", str(tmp_path / "afile" / "home"))
    assert main(["train", "--data", str(tmp_path / "own"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the per-user checkpoints folder ") and "--out:" not in err
    assert "cannot be written" in err and "with --out" in err and err.count("\n") == 1
