"""The command line: predict gives one JSON line per file; train writes a checkpoint, its history
and resumes after SIGKILL; bad data gives one line on stderr and exit 1."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=240)


def test_predict_json_gives_a_result_or_a_reason_for_every_file(image_dir):
    sample = ROOT / "resources" / "sample-ship.jpg"
    missing = image_dir / "vanished.png"
    proc = run_cli("predict", str(sample), str(image_dir), str(missing), "--json", "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"sample-ship.jpg", "red.png", "green.jpg", "blue.png", "broken.png",
                            "vanished.png"}
    ship = by_name["sample-ship.jpg"]
    assert ship["ok"] and ship["top"][0]["label"] == "ship" and len(ship["top"]) == 3
    assert ship["input"] == {"width": 32, "height": 32, "mode": "RGB", "format": "JPEG",
                             "conforms": True, "conversions": []}
    assert by_name["green.jpg"]["input"]["conforms"] is False
    assert by_name["green.jpg"]["input"]["conversions"]
    assert by_name["broken.png"] == {"path": str(image_dir / "broken.png"), "ok": False,
                                     "error": by_name["broken.png"]["error"]}
    assert "not found" in by_name["vanished.png"]["error"]


def test_usage_error_exits_2():
    assert run_cli("predict").returncode == 2
    assert run_cli("no-such-command").returncode == 2


@pytest.mark.parametrize("args, said", [
    (("train", "--data", "x", "--batch-size", "0"), "0 is not a whole number of at least 1"),
    (("train", "--data", "x", "--epochs", "-1"), "-1 is not a whole number of at least 1"),
    (("train", "--data", "x", "--lr", "-1"), "-1 is not a number of at least 0"),
    (("train", "--data", "x", "--lr", "nan"), "nan is not a number of at least 0"),
    (("train", "--data", "x", "--widths", "abc"), "abc is not three channel counts"),
    (("predict", "x.png", "--top-k", "0"), "0 is not a whole number of at least 1"),
    (("train", "--data", "x", "--distill", "2"), "2 is not a share from 0 to 1")])
def test_numbers_out_of_range_are_usage_errors_before_any_work(args, said):
    proc = run_cli(*args)  # (a traceback, a NaN story, or a run that trained on nonsense)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr


def make_class_folders(root, n=12, size=24):
    """Three colour classes of small noisy images, enough to train on in seconds."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
            pixels[..., label] += 170
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


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


