"""A checkpoint's network evaluated with numpy alone: predictions before TensorFlow has loaded.

Importing TensorFlow takes about 1.7 s of a 2-core machine's launch; this module reads the same
``.keras`` file (its ``config.json`` and ``model.weights.h5``: plain JSON and arrays, no code is
ever run from the file) and computes the forward pass in float32 numpy in about 0.1 s, so the
app can show its first prediction while TensorFlow is still loading. Once TensorFlow is ready the
app switches to the Keras model; ``tests/training/test_numpy_net.py`` checks both agree.

Only the layers this project's ``training.model`` builds are understood (input, normalization,
2-D convolution, batch norm, activation, max-pooling, add, global pooling, dense, flatten,
dropout, rescaling), channels last, computing in float32. Anything else (another layer, channels
first, mixed bfloat16 or int8-quantised layers, weights other than the usual ones) raises
``Unsupported`` and the caller simply waits for TensorFlow: rows classified before TensorFlow is
ready are not classified again, so numpy must answer exactly what Keras would.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .archive_limits import WEIGHTS_ENTRY, check_archive_entries, check_weights
from .checkpoints import CheckpointError, CheckpointInfo, read_info


class Unsupported(Exception):
    """The checkpoint holds something this evaluator does not implement."""


def _snake(name: str) -> str:
    """Keras's ``naming.to_snake_case`` for layer class names (weights are stored under it)."""
    import re

    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def _erf(x: np.ndarray) -> np.ndarray:
    """erf with an absolute error below 1.5e-7 (Abramowitz & Stegun 7.1.26); numpy has none."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _activation(name: str):
    functions = {
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, 0),
        "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0, dtype=np.float32))),
        "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
        "softmax": _softmax,
    }
    if name not in functions:
        raise Unsupported(f"activation {name!r}")
    return functions[name]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _conv2d(x: np.ndarray, kernel: np.ndarray, padding: str) -> np.ndarray:
    """Stride-1 2-D convolution, channels last, as one matrix product over image patches."""
    kh, kw, cin, cout = kernel.shape
    if padding == "same":
        ph, pw = (kh - 1) // 2, (kw - 1) // 2  # as TensorFlow: an even kernel's extra row after
        x = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
    n, h, w, _ = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    patches = np.concatenate([x[:, i:i + oh, j:j + ow, :] for i in range(kh) for j in range(kw)],
                             axis=-1)  # (n, oh, ow, kh*kw*cin), in the kernel's (i, j, c) order
    out = patches.reshape(-1, kh * kw * cin) @ kernel.reshape(kh * kw * cin, cout)
    return out.reshape(n, oh, ow, cout)


def _max_pool(x: np.ndarray, size: int) -> np.ndarray:
    n, h, w, c = x.shape
    h, w = h // size * size, w // size * size
    return x[:, :h, :w].reshape(n, h // size, size, w // size, size, c).max(axis=(2, 4))


_WEIGHTS = {"Conv2D": lambda conf: 1 + bool(conf["use_bias"]),
            "Dense": lambda conf: 1 + bool(conf["use_bias"]),
            "BatchNormalization": lambda conf: 2 + bool(conf["scale"]) + bool(conf["center"])}


def _check_layout(kind: str, conf: dict, arrays: list) -> None:
    """Refuse what the numpy layers below would compute differently from Keras: compute in
    another precision than float32 (mixed bfloat16, int8-quantised weights), channels first,
    normalisation along another axis than the channels, weights other than the usual ones."""
    policy = conf.get("dtype")
    if isinstance(policy, dict):  # (Keras 3.4 called the plain float policies FloatDTypePolicy)
        policy = policy.get("config", {}).get("name") \
            if policy.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") \
            else policy.get("class_name")
    if policy not in (None, "float32") and kind != "InputLayer":  # (pixels 0-255 are exact in
        raise Unsupported(f"a layer computing as {policy}")    # any input dtype, uint8 too)
    if conf.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"data format {conf['data_format']}")
    if kind in ("BatchNormalization", "Normalization"):
        axis = conf.get("axis", -1)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if axes not in ([-1], [3]) and not (kind == "Normalization" and axes in ([], [None])):
            raise Unsupported(f"{kind} along axis {axis}")
    if kind in _WEIGHTS and len(arrays) != _WEIGHTS[kind](conf):
        raise Unsupported(f"{kind} with {len(arrays)} weight arrays")


class NumpyNet:
    """The layers of a Keras functional model as numpy functions, run in config order."""

    def __init__(self, steps, output: str, info: CheckpointInfo) -> None:
        self.steps, self.output, self.info = steps, output, info

    @classmethod
    def load(cls, path: str | Path) -> "NumpyNet":
        """Read a ``.keras`` checkpoint and its sidecar; ``Unsupported`` or ``CheckpointError``
        when it cannot be evaluated here.

        The sizes the zip declares are checked before anything is unpacked, and the weights
        file's links and arrays before any array is read (``archive_limits.check_weights``: an
        array stored in a file outside the checkpoint was read, and one naming a pipe blocked
        every later load); the Keras load refuses the same file with the same reason."""
        import h5py

        path = Path(path)
        info = read_info(path)
        try:
            with zipfile.ZipFile(path) as archive:
                check_archive_entries(archive)
                config = json.loads(archive.read("config.json"))
                weights = h5py.File(io.BytesIO(archive.read(WEIGHTS_ENTRY)), "r")
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"cannot read {path.name}: {exc}") from None
        with weights:
            check_weights(weights)
            net = cls._build(config, weights, info)
        return net

    @classmethod
    def _build(cls, config: dict, weights, info: CheckpointInfo) -> "NumpyNet":
        if config.get("class_name") != "Functional":
            raise Unsupported(f"model class {config.get('class_name')!r}")
        body = config["config"]
        used: dict[str, int] = {}
        steps = []
        for layer in body["layers"]:
            kind, conf = layer["class_name"], layer["config"]
            stored = _snake(kind)  # the layer's folder in model.weights.h5 (Keras's naming)
            used[stored] = used.get(stored, -1) + 1
            if used[stored]:
                stored = f"{stored}_{used[stored]}"
            group = weights.get(f"layers/{stored}/vars")
            arrays = [np.asarray(group[str(i)], np.float32) for i in range(len(group))] if group else []
            _check_layout(kind, conf, arrays)
            inputs = cls._inputs(layer)
            if not inputs and kind != "InputLayer":  # (it would be given the raw image)
                raise Unsupported(f"layer {layer['name']}'s inputs are not read here")
            steps.append((layer["name"], inputs, cls._layer(kind, conf, arrays)))
        outputs, inputs = body["output_layers"], body["input_layers"]
        # One input and one output are stored as [name, 0, 0]; several as a list of those.
        if not (isinstance(outputs[0], str) and isinstance(inputs[0], str)):
            raise Unsupported("a model with several inputs or outputs")
        net = cls(steps, outputs[0], info)
        classes = net(np.zeros((1, *info.input_shape), np.uint8)).shape[-1]
        if classes != len(info.class_names):
            raise CheckpointError(f"model has {classes} outputs but the sidecar names "
                                  f"{len(info.class_names)} classes")
        return net

    @staticmethod
    def _inputs(layer: dict) -> list[str]:
        nodes = layer.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise Unsupported(f"layer {layer['name']} is called more than once")
        names = []

        def walk(value):
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                names.append(value["config"]["keras_history"][0])
            elif isinstance(value, (list, tuple)):
                for v in value:
                    walk(v)
        for node in nodes:  # a layer called as layer(inputs=x) has them among its keyword arguments
            walk(node.get("args", []))
            walk(list(node.get("kwargs", {}).values()))
        return names

    @staticmethod
    def _layer(kind: str, conf: dict, w: list[np.ndarray]):
        """One layer as a function of its input arrays."""
        if kind in ("InputLayer", "Dropout", "SpatialDropout2D", "RandomFlip", "RandomTranslation"):
            return lambda x: x  # inference: identity
        if kind == "Normalization":
            if conf.get("invert") or conf.get("mean") is None:
                raise Unsupported("Normalization without fixed mean and variance")
            mean = np.asarray(conf["mean"], np.float32)
            std = np.maximum(np.sqrt(np.asarray(conf["variance"], np.float32)), 1e-7)
            return lambda x: (x - mean) / std
        if kind == "Rescaling":
            scale, offset = np.float32(conf["scale"]), np.float32(conf["offset"])
            return lambda x: x * scale + offset
        if kind == "Conv2D":
            if (tuple(conf["strides"]) != (1, 1) or tuple(conf["dilation_rate"]) != (1, 1)
                    or conf.get("groups", 1) != 1 or conf["data_format"] != "channels_last"):
                raise Unsupported("a strided, dilated or grouped convolution")
            kernel, bias = w[0], (w[1] if conf["use_bias"] else None)
            act, padding = _activation(conf["activation"]), conf["padding"]
            return lambda x: act(_conv2d(x, kernel, padding) + (0 if bias is None else bias))
        if kind == "BatchNormalization":
            gamma = w.pop(0) if conf["scale"] else 1.0
            beta = w.pop(0) if conf["center"] else 0.0
            mean, var = w
            scale = gamma / np.sqrt(var + np.float32(conf["epsilon"]))
            shift = beta - mean * scale
            return lambda x: x * scale + shift
        if kind == "Activation":
            return _activation(conf["activation"])
        if kind == "MaxPooling2D":
            size = conf["pool_size"]
            if (tuple(conf["strides"] or size) != tuple(size) or conf["padding"] != "valid"
                    or size[0] != size[1]):
                raise Unsupported("max-pooling other than non-overlapping square windows")
            return lambda x: _max_pool(x, size[0])
        if kind == "Add":
            return lambda *xs: sum(xs[1:], xs[0])
        if kind in ("GlobalMaxPooling2D", "GlobalAveragePooling2D"):
            if conf.get("keepdims"):
                raise Unsupported("global pooling with keepdims")
            return (lambda x: x.max(axis=(1, 2))) if "Max" in kind else (lambda x: x.mean(axis=(1, 2)))
        if kind == "Flatten":
            return lambda x: x.reshape(len(x), -1)
        if kind == "Dense":
            kernel, bias = w[0], (w[1] if conf["use_bias"] else None)
            act = _activation(conf["activation"])
            return lambda x: act(x @ kernel + (0 if bias is None else bias))
        raise Unsupported(f"layer type {kind}")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for uint8 or float images (N, H, W, 3) on the 0-255 scale."""
        values: dict[str, np.ndarray] = {}
        for name, inputs, fn in self.steps:
            args = [values[i] for i in inputs] or [np.asarray(images, np.float32)]
            values[name] = fn(*args).astype(np.float32, copy=False)
        return values[self.output]

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Like ``training.predict.Classifier.classify``: the sidecar's test-time augmentation."""
        images = np.asarray(images, np.float32)
        probs = self(images)
        if self.info.tta == "hflip":
            probs = 0.5 * (probs + self(np.ascontiguousarray(images[:, :, ::-1, :])))
        return probs
