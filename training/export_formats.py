"""The exported graph and its formats: a float32 serving model with the flip TTA inside, the
writers for each format, and each format's own runtime to load an export back (for the parity
check and for users). Heavy imports (TensorFlow, tf2onnx, onnxruntime) happen inside functions.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .checkpoints import atomic_write_bytes
from .reporting import first_line as _first_line

ONNX_OPSET = 17
ONNX_PACKAGES = "pip install tf2onnx==1.17.0 onnxruntime==1.32.0"


class ExportError(Exception):
    """An export that cannot be made; the message is a one-line reason for the user."""


def serving_model(model, tta: str = "none"):
    """A float32 Keras model that computes what the app shows, flip TTA included.

    The network is always wrapped behind a new input named ``image``: the runtimes name the
    exported input after it (SavedModel ``image``, TFLite ``serving_default_image:0``), which is
    what the export's notes document, whatever an imported network calls its own input. With
    ``tta == "hflip"`` the output is the mean of the network's output for the image and its
    mirror image, built from built-in pieces only (``keras.ops.flip`` and ``Average``), so the
    ``.keras`` export still loads with ``safe_mode=True``.
    """
    import keras

    network = _float32_copy(model)
    image = keras.Input(tuple(model.input_shape[1:]), name="image")
    if tta != "hflip":
        return keras.Model(image, network(image), name=f"{model.name}_serving")
    mirrored = keras.ops.flip(image, axis=2)
    probs = keras.layers.Average(name="probabilities")([network(image), network(mirrored)])
    return keras.Model(image, probs, name=f"{model.name}_with_flip_tta")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def compute_dtypes(model) -> set:
    return {layer.dtype_policy.compute_dtype for layer in _all_layers(model)}


def _float32_copy(model):
    """``model`` itself when it computes in float32; else a float32 copy with the same weights."""
    import keras

    if compute_dtypes(model) == {"float32"}:
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
    with quiet_tensorflow():
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

        # the intermediate SavedModel in the system's temp folder: TensorFlow reads its
        # variables by a glob pattern, which a folder such as "Models [final]" breaks
        with tempfile.TemporaryDirectory(prefix="pixelclassifier-tflite-") as staging:
            _saved_model(serving, Path(staging) / "saved_model")
            converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(staging) / "saved_model"))
            if quantise:  # dynamic range: int8 weights, float32 input, output and activations
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            try:
                with quiet_tensorflow():
                    data = converter.convert()
            except Exception as exc:  # the converter raises many types
                raise ExportError(f"TFLite conversion failed: {_first_line(exc)}") from None
        atomic_write_bytes(path, data)
    return write


def _globbed(path: Path) -> bool:
    """Characters TensorFlow's file matching reads as a pattern in ``path``."""
    text = str(Path(path).resolve())
    return any(c in text for c in "[]") or (os.name != "nt" and "\\" in text)


def onnx_modules():
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

    tf2onnx, _ = onnx_modules()
    spec = tf.TensorSpec((None, *input_shape), tf.float32, name="image")
    function = tf.function(lambda image: serving(image, training=False), input_signature=[spec])
    with quiet_tensorflow():
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


WRITERS = {"keras": _write_keras, "savedmodel": _write_savedmodel, "tflite": _tflite_writer(False),
            "tflite-int8": _tflite_writer(True), "onnx": _write_onnx}


@contextmanager
def quiet_tensorflow():
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


# -- loading an export with its own runtime -------------------------------------------------------

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

        from .archive_limits import check_archive_sizes
        check_archive_sizes(path)  # (an export folder is a file like any other by now)
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        return model.predict_on_batch
    if fmt == "savedmodel":
        import tensorflow as tf
        if _globbed(path):  # TensorFlow finds the variables by a glob pattern: "[" breaks it
            with tempfile.TemporaryDirectory(prefix="pixelclassifier-savedmodel-") as copy:
                shutil.copytree(path, Path(copy) / "saved_model")
                loaded = tf.saved_model.load(str(Path(copy) / "saved_model"))
        else:
            loaded = tf.saved_model.load(str(path))
        return lambda x: loaded.serve(x)  # holds ``loaded``: its variables die with it
    if fmt == "onnx":
        _, onnxruntime = onnx_modules()
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