def test_a_folder_without_images_gets_a_reason_and_nothing_classified_exits_1(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    proc = run_cli("predict", str(tmp_path / "empty"), "--json")
    assert proc.returncode == 1
    [row] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row == {"path": str(tmp_path / "empty"), "ok": False,
                   "error": "no image files found in this folder"}


def test_evaluate_refuses_a_report_that_would_overwrite_the_checkpoints_sidecar(tmp_path,
                                                                               tiny_checkpoint):
    import shutil
    checkpoint = tmp_path / "run1.keras"
    shutil.copy(tiny_checkpoint, checkpoint)
    shutil.copy(tiny_checkpoint.with_suffix(".json"), tmp_path / "run1.json")
    sidecar = (tmp_path / "run1.json").read_bytes()
    proc = run_cli("evaluate", "--checkpoint", str(checkpoint), "--data", str(tmp_path),
                   "--report", str(tmp_path / "run1.json"))
    assert proc.returncode == 2 and "sidecar" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert (tmp_path / "run1.json").read_bytes() == sidecar
    history = run_cli("evaluate", "--checkpoint", str(checkpoint), "--data", str(tmp_path),
                      "--report", str(tmp_path / "run1.history.csv"))
    assert history.returncode == 2  # its training history is the checkpoint's too
    csv_report = run_cli("evaluate", "--checkpoint", str(checkpoint), "--data", str(tmp_path),
                         "--report", str(tmp_path / "run1.csv"))
    assert "sidecar" not in csv_report.stderr  # a CSV beside it is fine (this data is not)


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


def cli_env(**changes):
    """This process's environment (its PIXELCLASSIFIER_HOME) with ``changes``; None removes."""
    env = {**os.environ, **{k: v for k, v in changes.items() if v is not None}}
    for name in (k for k, v in changes.items() if v is None):
        env.pop(name, None)
    return env


def test_a_keras_backend_that_is_not_installed_is_said_in_one_line_not_a_traceback(tmp_path):
    """KERAS_BACKEND=jax in the shell (no JAX here) made every command fail with a 39-line
    ModuleNotFoundError traceback; a JAX user's ~/.keras/keras.json did the same, and the command
    line wrote ~/.keras/keras.json into the real home even with PIXELCLASSIFIER_HOME set."""
    if importlib.util.find_spec("jax") is not None:
        pytest.skip("JAX is installed here: KERAS_BACKEND=jax is kept, as it should be")
    home = tmp_path / "home"
    home.mkdir()
    sample = str(ROOT / "resources" / "sample-ship.jpg")
    env = cli_env(KERAS_BACKEND="jax", KERAS_HOME=None, HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "training", "predict", sample, "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=240, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["top"][0]["label"] == "ship"
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert "KERAS_BACKEND=jax" in warning and "not installed" in warning and "tensorflow" in warning
    assert not (home / ".keras").exists()  # Keras's settings went to our folder
    from training.paths import keras_home
    assert json.loads((keras_home() / "keras.json").read_text())["backend"] == "tensorflow"

    (home / ".keras").mkdir()  # a JAX user's own Keras settings: theirs, not ours
    (home / ".keras" / "keras.json").write_text('{"backend": "jax"}')
    proc = subprocess.run([sys.executable, "-m", "training", "predict", sample, "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=240,
                          env=cli_env(KERAS_BACKEND=None, KERAS_HOME=None, HOME=str(home)))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert (home / ".keras" / "keras.json").read_text() == '{"backend": "jax"}'


def test_a_keras_backend_the_user_chose_is_kept_where_it_is_installed(monkeypatch, capsys):
    """The README trains with KERAS_BACKEND=jax on a GPU machine that has JAX: that stays (the
    numpy backend stands in for it here, as its package is installed)."""
    import training.__main__ as cli
    from training.paths import keras_home
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    cli.settle_keras_backend()
    assert os.environ["KERAS_BACKEND"] == "numpy" and capsys.readouterr().err == ""
    assert os.environ["KERAS_HOME"] == str(keras_home())
    monkeypatch.setenv("KERAS_BACKEND", "no_such_backend")
    cli.settle_keras_backend()
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
    assert capsys.readouterr().err.count("\n") == 1


def test_predict_prints_each_chunk_as_it_is_classified_in_the_order_given(tmp_path, monkeypatch):
    """Nothing was printed until every file was classified (2,000 files: the first line at the
    end, `| head -1` waited for all, Ctrl+C gave no line), and folders without images came first,
    out of the order given."""
    import io

    import training.predict
    import training.preprocessing
    from training.__main__ import main

    big, before, after = tmp_path / "big", tmp_path / "before", tmp_path / "after"
    for folder in (big, before, after):
        folder.mkdir()
    for i in range(600):
        (big / f"{i:03d}.png").touch()  # (read by the stand-in below)
    out = io.StringIO()
    lines_when_read = []

    class Report:
        array = np.zeros((32, 32, 3), np.uint8)

        @staticmethod
        def summary():
            return {}

    def read(path, policy, strict=False):  # counts the files read, and what was printed by then
        lines_when_read.append(out.getvalue().count("\n"))
        return Report()

    class Stub:
        info = type("Info", (), {"preprocessing": None, "class_names": ("cat", "dog")})

        def classify(self, images):
            return np.tile(np.float32([0.75, 0.25]), (len(images), 1))

    monkeypatch.setattr(training.preprocessing, "load_image", read)
    monkeypatch.setattr(training.predict.Classifier, "load", classmethod(lambda cls, path: Stub()))
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["predict", str(before), str(big), str(after), "--json"]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["before", *(f"{i:03d}.png" for i in range(600)),
                                                    "after"]
    assert len(lines_when_read) == 600 and lines_when_read[-1] >= 256  # earlier chunks out first


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


def test_exit_status_is_in_each_commands_help(capsys):
    """A script's author found no word of what the exit statuses mean in any --help."""
    from training.__main__ import main

    for command in ([], ["predict"], ["train"], ["evaluate"], ["calibrate"], ["export"]):
        with pytest.raises(SystemExit) as ended:
            main([*command, "--help"])
        assert ended.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "exit status: 0 " in text and "130 stopped by Ctrl+C" in text, command
        assert ("3 written, but it does not" in text) == (command == ["export"])
