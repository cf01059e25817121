"""The numpy evaluator answers what the Keras model answers, and refuses what it cannot read.

The app shows its first predictions from ``training.numpy_net`` while TensorFlow is still
importing; a user would notice a different top class, or changed percentages, when Keras takes
over. These tests compare both on checkpoints whose batch-norm statistics and weights are
random (an untrained network's statistics are 0 and 1 and would hide a wrong formula).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training.checkpoints import CheckpointError, CheckpointInfo, save_checkpoint
from training.numpy_net import NumpyNet, Unsupported

ROOT = Path(__file__).resolve().parents[2]


def _randomised(model, seed: int):
    """Batch-norm scales, shifts and moving statistics drawn at random (not 1, 0, 0, 1), and
    logits scaled up so the probabilities differ between images."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            shape = layer.get_weights()[0].shape
            scale = [rng.uniform(0.5, 1.5, shape)] if layer.scale else []
            layer.set_weights(scale + [rng.normal(0, 0.2, shape), rng.normal(0, 0.2, shape),
                                       rng.uniform(0.5, 2.0, shape)])
        elif layer.name == "whiten_conv":  # frozen, set from images in training
            from training.model import whitening_kernel
            layer.set_weights([whitening_kernel(_images(64, seed))])
        elif layer.name == "logits":
            layer.set_weights([w * 8 for w in layer.get_weights()])
    return model


