"""Importing a .keras file into the library: a checked model and its sidecar are copied, classes
named without one; unsafe, inconsistent or non-classifier models are refused and nothing in the
library changes."""
import json

import pytest

from training.checkpoints import (CheckpointError, CheckpointInfo, load_checkpoint, read_info,
                                  save_checkpoint, sidecar_path)
from training.importing import import_checkpoint

from .test_library import make


def test_import_copies_a_checked_model_and_its_sidecar(tmp_path):
    source = make(tmp_path / "elsewhere", "theirs", classes=("x", "y"))
    imported = import_checkpoint(source, tmp_path / "lib")
    assert imported.name == "theirs.keras" and source.exists()
    assert load_checkpoint(imported)[1].class_names == ("x", "y")
    again = import_checkpoint(source, tmp_path / "lib")
    assert again.name == "theirs (2).keras"


def test_import_without_sidecar_names_classes(tmp_path):
    source = make(tmp_path / "src", "bare", classes=("p", "q", "r"))
    sidecar_path(source).unlink()
    generic = import_checkpoint(source, tmp_path / "lib")
    assert read_info(generic).class_names == ("class 1", "class 2", "class 3")
    named = import_checkpoint(source, tmp_path / "lib", ("cat", "dog", "cow"))
    assert read_info(named).class_names == ("cat", "dog", "cow")
    with pytest.raises(CheckpointError, match="3 outputs but the sidecar names 2"):
        import_checkpoint(source, tmp_path / "lib", ("cat", "dog"))
    before = sorted(p.name for p in (tmp_path / "lib").iterdir())
    with pytest.raises(CheckpointError, match="cat is named twice"):  # (imported, then unreadable)
        import_checkpoint(source, tmp_path / "lib", ("cat", "dog", "cat"))
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == before


def lambda_model():
    import keras
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def not_a_classifier(kind):
    """Small models that load in safe mode but are not one-image-in, probabilities-out."""
    import keras
    image = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    if kind == "two inputs":
        other = keras.Input((32, 32, 3))
        summed = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([image, other]))
        return keras.Model([image, other], keras.layers.Dense(2, activation="softmax")(summed))
    if kind == "two outputs":
        heads = [keras.layers.Dense(2, activation="softmax")(pooled) for _ in range(2)]
        return keras.Model(image, heads)
    if kind == "named output":  # predicts a dict, not the array the app reads
        return keras.Model(image, {"p": keras.layers.Dense(2, activation="softmax")(pooled)})
    if kind == "rank 3":  # (None, 1, 2): sums to 1, then crashed the classifier
        row = keras.layers.Reshape((1, 3))(pooled)
        return keras.Model(image, keras.layers.Dense(2, activation="softmax")(row))
    # two sigmoids: (0.5, 0.5) on a blank image, (1, 1) on a real one
    return keras.Model(image, keras.layers.Dense(2, activation="sigmoid",
                                                 kernel_initializer="ones")(pooled))


@pytest.mark.parametrize("kind, reason", [
    ("two inputs", "it has 2 inputs and 1 output; a classifier has one image input"),
    ("two outputs", "it has 1 input and 2 outputs; a classifier has one image input"),
    ("rank 3", r"output shape \(None, 1, 2\) is not \(batch, classes\) probabilities"),
    ("named output", "its output is a dict, not one array of probabilities"),
    ("sigmoid", "its output is not class probabilities that sum to 1"),
])
def test_import_refuses_a_model_that_is_not_one_image_in_probabilities_out(tmp_path, kind,
                                                                           reason):
    path = tmp_path / "src" / "m.keras"
    path.parent.mkdir()
    not_a_classifier(kind).save(path)
    with pytest.raises(CheckpointError, match=f"^{reason}"):
        import_checkpoint(path, tmp_path / "lib")
    assert list((tmp_path / "lib").iterdir()) == []


def test_import_refuses_a_huge_input_before_running_the_model(tmp_path, monkeypatch):
    """Every image is scaled to the input: 15000 a side took 6 GB to import and ran out of
    memory classifying. The limit is checked before the model is run on anything."""
    import keras

    def saved(height, width):
        image = keras.Input((height, width, 3))
        out = keras.layers.Dense(2, activation="softmax")(
            keras.layers.GlobalAveragePooling2D()(image))
        path = tmp_path / f"{height}x{width}.keras"
        keras.Model(image, out).save(path)
        return path

    tall = import_checkpoint(saved(1024, 16), tmp_path / "lib")  # at the limit: accepted
    assert read_info(tall).input_shape == (1024, 16, 3)

    def never(*args, **kwargs):
        raise AssertionError("the model was run before its input size was checked")

    monkeypatch.setattr(keras.Model, "predict_on_batch", never)
    for path in (saved(16, 1025), saved(1025, 16)):
        with pytest.raises(CheckpointError, match="larger than 1024 a side"):
            import_checkpoint(path, tmp_path / "lib")
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == ["1024x16.json", "1024x16.keras"]


@pytest.mark.parametrize("kind, reason", [
    ("lambda", "Lambda layer"),
    ("corrupt", "cannot import"),
    ("shape", r"not an \(height, width, 3\) image"),
    ("logits", "not class probabilities"),
    ("count", "3 outputs but the sidecar names 2"),
    ("hash", "different model file"),
])
def test_import_refuses_unsafe_or_inconsistent_models_and_touches_nothing(tmp_path, kind, reason):
    import keras
    src = tmp_path / "src"
    src.mkdir()
    lib = tmp_path / "lib"
    existing = make(lib, "existing")
    before = sorted(p.name for p in lib.iterdir())
    if kind == "lambda":
        path = save_checkpoint(lambda_model(), CheckpointInfo(class_names=("a", "b")), src / "m.keras")
    elif kind == "corrupt":
        path = make(src, "m")
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "shape":
        inputs = keras.Input((32, 32, 1))
        out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
        path = src / "m.keras"
        keras.Model(inputs, out).save(path)
    elif kind == "logits":
        inputs = keras.Input((32, 32, 3))
        out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
        path = src / "m.keras"
        keras.Model(inputs, out).save(path)
    elif kind == "count":
        path = make(src, "m")
        side = json.loads(sidecar_path(path).read_text())
        side["class_names"] = ["a", "b"]
        sidecar_path(path).write_text(json.dumps(side))
    else:
        path = make(src, "m")
        other = make(tmp_path / "other", "m")
        sidecar_path(path).write_text(sidecar_path(other).read_text().replace(
            read_info(other).model_sha256, "0" * 64))
    with pytest.raises(CheckpointError, match=reason):
        import_checkpoint(path, lib)
    assert sorted(p.name for p in lib.iterdir()) == before  # no debris, nothing replaced
    load_checkpoint(existing)


def test_import_takes_a_classifier_whose_softmax_is_bfloat16(tmp_path):
    """Trained under mixed bfloat16, a model's softmax rows sum to 1 only within bfloat16's
    precision (1.00098, 0.99902...): still probabilities, imported (it was refused)."""
    import keras

    from training.importing import import_checkpoint
    keras.utils.set_random_seed(0)
    policy = "mixed_bfloat16"
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0, dtype=policy)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", dtype=policy)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=policy)(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", dtype=policy)(x))
    model.save(tmp_path / "bf16.keras")
    (tmp_path / "library").mkdir()
    imported = import_checkpoint(tmp_path / "bf16.keras", tmp_path / "library")
    assert imported.is_file()
