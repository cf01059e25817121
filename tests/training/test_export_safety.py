"""Export, what goes wrong around it: folder names TensorFlow reads as patterns, a first export
that fails or is cancelled (nothing stays), a re-export that does (the earlier one stays), a
broken or drifting export that top-1 agreement alone would pass, the names the notes give each
runtime's input and output, refusals before data is read, the parity sample."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from training.checkpoints import load_checkpoint
from training.export import ExportError, export_checkpoint, parity_sample
from training.predict import probabilities

from . import test_export
from .test_export import CancelAtStep

checkpoint, held_out = test_export.checkpoint, test_export.held_out  # the same fixtures


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_an_export_into_a_folder_with_brackets_works_and_its_notes_name_the_tensors(
        checkpoint, held_out, tmp_path, fmt):
    """TensorFlow finds a SavedModel's variables by a glob pattern: "Models [final]" made
    both formats fail with an error blaming the model."""
    import tensorflow as tf
    out = tmp_path / "Models [final]" / fmt
    result = export_checkpoint(checkpoint, fmt, out, sample=held_out)
    assert result.ok and result.parity["top1_agreement"] == 1.0
    described = json.loads((out / "preprocessing.json").read_text())
    if fmt == "tflite":
        interpreter = tf.lite.Interpreter(model_path=str(result.artefact))
        names = (interpreter.get_input_details()[0]["name"],
                 interpreter.get_output_details()[0]["name"])
    else:
        import shutil
        shutil.copytree(result.artefact, tmp_path / "plain")  # a path without brackets
        signature = tf.saved_model.load(str(tmp_path / "plain")).signatures["serving_default"]
        names = (*signature.structured_input_signature[1], *signature.structured_outputs)
    assert names == (described["input"]["names"][fmt], described["output"]["names"][fmt])


def test_the_notes_name_the_real_tensors_of_a_network_whose_input_is_not_called_image(
        held_out, tmp_path):
    """An imported network names its own input ("pixels" here); without flip TTA it was
    exported as it was, so the SavedModel's input was "pixels" and the TFLite input
    "serving_default_pixels:0" while preprocessing.json and the README said "image"."""
    import keras
    import tensorflow as tf
    from training.checkpoints import CheckpointInfo, save_checkpoint
    keras.utils.set_random_seed(0)
    pixels = keras.Input((32, 32, 3), name="pixels")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 64)(pixels))
    model = keras.Model(pixels, keras.layers.Dense(3, activation="softmax", name="head")(features))
    path = tmp_path / "imported.keras"
    save_checkpoint(model, CheckpointInfo(class_names=test_export.CLASSES, tta="none"), path)
    out = tmp_path / "out"
    for fmt in ("savedmodel", "tflite"):
        assert export_checkpoint(path, fmt, out, sample=held_out).ok
    described = json.loads((out / "preprocessing.json").read_text())
    names, outputs = described["input"]["names"], described["output"]["names"]
    assert not described["tta_inside_exported_graph"]

    signature = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == [names["savedmodel"]]
    assert list(signature.structured_outputs) == [outputs["savedmodel"]]
    x = held_out[:4].astype(np.float32)  # called by the documented name, as a user would
    got = signature(**{names["savedmodel"]: tf.constant(x)})[outputs["savedmodel"]].numpy()
    np.testing.assert_allclose(got, probabilities(model, held_out[:4]), atol=1e-5)
    interpreter = tf.lite.Interpreter(model_path=str(out / "model.tflite"))
    assert interpreter.get_input_details()[0]["name"] == names["tflite"]
    assert interpreter.get_output_details()[0]["name"] == outputs["tflite"]
    assert f"`{names['savedmodel']}` in SavedModel" in (out / "README.md").read_text()


@pytest.mark.parametrize("existing", [False, True])
def test_a_first_export_that_fails_or_is_cancelled_leaves_nothing_behind(
        checkpoint, held_out, tmp_path, monkeypatch, existing):
    """No labels, README or parity notes about a model that is not there (the folder the
    dialog suggests is under Documents, where users would find them)."""
    from training import export
    out = tmp_path / "new export"
    if existing:
        out.mkdir()  # an empty folder the user made for it: stays, empty
    with pytest.raises(InterruptedError):  # cancelled after the conversion
        export_checkpoint(checkpoint, "keras", out, sample=held_out, reporter=CancelAtStep(3))
    assert out.exists() == existing and (not existing or not any(out.iterdir()))

    def broken_writer(serving, path, input_shape):
        path.write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(export.WRITERS, "keras", broken_writer)
    with pytest.raises(export.ExportError, match="No space left"):
        export_checkpoint(checkpoint, "keras", out, sample=held_out)
    assert out.exists() == existing and (not existing or not any(out.iterdir()))


@pytest.mark.parametrize("broken", ["square roots", "logits", "nan"])
def test_a_broken_export_fails_parity_even_where_only_top1_agreement_is_asked(
        checkpoint, held_out, broken):
    """int8 and mixed-precision exports need 99 % top-1 agreement, not 1e-3 closeness: an
    export whose outputs keep the order but are not the probabilities still fails."""
    from training.parity import LENIENT_AGREEMENT, LENIENT_MAX_DIFF, parity
    model, info = load_checkpoint(checkpoint)

    def export(images):
        p = probabilities(model, images, info.tta)
        if broken == "square roots":
            return np.sqrt(p)
        if broken == "logits":
            return np.log(p) - np.log(p).mean(axis=1, keepdims=True)
        p[0] = np.nan
        return p

    figures = parity(export, model, info, held_out, LENIENT_AGREEMENT, LENIENT_MAX_DIFF)
    assert not figures["ok"]
    assert parity(lambda images: probabilities(model, images, info.tta), model, info,
                  held_out, LENIENT_AGREEMENT, LENIENT_MAX_DIFF)["ok"]


def test_the_cli_refuses_a_folder_before_reading_the_parity_data(checkpoint, tmp_path,
                                                                 monkeypatch, capsys):
    from training import parity
    from training.__main__ import main
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "holiday.jpg").write_bytes(b"the user's")

    def read_data(*args, **kwargs):
        raise AssertionError("the data was read before the folder was checked")

    monkeypatch.setattr(parity, "parity_sample", read_data)
    monkeypatch.setattr("training.export.parity_sample", read_data)
    assert main(["export", "--format", "keras", "--checkpoint", str(checkpoint), "--out",
                 str(tmp_path / "taken"), "--data", str(tmp_path)]) == 1
    assert "is not empty and holds no export" in capsys.readouterr().err


def test_an_export_whose_runtime_fails_is_one_line_and_leaves_nothing(checkpoint, held_out,
                                                                      tmp_path, monkeypatch):
    from training import export

    def crashing_runtime(fmt, path):
        def predict(images):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status\n"
                               "stack trace follows")
        return predict

    monkeypatch.setattr(export, "load_exported", crashing_runtime)
    with pytest.raises(export.ExportError, match="does not run: .ONNXRuntimeError. : 6") as error:
        export_checkpoint(checkpoint, "keras", tmp_path / "out", sample=held_out)
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()


def test_a_float_export_whose_probabilities_drift_fails_parity_though_its_top_class_agrees(
        checkpoint, held_out):
    """A top probability 0.05 off moves the low-confidence flag onto other images: a float
    export must also stay within 1e-3 of the app's probabilities (int8 need not)."""
    from training.parity import LENIENT_AGREEMENT, LENIENT_MAX_DIFF, parity
    from training.predict import probabilities
    model, info = load_checkpoint(checkpoint)

    def drifting(images):
        p = probabilities(model, images, info.tta)
        top = p.argmax(axis=1)
        p[np.arange(len(p)), top] += 0.05  # the same top class, a larger probability
        return p / p.sum(axis=1, keepdims=True)

    strict = parity(drifting, model, info, held_out)
    assert strict["top1_agreement"] == 1.0 and strict["max_abs_diff"] > 1e-3
    assert not strict["ok"] and strict["max_allowed_diff"] == 1e-3
    assert parity(drifting, model, info, held_out, LENIENT_AGREEMENT, LENIENT_MAX_DIFF)["ok"]