def _images(n: int, seed: int) -> np.ndarray:
    """Images of different colours and brightness with some texture (noise alone looks alike)."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (n, 1, 1, 3))
    texture = rng.normal(0, 25, (n, 32, 32, 3))
    return np.clip(colours + texture, 0, 255).astype(np.uint8)


def _save(model, tmp_path, name, tta="none", classes=("a", "b", "c")):
    path = tmp_path / f"{name}.keras"
    save_checkpoint(model, CheckpointInfo(class_names=tuple(classes), tta=tta), path)
    return path


AIRBENCH = dict(activation="relu", bn_momentum=0.4, bn_scale=False, logit_scale=1 / 9,
                whiten=True, stem=0)


@pytest.mark.parametrize("residual, tta, extra", [(False, "none", {}), (True, "hflip", {}),
                                                  (False, "hflip", AIRBENCH)])
def test_numpy_and_keras_give_the_same_probabilities(tmp_path, residual, tta, extra):
    import keras

    from training.model import build_model
    from training.predict import Classifier

    keras.utils.set_random_seed(0)
    options = {"stem": 4, **extra}
    model = _randomised(build_model(3, widths=(4, 8, 8), residual=residual, **options), seed=1)
    path = _save(model, tmp_path, "net", tta=tta)
    images = _images(16, seed=2)

    keras_probs = Classifier.load(path).classify(images)
    numpy_probs = NumpyNet.load(path).classify(images)

    np.testing.assert_allclose(numpy_probs, keras_probs, atol=2e-5)
    assert (numpy_probs.argmax(1) == keras_probs.argmax(1)).all()
    # Images differ by far more than the tolerance: a wrong layer could not hide in it.
    assert keras_probs.std(axis=0).max() > 50 * 2e-5  # not won by answering every image alike


def test_the_bundled_checkpoint_reads_the_same_with_numpy():
    from training.predict import Classifier
    from training.preprocessing import load_image

    path = ROOT / "models" / "cifar10.keras"
    net = NumpyNet.load(path)
    ship = load_image(ROOT / "resources" / "sample-ship.jpg", net.info.preprocessing).array
    assert net.info.class_names[int(net.classify(ship[None]).argmax())] == "ship"
    images = np.concatenate([_images(7, seed=3), ship[None]])
    assert net.info.class_names == Classifier.load(path).info.class_names
    np.testing.assert_allclose(net.classify(images), Classifier.load(path).classify(images),
                               atol=2e-5)


def test_a_layer_it_does_not_know_is_refused_not_guessed(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, strides=2)(inputs)  # strided: not in our models
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    path = _save(keras.Model(inputs, outputs), tmp_path, "strided")
    with pytest.raises(Unsupported, match="strided"):
        NumpyNet.load(path)

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.LayerNormalization()(keras.layers.Flatten()(inputs))
    path = _save(keras.Model(inputs, keras.layers.Dense(3)(x)), tmp_path, "layernorm")
    with pytest.raises(Unsupported, match="LayerNormalization"):
        NumpyNet.load(path)


def test_a_sidecar_naming_other_classes_than_the_network_has_is_an_error(tmp_path):
    from training.model import build_model

    path = _save(build_model(3, widths=(4, 8, 8), stem=4), tmp_path, "net")
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["class_names"] = ["a", "b", "c", "d"]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="3 outputs"):
        NumpyNet.load(path)


def test_a_damaged_file_is_a_checkpoint_error(tmp_path):
    from training.model import build_model

    path = _save(build_model(3, widths=(4, 8, 8), stem=4), tmp_path, "net")
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json")
    with zipfile.ZipFile(path, "w") as archive:  # the weights are gone
        archive.writestr("config.json", config)
    with pytest.raises(CheckpointError, match="cannot read"):
        NumpyNet.load(path)


def test_an_even_kernel_with_same_padding_pads_as_tensorflow_does(tmp_path):
    import keras
    import numpy as np

    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.numpy_net import NumpyNet
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 2, padding="same")(inputs)  # an imported network might
    x = keras.layers.GlobalMaxPooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = save_checkpoint(model, CheckpointInfo(class_names=("a", "b")), tmp_path / "even.keras")
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    assert np.abs(NumpyNet.load(path)(images) - model.predict_on_batch(images)).max() < 1e-4


def _head(x):
    import keras
    return keras.layers.Dense(3, activation="softmax")(x)


def _int8(keras, i):
    model = keras.Model(i, _head(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(i))))
    import warnings
    with warnings.catch_warnings():  # ("Layer Conv2D does not have a `quantize` method")
        warnings.simplefilter("ignore", UserWarning)
        model.quantize("int8")  # int8 kernel plus float scales: read as plain numbers it was wrong
    return model


def _bfloat16(keras, i):
    x = keras.layers.Conv2D(8, 3, dtype="mixed_bfloat16")(i)
    x = keras.layers.GlobalMaxPooling2D(dtype="mixed_bfloat16")(x)
    return keras.Model(i, keras.layers.Dense(3, activation="softmax", dtype="float32")(x))


def _channels_first(layer):
    def build(keras, i):
        x = keras.layers.Conv2D(32, 3, padding="same")(i)  # (32, 32, 32): every axis fits
        return keras.Model(i, _head(getattr(keras.layers, layer)(data_format="channels_first")(x)))
    return build


def _batch_norm_axis_1(keras, i):
    x = keras.layers.BatchNormalization(axis=1)(keras.layers.Conv2D(32, 3, padding="same")(i))
    return keras.Model(i, _head(keras.layers.GlobalMaxPooling2D()(x)))


@pytest.mark.parametrize("build", [_int8, _bfloat16, _channels_first("GlobalMaxPooling2D"),
                                   _channels_first("GlobalAveragePooling2D"),
                                   _channels_first("Flatten"), _batch_norm_axis_1],
                         ids=["int8", "bfloat16", "gmp-first", "gap-first", "flatten-first",
                              "bn-axis-1"])
def test_a_network_numpy_would_compute_otherwise_is_refused(tmp_path, build):
    """Imported networks numpy read but computed differently from Keras: the first rows of a
    drop (classified before TensorFlow is ready, never again) showed other classes than the
    same files dropped later. Now refused, so the app waits for Keras."""
    import keras

    model = _randomised(build(keras, keras.Input((32, 32, 3))), 1)
    path = _save(model, tmp_path, "imported")
    with pytest.raises(Unsupported):
        NumpyNet.load(path)


def test_layers_given_their_inputs_by_keyword_read_the_right_inputs(tmp_path):
    """``Conv2D(...)(inputs=x)`` and ``Add()(inputs=[a, b])`` are stored as keyword arguments:
    those layers were fed the raw image (top class agreed on 0 of 8 images)."""
    import keras

    i = keras.Input((32, 32, 3))
    x = keras.layers.Normalization(mean=[120.0, 110.0, 100.0], variance=[3000.0] * 3)(i)
    a = keras.layers.Conv2D(6, 3, padding="same")(inputs=x)
    b = keras.layers.Conv2D(6, 1)(x)
    x = keras.layers.GlobalMaxPooling2D()(keras.layers.Add()(inputs=[a, b]))
    model = keras.Model(i, _head(x))
    model.layers[-1].set_weights([w * 8 for w in model.layers[-1].get_weights()])
    images = _images(8, 2)
    expected = model.predict_on_batch(images.astype(np.float32))
    assert np.abs(NumpyNet.load(_save(model, tmp_path, "keywords"))(images) - expected).max() < 1e-4


def test_plain_float32_networks_keep_the_fast_path_however_their_policy_is_written(tmp_path):
    """A uint8 input, and Keras 3.4's name for the float32 policy ("FloatDTypePolicy"), compute
    exactly as numpy does: they must not wait for TensorFlow."""
    import keras

    i = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(i)
    x = keras.layers.GlobalMaxPooling2D()(keras.layers.Conv2D(6, 3, padding="same")(x))
    model = keras.Model(i, _head(x))
    model.layers[-1].set_weights([w * 8 for w in model.layers[-1].get_weights()])
    path = _save(model, tmp_path, "uint8")
    with zipfile.ZipFile(path) as archive:  # written as Keras 3.4 wrote it
        parts = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(parts["config.json"])
    for layer in config["config"]["layers"]:
        if isinstance(layer["config"].get("dtype"), dict):
            layer["config"]["dtype"]["class_name"] = "FloatDTypePolicy"
    parts["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    images = _images(8, 3)
    expected = model.predict_on_batch(images)
    assert np.abs(NumpyNet.load(path)(images) - expected).max() < 1e-4
