"""Export a checkpoint for use outside the app, and check that the export predicts like the app.

Formats (:data:`FORMATS`): ``keras`` (``model.keras``), ``savedmodel`` (``saved_model/``),
``tflite`` (float32, ``model.tflite``), ``tflite-int8`` (dynamic-range int8 weights,
``model_int8.tflite``) and ``onnx`` (``model.onnx``, needs the optional packages tf2onnx and
onnxruntime). Every export is a folder holding the artefact, ``labels.txt``, ``preprocessing.json``,
``parity.json`` and a ``README.md`` with a Pillow snippet that reproduces the app's preprocessing.

The exported graph takes float32 RGB 0-255 images (N, H, W, 3) and returns the probabilities the
app shows: the checkpoint's flip test-time augmentation is inside it, and it always computes in
float32 (TFLite and ONNX runtimes have no bfloat16 kernels).

Parity: after writing, the artefact is loaded with its own runtime, classifies a sample of at
least :data:`MIN_PARITY_IMAGES` images and is compared with the app's path
(:func:`training.predict.probabilities`). The export passes when top-1 agreement is 100 %; for
``tflite-int8`` and for checkpoints that compute in a mixed precision (the export computes in
float32) at least 99 % is required, since there the arithmetic legitimately differs. A failed
export stays on disk but is flagged in ``parity.json``, the README and :class:`ExportResult`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoints import atomic_write_bytes, now_iso
from .export_notes import write_description, write_notes
from .preprocessing import Preprocessing
from .reporting import Reporter, SilentReporter

FORMATS = ("keras", "savedmodel", "tflite", "tflite-int8", "onnx")
ARTEFACTS = {"keras": "model.keras", "savedmodel": "saved_model", "tflite": "model.tflite",
             "tflite-int8": "model_int8.tflite", "onnx": "model.onnx"}
MIN_PARITY_IMAGES = 200
STRICT_AGREEMENT = 1.0    # float exports: every top-1 answer must match the app's
LENIENT_AGREEMENT = 0.99  # int8 weights, or a mixed-precision checkpoint exported in float32
ONNX_OPSET = 17
ONNX_PACKAGES = "pip install tf2onnx==1.17.0 onnxruntime==1.32.0"
SYNTHETIC_SEED = 20240
SYNTHETIC = "synthetic images"  # the parity sample's source when no labelled data is given


class ExportError(Exception):
    """An export that cannot be made; the message is a one-line reason for the user."""


@dataclass(frozen=True)
class ParitySample:
    """uint8 images (N, H, W, 3) for the parity check and where they came from, in words."""

    images: np.ndarray
    source: str


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how it compares with the app.

    Attributes:
        format: one of :data:`FORMATS`.
        folder: the export folder.
        artefact: the model file (or SavedModel folder) inside it.
        parity: ``images``, ``top1_agreement`` (0-1), ``max_abs_diff`` (largest absolute
            probability difference), ``min_agreement``, ``ok`` and ``sample`` (its source).
        ok: False when the export disagrees with the app: it is on disk but must not be shipped.
    """

    format: str
    folder: Path
    artefact: Path
    parity: dict = field(default_factory=dict)
    ok: bool = False

    def summary(self) -> str:
        """One line: what was written and the parity figures."""
        p = self.parity
        verdict = "OK" if self.ok else \
            f"PARITY FAILED (needs {p['min_agreement']:.0%} top-1 agreement; do not ship it)"
        if not self.ok and p["sample"] == SYNTHETIC:
            verdict += ("; synthetic images are ambiguous to a trained model, so check again "
                        "on labelled images")
        return (f"exported {self.format} to {self.folder}: parity on {p['images']} images "
                f"({p['sample']}): top-1 agreement {p['top1_agreement'] * 100:.2f} %, "
                f"largest probability difference {p['max_abs_diff']:.1e} - {verdict}")