def test_parity_sample_is_deterministic_and_big_enough():
    first, again = parity_sample(), parity_sample()
    assert first.source == "synthetic images" and first.images.shape == (256, 32, 32, 3)
    assert first.images.dtype == np.uint8 and first.images.std() > 20
    np.testing.assert_array_equal(first.images, again.images)


def test_a_cancelled_or_failed_re_export_keeps_the_export_already_there(checkpoint, held_out,
                                                                       tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = export_checkpoint(checkpoint, "keras", out, sample=held_out)
    before = first.artefact.read_bytes()
    reporter = CancelAtStep(3)  # the new file is written; cancelled before its parity check
    with pytest.raises(InterruptedError):
        export_checkpoint(checkpoint, "keras", out, sample=held_out, reporter=reporter)
    assert first.artefact.read_bytes() == before and first.ok
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    import training.export as export

    def broken_writer(serving, path, input_shape):
        raise RuntimeError("converter crashed\nwith a long story")

    monkeypatch.setitem(export.WRITERS, "keras", broken_writer)
    with pytest.raises(ExportError, match="cannot write keras: converter crashed"):
        export_checkpoint(checkpoint, "keras", out, sample=held_out)
    assert first.artefact.read_bytes() == before
    assert json.loads((out / "parity.json").read_text())["keras"]["ok"]


def test_a_small_labelled_set_is_used_whole_and_topped_up_with_synthetic_images(tmp_path):
    from training.preprocessing import Preprocessing
    for label, colour in enumerate(((200, 20, 20), (20, 200, 20))):
        folder = tmp_path / "few" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(30):
            Image.new("RGB", (32, 32), tuple(min(255, c + i) for c in colour)).save(
                folder / f"{i}.png")
    sample = parity_sample(tmp_path / "few", 256, Preprocessing())
    assert sample.images.shape == (256, 32, 32, 3)
    assert "60 images" in sample.source and "196 synthetic" in sample.source


def test_an_export_of_a_checkpoint_renamed_by_hand_goes_by_its_file_name(checkpoint, held_out,
                                                                         tmp_path):
    import shutil
    from training.checkpoints import sidecar_path
    renamed = tmp_path / "best.keras"  # renamed in a file manager: its sidecar names the old one
    shutil.copy(checkpoint, renamed)
    shutil.copy(sidecar_path(checkpoint), sidecar_path(renamed))
    out = tmp_path / "export"
    export_checkpoint(renamed, "keras", out, sample=held_out)
    assert json.loads((out / "preprocessing.json").read_text())["checkpoint"] == "best"
    assert (out / "README.md").read_text().startswith("# best: exported classifier")
