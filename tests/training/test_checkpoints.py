"""Checkpoints load only when safe and consistent; saves are atomic and leave no debris."""
import json
import zipfile

import numpy as np
import pytest

from training.checkpoints import (CheckpointError, CheckpointInfo, load_checkpoint, read_info,
                                  save_checkpoint, sidecar_path)
from training.model import build_model


def small_model(classes=3):
    return build_model(classes, widths=(4, 8, 8), stem=4)


def test_round_trip_keeps_weights_and_sidecar(tmp_path):
    model = small_model()
    info = CheckpointInfo(class_names=("a", "b", "c"), metrics={"val_accuracy": 0.5}, seed=3,
                          data_fingerprint="sha256:abc", parent="bundled")
    path = save_checkpoint(model, info, tmp_path / "m.keras")
    loaded, back = load_checkpoint(path)
    x = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.allclose(model.predict_on_batch(x), loaded.predict_on_batch(x), atol=1e-6)
    assert back.class_names == ("a", "b", "c") and back.seed == 3 and back.parent == "bundled"
    side = json.loads(sidecar_path(path).read_text())
    for key in ("class_names", "input_shape", "preprocessing", "metrics", "data_fingerprint",
                "config", "parent", "created", "versions", "model_sha256"):
        assert key in side
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]  # no temp files


def test_resave_replaces_atomically(tmp_path):
    path = tmp_path / "m.keras"
    save_checkpoint(small_model(), CheckpointInfo(class_names=("a", "b", "c")), path)
    save_checkpoint(small_model(), CheckpointInfo(class_names=("x", "y", "z")), path)
    assert load_checkpoint(path)[1].class_names == ("x", "y", "z")
    assert len(list(tmp_path.iterdir())) == 2


def test_lambda_layer_is_refused_by_safe_mode(tmp_path):
    import keras
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = tmp_path / "lambda.keras"
    save_checkpoint(model, CheckpointInfo(class_names=("a", "b")), path)
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(path)


def test_class_count_disagreeing_with_sidecar_is_refused(tmp_path):
    path = save_checkpoint(small_model(3), CheckpointInfo(class_names=("a", "b")), tmp_path / "m.keras")
    with pytest.raises(CheckpointError, match="3 outputs but the sidecar names 2"):
        load_checkpoint(path)


def test_corrupt_zip_invalid_json_and_missing_sidecar_are_refused(tmp_path):
    path = save_checkpoint(small_model(), CheckpointInfo(class_names=("a", "b", "c")), tmp_path / "m.keras")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not the model its sidecar was written for"):
        load_checkpoint(path)
    side = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps({**side, "model_sha256": ""}))  # no hash to check
    with pytest.raises(CheckpointError, match="cannot load m.keras: not a whole .keras file"):
        load_checkpoint(path)  # (Keras itself said "File not found")
    for wrong, why in (({"tta": "banana"}, "tta 'banana' is not"),
                       ({"class_names": ["a", "a", "b"]}, "names a class twice")):
        sidecar_path(path).write_text(json.dumps({**side, **wrong}))
        with pytest.raises(CheckpointError, match=why):  # (it changed predictions silently)
            read_info(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid sidecar"):
        read_info(path)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="no sidecar"):
        read_info(path)
    for missing in (tmp_path / "nothere.keras", tmp_path):  # one message, whatever reads it
        with pytest.raises(CheckpointError, match="checkpoint not found|is a folder, not a"):
            read_info(missing)
        with pytest.raises(CheckpointError, match="checkpoint not found|is a folder, not a"):
            load_checkpoint(missing)


def test_bundled_checkpoint_is_complete_and_loads_safely():
    from training.paths import bundled_checkpoint
    model, info = load_checkpoint(bundled_checkpoint())
    assert len(info.class_names) == 10 and info.input_shape == (32, 32, 3)
    assert info.metrics["test_accuracy"] >= 0.88
    assert info.command and info.data_fingerprint.startswith("sha256:")
    assert zipfile.is_zipfile(bundled_checkpoint())
    assert model.count_params() <= 5_000_000


def test_unknown_custom_objects_and_a_wrong_input_shape_are_refused(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="someone_elses")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(Doubler()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = save_checkpoint(model, CheckpointInfo(class_names=("a", "b")), tmp_path / "custom.keras")
    del keras.saving.get_custom_objects()["someone_elses>Doubler"]  # code the app does not have
    with pytest.raises(CheckpointError, match="cannot load custom.keras"):
        load_checkpoint(path)
    from training.preprocessing import Preprocessing
    other = save_checkpoint(small_model(), CheckpointInfo(class_names=("a", "b", "c"),
                                                          input_shape=(64, 64, 3),
                                                          preprocessing=Preprocessing(size=(64, 64))),
                            tmp_path / "shape.keras")
    with pytest.raises(CheckpointError, match=r"model input \(32, 32, 3\) differs from sidecar"):
        load_checkpoint(other)


def test_a_sidecar_with_a_big_confusion_matrix_stays_small_readable_and_exact():
    """A 300-class evaluation: one matrix row per line (each number on its own line made the
    sidecar 3x bigger, and 64 MB is where a sidecar is refused); strings that look like
    number lists are kept as they are."""
    import json

    from training.checkpoints import CheckpointInfo
    from training.evaluate import summarize
    rng = np.random.default_rng(0)
    names = tuple(f"class {i}" for i in range(300))
    probs = rng.dirichlet(np.ones(300), 3000).astype(np.float32)
    summary = summarize(probs, rng.integers(0, 300, 3000), names, "none")
    info = CheckpointInfo(class_names=names, evaluations={"held out": summary},
                          command="train --note '[\n 1,\n 2\n]' [1, 2]",
                          history={"loss": [0.5, float("nan"), 0.25]})
    text = info.to_json()
    spread = json.dumps(json.loads(text), indent=2, sort_keys=True)
    assert len(text) < len(spread) / 2.5
    assert text.count("\n") < 300 * 12  # a line per matrix row, not per number
    again = CheckpointInfo.from_json(text)
    assert again.evaluations == info.evaluations and again.command == info.command
    assert again.history["loss"][0] == 0.5 and np.isnan(again.history["loss"][1])


def test_a_sidecar_declaring_an_input_larger_than_the_limit_is_refused():
    """Every image is scaled to the input before it is classified: 15000 a side ran a machine
    out of memory, so such a sidecar is refused when it is read."""
    import json

    from training.checkpoints import MAX_INPUT_SIDE

    def sidecar(height, width):
        return json.dumps({"class_names": ["a", "b"], "input_shape": [height, width, 3]})

    assert CheckpointInfo.from_json(sidecar(MAX_INPUT_SIDE, 16)).input_shape == (1024, 16, 3)
    for height, width in ((MAX_INPUT_SIDE + 1, 16), (16, MAX_INPUT_SIDE + 1), (15000, 15000)):
        with pytest.raises(CheckpointError, match="larger than 1024 pixels a side"):
            CheckpointInfo.from_json(sidecar(height, width))