def export_checkpoint(checkpoint_path, fmt: str, out_dir, sample=None,
                      reporter: Reporter | None = None) -> ExportResult:
    """Export the checkpoint at ``checkpoint_path`` as ``fmt`` into the folder ``out_dir``.

    Args:
        sample: a :class:`ParitySample`, a uint8 array (N >= 200, H, W, 3), or None for
            :func:`parity_sample`'s seeded synthetic images.
        reporter: progress and cancellation (checked between steps).
    Raises:
        ExportError: unknown format, missing ONNX packages, a folder holding something else,
            a conversion or runtime failure (the checkpoint's own errors are CheckpointError).
        InterruptedError: when the reporter says the job was cancelled.
    """
    from .checkpoints import load_checkpoint
    from .checkpoints import file_sha256

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    reporter = reporter or SilentReporter()
    out_dir = Path(out_dir)
    if fmt == "onnx":
        _onnx_modules()  # fail before any work when the packages are missing
    step = _Steps(reporter)
    step(0.0, "loading the checkpoint")
    model, info = load_checkpoint(checkpoint_path)
    digest = file_sha256(Path(checkpoint_path))
    _check_folder(out_dir, digest)
    if sample is None:
        sample = parity_sample(None, 256, info.preprocessing)
    elif not isinstance(sample, ParitySample):
        sample = ParitySample(np.asarray(sample), "given images")
    if sample.images.ndim != 4 or sample.images.shape[1:] != tuple(info.input_shape) \
            or len(sample.images) < MIN_PARITY_IMAGES:
        raise ExportError(f"the parity sample must hold at least {MIN_PARITY_IMAGES} images of "
                          f"shape {tuple(info.input_shape)}, got {sample.images.shape}")
    step(0.1, f"converting to {fmt}")
    mixed = _compute_dtypes(model) != {"float32"}
    serving = serving_model(model, info.tta)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_description(out_dir, info, digest, mixed)  # first: it marks the folder as ours
    artefact = out_dir / ARTEFACTS[fmt]
    _WRITERS[fmt](serving, artefact, info.input_shape)
    lenient = fmt == "tflite-int8" or mixed
    try:
        step(0.6, "checking parity with the app")
        with _quiet_tensorflow():  # a fresh model's predict traces again: TensorFlow warns
            figures = parity(load_exported(fmt, artefact), model, info, sample.images,
                             LENIENT_AGREEMENT if lenient else STRICT_AGREEMENT)
    except BaseException:  # cancelled, or it does not run: no unchecked model stays behind
        _remove(artefact)
        write_notes(out_dir, fmt, None, info, ARTEFACTS)
        raise
    figures.update(sample=sample.source, artefact=artefact.name, checked=now_iso())
    write_notes(out_dir, fmt, figures, info, ARTEFACTS)
    reporter.progress(1.0, "export done" if figures["ok"] else "export DISAGREES with the app")
    return ExportResult(fmt, out_dir, artefact, figures, bool(figures["ok"]))


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class _Steps:
    """Report a step and stop there when the job was cancelled."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def __call__(self, fraction: float, message: str) -> None:
        if self.reporter.cancelled():
            raise InterruptedError("export cancelled")
        self.reporter.progress(fraction, message)


def _check_folder(out_dir: Path, digest: str) -> None:
    """Refuse a folder that holds anything but an earlier export of this same checkpoint."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    try:
        recorded = json.loads((out_dir / "preprocessing.json").read_text())["checkpoint_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError(f"{out_dir} is not empty and holds no export: "
                          "choose a new folder") from None
    if recorded != digest:
        raise ExportError(f"{out_dir} holds an export of another checkpoint: choose a new folder")


# -- the graph that is exported -------------------------------------------------------------------

def serving_model(model, tta: str = "none"):
    """A float32 Keras model that computes what the app shows, flip TTA included.

    With ``tta == "hflip"`` the output is the mean of the network's output for the image and its
    mirror image, built from built-in pieces only (``keras.ops.flip`` and ``Average``), so the
    ``.keras`` export still loads with ``safe_mode=True``.
    """
    import keras

    network = _float32_copy(model)
    if tta != "hflip":
        return network
    image = keras.Input(tuple(model.input_shape[1:]), name="image")
    mirrored = keras.ops.flip(image, axis=2)
    probs = keras.layers.Average(name="probabilities")([network(image), network(mirrored)])
    return keras.Model(image, probs, name=f"{model.name}_with_flip_tta")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _compute_dtypes(model) -> set:
    return {layer.dtype_policy.compute_dtype for layer in _all_layers(model)}


