"""Export: every format round-trips through its own runtime and predicts like the app (flip TTA
baked in), the folder carries labels, preprocessing and a README whose snippet reproduces the
app's preprocessing, and an export that disagrees is flagged (parity.json, exit 3)."""
from __future__ import annotations

import importlib.util
import json
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from training.checkpoints import CheckpointInfo, load_checkpoint, save_checkpoint
from training.export import ExportError, MIN_PARITY_IMAGES, export_checkpoint
from training.export_notes import readme_text
from training.predict import probabilities
from training.preprocessing import Preprocessing, load_image

CLASSES = ("first", "second", "third")  # sorted, as class folders are read
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))


def colour_images(n, seed):
    """Noisy images, one colour channel raised per class, brighter to the right (so an image and
    its mirror image give different probabilities and the flip TTA matters)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 90, (n, 32, 32, 3))
    ramp = np.linspace(80.0, 160.0, 32)[None, :]
    for i, label in enumerate(labels):
        images[i, :, :, label] += ramp.astype(int)
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny checkpoint with flip TTA, trained for a few seconds so its answers have margins
    (an untrained net's near-ties would make int8 rounding flip top-1 answers); label smoothing
    keeps its probabilities away from 1, so the flip TTA visibly changes them."""
    import keras
    from training.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(3, widths=(8, 16, 16), stem=8)  # some kernels >= 1024 weights: quantised
    x, y = colour_images(300, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.5))
    model.fit(x.astype(np.float32), np.eye(3)[y], epochs=3, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("export-ckpt") / "tiny.keras"
    save_checkpoint(model, CheckpointInfo(class_names=CLASSES, tta="hflip"), path)
    return path


@pytest.fixture(scope="module")
def held_out():
    return colour_images(240, seed=2)[0]


def run_exported(fmt, artefact, images):
    """Probabilities from the artefact's own runtime, independent of training.export."""
    x = images.astype(np.float32)
    if fmt == "keras":
        import keras
        return np.asarray(keras.saving.load_model(artefact, safe_mode=True).predict_on_batch(x))
    if fmt == "savedmodel":
        import tensorflow as tf
        loaded = tf.saved_model.load(str(artefact))  # keep it: its variables die with it
        return loaded.serve(x).numpy()
    if fmt == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(str(artefact), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["image"]
        return session.run(None, {"image": x})[0]
    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(artefact))
    source = interpreter.get_input_details()[0]
    assert source["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    interpreter.resize_tensor_input(source["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    kinds = {t["dtype"] for t in interpreter.get_tensor_details()}
    assert (np.int8 in kinds) == (fmt == "tflite-int8")  # int8 weights only in the int8 variant
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


FORMATS = ["keras", "savedmodel", "tflite", "tflite-int8",
           pytest.param("onnx", marks=pytest.mark.skipif(
               not HAVE_ONNX, reason="tf2onnx and onnxruntime are optional, not installed"))]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_with_full_top1_parity(checkpoint, held_out, fmt, tmp_path):
    out = tmp_path / "export"
    result = export_checkpoint(checkpoint, fmt, out, sample=held_out)
    assert result.ok and result.parity["top1_agreement"] == 1.0
    assert result.parity["images"] == len(held_out) >= MIN_PARITY_IMAGES

    model, _ = load_checkpoint(checkpoint)
    app = probabilities(model, held_out, "hflip")
    got = run_exported(fmt, result.artefact, held_out)
    assert np.mean(got.argmax(1) == app.argmax(1)) == 1.0
    tolerance = 2e-2 if fmt == "tflite-int8" else 1e-5
    assert np.abs(got - app).max() < tolerance
    # the flip TTA is inside the exported graph: without it the answers differ by far more
    assert np.abs(got - app).max() < 0.2 * np.abs(got - probabilities(model, held_out)).max()

    assert (out / "labels.txt").read_text().splitlines() == list(CLASSES)
    described = json.loads((out / "preprocessing.json").read_text())
    assert described["tta"] == "hflip" and described["tta_inside_exported_graph"]
    assert described["input"]["shape"] == [None, 32, 32, 3]
    assert described["preprocessing"]["resize"] == "crop"
    recorded = json.loads((out / "parity.json").read_text())[fmt]
    assert recorded["ok"] and recorded["top1_agreement"] == 1.0
    assert recorded["max_abs_diff"] == pytest.approx(result.parity["max_abs_diff"])
    readme = (out / "README.md").read_text()
    assert result.artefact.name in readme and "FAILED" not in readme


def test_a_mixed_precision_checkpoint_exports_as_float32(checkpoint, held_out, tmp_path):
    import keras
    from training.model import build_model

    trained, info = load_checkpoint(checkpoint)
    model = build_model(3, widths=(8, 16, 16), stem=8, dtype="mixed_bfloat16")
    model.set_weights(trained.get_weights())
    path = tmp_path / "bf16.keras"
    save_checkpoint(model, info, path)
    result = export_checkpoint(path, "tflite", tmp_path / "out", sample=held_out)
    assert result.ok and result.parity["min_agreement"] == 0.99  # bfloat16 app vs float32 export
    assert result.parity["top1_agreement"] == 1.0
    assert "mixed precision" in json.loads((tmp_path / "out" / "preprocessing.json")
                                           .read_text())["compute_dtype"]
    assert keras.mixed_precision.dtype_policy().name == "float32"  # no global policy left behind


def snippet_of(readme):
    return re.search(r"## Preprocessing.*?```python\n(.*?)```", readme, re.S).group(1)


def awkward_images(folder):
    """Inputs that exercise each step: transparency, palette, greyscale, EXIF, odd sizes."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    pixels = rng.integers(0, 256, (40, 64, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(folder / "rgba-wide.png")
    Image.fromarray(pixels[:, :, :3]).convert("P").save(folder / "palette.png", transparency=3)
    Image.fromarray(pixels[:, :, 0], "L").resize((20, 50)).save(folder / "grey-tall.png")
    Image.fromarray(pixels[:, :, :2], "LA").save(folder / "grey-alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    Image.fromarray(pixels[:, :, :3]).save(folder / "rotated.jpg", exif=exif)
    Image.fromarray(pixels[:32, :32, :3]).save(folder / "exact.png")
    Image.fromarray(pixels[:, :, :3]).convert("CMYK").save(folder / "cmyk.jpg")
    return sorted(folder.iterdir())


@pytest.mark.parametrize("policy", [Preprocessing(resize="crop"),
                                    Preprocessing(resize="pad", pad_value=128),
                                    Preprocessing(resize="squash", pad_value=0)])
def test_readme_snippet_reproduces_the_app_preprocessing(policy, tmp_path):
    readme = readme_text(CheckpointInfo(class_names=CLASSES, preprocessing=policy), {})
    code = snippet_of(readme)
    assert len(code.strip().splitlines()) <= 14
    namespace = {}
    exec(code, namespace)  # the README's own code, as a user would paste it
    for path in awkward_images(tmp_path / "images"):
        expected = load_image(path, policy).array
        np.testing.assert_array_equal(namespace["prepare"](path), expected, err_msg=path.name)


def test_readme_of_an_export_runs_and_names_the_policy(checkpoint, held_out, tmp_path):
    result = export_checkpoint(checkpoint, "keras", tmp_path / "out", sample=held_out)
    readme = (result.folder / "README.md").read_text()
    assert "resize policy `crop`" in readme and "do not apply it again" in readme
    namespace = {}
    exec(snippet_of(readme), namespace)
    image = tmp_path / "photo.png"
    Image.fromarray(held_out[0]).resize((50, 30)).save(image)
    np.testing.assert_array_equal(namespace["prepare"](image), load_image(image).array)


def shuffled_exports(monkeypatch):
    """Make every export answer with its probabilities rotated by one class."""
    import training.export as export

    real = export.load_exported
    monkeypatch.setattr(export, "load_exported",
                        lambda fmt, path: lambda x: np.roll(real(fmt, path)(x), 1, axis=1))


def test_a_disagreeing_export_is_flagged_not_shipped(checkpoint, held_out, tmp_path, monkeypatch,
                                                     capsys):
    from training.__main__ import main

    shuffled_exports(monkeypatch)
    result = export_checkpoint(checkpoint, "keras", tmp_path / "out", sample=held_out)
    assert not result.ok and result.parity["top1_agreement"] < 0.5
    assert result.artefact.is_file()  # stays on disk, flagged
    assert json.loads((tmp_path / "out" / "parity.json").read_text())["keras"]["ok"] is False
    assert "FAILED: do not ship" in (tmp_path / "out" / "README.md").read_text()
    assert "PARITY FAILED" in result.summary()
    lenient = type(result)(**{**result.__dict__, "parity": {**result.parity, "max_allowed_diff": 0.25}})
    assert "probabilities within 0.25;" in lenient.summary()  # (it printed 2e-01)

    code = main(["export", "--checkpoint", str(checkpoint), "--format", "keras",
                 "--out", str(tmp_path / "cli")])
    assert code == 3 and "PARITY FAILED" in capsys.readouterr().out


def test_cli_prints_the_parity_figures_on_a_labelled_sample(checkpoint, tmp_path, capsys):
    from training.__main__ import main

    data = tmp_path / "colours"
    images, labels = colour_images(210, seed=4)
    for i, (pixels, label) in enumerate(zip(images, labels)):
        (data / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(data / CLASSES[label] / f"{i}.png")
    out = tmp_path / "out"
    args = ["export", "--checkpoint", str(checkpoint), "--format", "tflite", "--out", str(out),
            "--data", str(data)]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(rf"exported tflite to {re.escape(str(out))}: parity on 210 images "
                        r"\(colours\): top-1 agreement 100\.00 %, largest probability difference "
                        r"\d\.\de[-+]\d\d - OK", line), line
    # a second format into the same folder: both are recorded, the README covers both
    assert main([*args[:4], "keras", *args[5:], "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["ok"] and row["format"] == "keras" and row["sample"] == "colours"
    assert set(json.loads((out / "parity.json").read_text())) == {"tflite", "keras"}
    assert "model.tflite" in (out / "README.md").read_text()


def test_errors_are_one_line_and_exit_1(checkpoint, tiny_checkpoint, held_out, tmp_path, capsys):
    from training.__main__ import main

    out = tmp_path / "out"
    export_checkpoint(checkpoint, "keras", out, sample=held_out)
    with pytest.raises(ExportError, match="another checkpoint"):
        export_checkpoint(tiny_checkpoint, "keras", out, sample=held_out)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_checkpoint(checkpoint, "keras", tmp_path / "busy", sample=held_out)
    with pytest.raises(ExportError, match="at least 200"):
        export_checkpoint(checkpoint, "keras", tmp_path / "few", sample=held_out[:50])
    with pytest.raises(ExportError, match="unknown format"):
        export_checkpoint(checkpoint, "pickle", tmp_path / "x", sample=held_out)

    assert main(["export", "--checkpoint", str(tmp_path / "missing.keras"), "--format", "keras",
                 "--out", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_onnx_without_its_packages_says_what_to_install(checkpoint, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import fails as if not installed
    with pytest.raises(ExportError, match=r"ONNX export needs the optional packages tf2onnx and "
                                          r"onnxruntime .*pip install tf2onnx"):
        export_checkpoint(checkpoint, "onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


class CancelAtStep:
    """A reporter whose job is cancelled when it reaches the given step (counted from 1)."""

    def __init__(self, step):
        self.step, self.asked, self.messages = step, 0, []

    def progress(self, fraction, message=""):
        self.messages.append(message)

    def cancelled(self):
        self.asked += 1
        return self.asked >= self.step


def test_cancel_stops_between_steps_and_leaves_no_unchecked_model(checkpoint, held_out, tmp_path):
    with pytest.raises(InterruptedError):
        export_checkpoint(checkpoint, "tflite", tmp_path / "early", reporter=CancelAtStep(1))
    assert not (tmp_path / "early").exists()

    out = tmp_path / "out"
    export_checkpoint(checkpoint, "keras", out, sample=held_out)
    reporter = CancelAtStep(3)  # after the conversion, before the parity check
    with pytest.raises(InterruptedError):
        export_checkpoint(checkpoint, "tflite", out, sample=held_out, reporter=reporter)
    assert reporter.messages == ["loading the checkpoint", "converting to tflite"]
    assert not (out / "model.tflite").exists()
    assert set(json.loads((out / "parity.json").read_text())) == {"keras"}


def test_export_json_names_the_artefact_by_its_path(checkpoint, tmp_path, capsys, monkeypatch):
    """`export --json` gave "artefact": "model.keras", a bare name a script could not find
    (the parity figures' own file name overwrote the path)."""
    from training.__main__ import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "keras", "--out",
                 "dist/model", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["artefact"] == str(tmp_path.joinpath("dist", "model", "model.keras").relative_to(
        tmp_path)) and (tmp_path / row["artefact"]).is_file()
    assert row["folder"] == "dist/model" and row["ok"] is True and row["images"] >= 200


def test_an_out_that_cannot_be_written_is_a_usage_error_before_the_checkpoint_is_read(
        checkpoint, tmp_path, capsys):
    """`export --out` under a file exited 1, and `--out afile/sub` was found only after the
    checkpoint was loaded; train and evaluate say such a path with exit 2, before any work. The
    app's export dialog refuses it at once too (check_export)."""
    from training.__main__ import main
    from training.export import check_export

    (tmp_path / "afile").write_text("not a folder")
    for out, said in (("afile", "is a file, not a folder"), ("afile/sub", "cannot write in ")):
        for source in (checkpoint, tmp_path / "missing.keras"):  # (never read: said first)
            assert main(["export", "--checkpoint", str(source), "--format", "keras",
                         "--out", str(tmp_path / out)]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: --out: ") and said in err and err.count("\n") == 1
    with pytest.raises(ExportError, match="cannot write in"):
        check_export(checkpoint, "keras", tmp_path / "afile" / "sub")


def test_two_exports_of_one_format_into_one_folder_at_once_both_succeed(checkpoint, held_out,
                                                                        tmp_path, monkeypatch):
    """Two exports of one format into one folder at the same time (a CI retry overlapping):
    one failed with "No such file or directory: .staging.model.keras", the name both staged
    their model under."""
    import training.export

    out = tmp_path / "out"
    real, other = training.export.WRITERS["keras"], []

    def the_other_runs_meanwhile(serving, path, input_shape):  # written, not yet checked
        real(serving, path, input_shape)
        if not other:
            other.append("running")
            other[0] = export_checkpoint(checkpoint, "keras", out, sample=held_out)

    monkeypatch.setitem(training.export.WRITERS, "keras", the_other_runs_meanwhile)
    first = export_checkpoint(checkpoint, "keras", out, sample=held_out)
    assert first.ok and other[0].ok and training.export.load_exported("keras", first.artefact)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "labels.txt", "model.keras",
                                                      "parity.json", "preprocessing.json"]


def test_what_a_killed_export_staged_is_cleared_by_the_next(checkpoint, held_out, tmp_path):
    """A killed export leaves its staged model (its own name since exports stage apart): the
    next export into the folder removed it when the name was shared; now it removes those over
    an hour old of processes that are gone, and leaves a running export's alone."""
    import os
    import subprocess
    import time
    out = tmp_path / "out"
    assert export_checkpoint(checkpoint, "keras", out, sample=held_out).ok  # an earlier export
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / f".staging.{dead.pid}.0a1b2c3d.model.keras").write_bytes(b"x" * 1000)
    (out / ".staging.model.keras").write_bytes(b"an older version's")
    running = out / f".staging.{os.getppid()}.0a1b2c3d.model.keras"  # alive: exporting now
    running.write_bytes(b"x")
    recent = out / f".staging.{dead.pid}.99999999.model.keras"  # (maybe another computer's
    hour_ago = time.time() - 3700                                 # export, on a shared folder)
    for left in out.glob(".staging.*"):
        os.utime(left, (hour_ago, hour_ago))
    recent.write_bytes(b"x")
    assert export_checkpoint(checkpoint, "keras", out, sample=held_out).ok
    assert sorted(p.name for p in out.glob(".staging.*")) == sorted([running.name, recent.name])


def test_a_failed_export_leaves_another_export_into_the_same_new_folder_alone(
        checkpoint, held_out, tmp_path, monkeypatch):
    """Two exports into one new folder, one cancelled or failing: its cleanup emptied and
    removed the whole folder, the other export's staged model and notes too, and that one then
    failed putting its model in place."""
    import os

    import training.export
    out = tmp_path / "new"
    theirs = []

    def fails_while_another_stages(serving, path, input_shape):
        theirs.append(out / f".staging.{os.getppid()}.0a1b2c3d.model.onnx")  # (alive)
        theirs[0].write_bytes(b"the other export's model, being written")
        raise ExportError("cancelled")

    monkeypatch.setitem(training.export.WRITERS, "keras", fails_while_another_stages)
    with pytest.raises(ExportError):
        export_checkpoint(checkpoint, "keras", out, sample=held_out)
    assert theirs[0].is_file() and (out / "preprocessing.json").is_file()
