"""The command line: predict gives one JSON line per file, streamed in the order given; usage
errors exit 2; evaluate's report; a Keras backend that is not installed; the exit statuses in
each --help (train: test_cli_train.py)."""
import importlib.util
import json
import os
import subprocess
import sys
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