def _float32_copy(model):
    """``model`` itself when it computes in float32; else a float32 copy with the same weights."""
    import keras

    if _compute_dtypes(model) == {"float32"}:
        return model

    def to_float32(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {k: "float32" if k == "dtype" and str(v).startswith("mixed_") else to_float32(v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [to_float32(v) for v in node]
        return node

    config = to_float32(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    copy.set_weights(model.get_weights())
    return copy


def _write_keras(serving, path: Path, input_shape) -> None:
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".staging-") as staging:
        tmp = Path(staging) / path.name
        serving.save(tmp)
        atomic_write_bytes(path, tmp.read_bytes())


def _saved_model(serving, folder: Path) -> None:
    with _quiet_tensorflow():
        serving.export(str(folder), format="tf_saved_model", verbose=False)


def _write_savedmodel(serving, path: Path, input_shape) -> None:
    """Export into a hidden sibling folder, then swap it into place."""
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".staging-"))
    try:
        _saved_model(serving, staging / "saved_model")
        old = staging / "previous"
        if path.exists():
            os.replace(path, old)
        os.replace(staging / "saved_model", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tflite_writer(quantise: bool):
    def write(serving, path: Path, input_shape) -> None:
        import tensorflow as tf

        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".staging-") as staging:
            _saved_model(serving, Path(staging) / "saved_model")
            converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(staging) / "saved_model"))
            if quantise:  # dynamic range: int8 weights, float32 input, output and activations
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            try:
                with _quiet_tensorflow():
                    data = converter.convert()
            except Exception as exc:  # the converter raises many types
                raise ExportError(f"TFLite conversion failed: {_first_line(exc)}") from None
        atomic_write_bytes(path, data)
    return write


def _onnx_modules():
    try:
        import onnxruntime
        import tf2onnx
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the optional packages tf2onnx and onnxruntime "
                          f"({exc.name} is missing): {ONNX_PACKAGES}") from None
    return tf2onnx, onnxruntime


def _write_onnx(serving, path: Path, input_shape) -> None:
    """Freeze the serving function and convert it with tf2onnx.

    Freezing first matters: tf2onnx 1.17 turns constants captured by the traced function (the
    normalisation's mean and variance) into extra graph inputs. TensorFlow writes the exact GELU
    with ``Erfc``, which tf2onnx cannot convert; it becomes ONNX ``1 - Erf``.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    tf2onnx, _ = _onnx_modules()
    spec = tf.TensorSpec((None, *input_shape), tf.float32, name="image")
    function = tf.function(lambda image: serving(image, training=False), input_signature=[spec])
    with _quiet_tensorflow():
        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
        source, result = frozen.inputs[0].name, frozen.outputs[0].name
        try:
            proto, _ = tf2onnx.convert.from_graph_def(
                frozen.graph.as_graph_def(), name="classifier", input_names=[source],
                output_names=[result], opset=ONNX_OPSET,
                custom_op_handlers={"Erfc": (_erfc_as_one_minus_erf, [])},
                tensors_to_rename={source: "image", result: "probabilities"})
        except Exception as exc:  # tf2onnx raises many types
            raise ExportError(f"ONNX conversion failed: {_first_line(exc)}") from None
    atomic_write_bytes(path, proto.SerializeToString())


def _erfc_as_one_minus_erf(ctx, node, name, args):
    from tf2onnx import utils

    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, np.float32))
    sub = ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(f"{name}_erfc"),
                                        inputs=[one.output[0], node.output[0]])
    ctx.copy_dtype(node.output[0], sub.output[0])
    ctx.copy_shape(node.output[0], sub.output[0])


_WRITERS = {"keras": _write_keras, "savedmodel": _write_savedmodel, "tflite": _tflite_writer(False),
            "tflite-int8": _tflite_writer(True), "onnx": _write_onnx}


@contextmanager
def _quiet_tensorflow():
    """TensorFlow and tf2onnx log deprecation notes about their own internals; not ours to fix."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# -- loading an export with its own runtime, and the parity check ---------------------------------

def load_exported(fmt: str, path):
    """A function uint8 or float32 images (N, H, W, 3) -> probabilities (N, classes), computed by
    the exported artefact's own runtime (Keras, TensorFlow, TFLite interpreter, onnxruntime)."""
    path = Path(path)
    try:
        run = _runtime(fmt, path)
    except ExportError:
        raise
    except Exception as exc:  # each runtime has its own errors for a broken artefact
        raise ExportError(f"the exported {fmt} model does not load: {_first_line(exc)}") from None

    def predict(images, batch_size: int = 256) -> np.ndarray:
        x = np.asarray(images, np.float32)
        return np.concatenate([np.asarray(run(x[i:i + batch_size]), np.float32)
                               for i in range(0, len(x), batch_size)])
    return predict


def _runtime(fmt: str, path: Path):
    if fmt == "keras":
        import keras
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        return model.predict_on_batch
    if fmt == "savedmodel":
        import tensorflow as tf
        loaded = tf.saved_model.load(str(path))
        return lambda x: loaded.serve(x)  # holds ``loaded``: its variables die with it
    if fmt == "onnx":
        _, onnxruntime = _onnx_modules()
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"image": x})[0]
    import tensorflow as tf
    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]["index"]
    result = interpreter.get_output_details()[0]["index"]

    def run(x):
        interpreter.resize_tensor_input(source, x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return interpreter.get_tensor(result).copy()
    return run


def parity(exported_predict, model, info, images, min_agreement: float = STRICT_AGREEMENT) -> dict:
    """Compare an export's probabilities with the app's on uint8 ``images``.

    Returns:
        ``images``, ``top1_agreement`` (fraction of images whose most probable class is the
        app's), ``max_abs_diff`` (largest absolute probability difference), ``min_agreement`` and
        ``ok`` (agreement >= ``min_agreement``).
    """
    from .predict import probabilities

    images = np.asarray(images)
    expected = probabilities(model, images, info.tta)
    got = np.asarray(exported_predict(images), np.float32)
    if got.shape != expected.shape:
        raise ExportError(f"the export gives outputs of shape {got.shape}, "
                          f"the app {expected.shape}")
    agreement = float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1)))
    diff = float(np.max(np.abs(got - expected)))
    return {"images": len(images), "top1_agreement": agreement, "max_abs_diff": diff,
            "min_agreement": min_agreement, "ok": bool(agreement >= min_agreement)}


def parity_sample(data_path=None, n: int = 256, policy: Preprocessing = Preprocessing(),
                  class_names=None, reporter: Reporter | None = None) -> ParitySample:
    """``n`` images for the parity check: from labelled data, or seeded synthetic images.

    With ``data_path`` (CIFAR-10 archive or batches: the test part; class folders: all of it) the
    images are taken evenly through the set sorted by class, so every class is represented in
    proportion, and the same images every time. Without it: ``n`` smooth random colour patterns
    with noise from a fixed seed. ``class_names`` (the checkpoint's) only annotates the source
    when the data's classes differ; the parity check compares outputs and needs no labels.
    """
    from PIL import Image

    if data_path is None:
        rng = np.random.default_rng(SYNTHETIC_SEED)
        width, height = policy.size
        coarse = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
        smooth = np.stack([np.asarray(Image.fromarray(c).resize((width, height),
                                                                 Image.Resampling.BICUBIC))
                           for c in coarse]).astype(np.float32)
        noisy = smooth + rng.normal(0.0, 12.0, smooth.shape)
        return ParitySample(np.clip(np.round(noisy), 0, 255).astype(np.uint8), SYNTHETIC)
    from .data import DataError, is_cifar10_batches, load_labelled
    from .paths import user_cache_dir

    try:
        data = load_labelled(data_path, "test", policy, reporter, cache_dir=user_cache_dir())
    except DataError as exc:
        raise ExportError(f"parity sample: {exc}") from None
    if len(data) < MIN_PARITY_IMAGES:
        raise ExportError(f"{Path(data_path).name} has {len(data)} usable images; the parity "
                          f"check needs at least {MIN_PARITY_IMAGES}")
    order = np.argsort(data.labels, kind="stable")
    pick = order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]
    path = Path(data_path)
    source = path.name + (", test part" if path.is_file() or is_cifar10_batches(path) else "")
    if class_names is not None and tuple(class_names) != tuple(data.class_names):
        source += "; its classes differ from the checkpoint's"
    return ParitySample(data.images[pick], source)
