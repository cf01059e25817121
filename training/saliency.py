"""Why this class: where in a 32x32 input the evidence for a class lies.

Two methods, both returning an (H, W) map in [0, 1] the size of the model input:

- :func:`grad_cam`: gradients of the class score with respect to a convolution block's output,
  averaged per channel and used to weight that block's activations (Selvaraju et al., 2017). One
  forward and one backward pass. The block defaults to the last one at 8x8 or finer resolution:
  at 32x32 input the last block is 4x4, too coarse to point at anything.
- :func:`occlusion`: the drop in the class probability when a grey patch hides each part of the
  image (Zeiler & Fergus, 2014). Model-agnostic, one batch of predictions, slower.

:func:`deletion_auc` scores an explanation: grey out pixels most-salient first and integrate the
class probability; a lower area means the map found the pixels the decision depends on
(Petsiuk et al., 2018). ``benchmarks/saliency.py`` compares the two methods with it.
"""
from __future__ import annotations

import numpy as np

GREY = 127.0  # what hidden pixels are set to (the training data's mean is about 120)


def conv_block_names(model) -> list[tuple[str, int]]:
    """(layer name, spatial size) of every activation that ends a conv block, input to output."""
    out = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if (shape is not None and len(shape) == 4 and layer.__class__.__name__ in
                ("Activation", "Add", "ReLU")):
            out.append((layer.name, int(shape[1])))
    return out


def default_layer(model, finest: int = 8) -> str:
    """The last conv block whose feature map is at least ``finest`` pixels wide."""
    blocks = conv_block_names(model)
    if not blocks:
        raise ValueError("the model has no convolution block to explain")
    wide = [name for name, size in blocks if size >= finest]
    return (wide or [blocks[-1][0]])[-1]


def grad_cam(model, image: np.ndarray, class_index: int, layer: str | None = None,
             tta: str = "none") -> np.ndarray:
    """Grad-CAM map (H, W) in [0, 1] for ``class_index`` of one uint8 image (H, W, 3).

    With flip TTA the map of the mirrored image is mirrored back and averaged, as the
    prediction itself is.
    """
    batch = np.asarray(image, np.float32)[None]
    if tta == "hflip":
        batch = np.concatenate([batch, batch[:, :, ::-1]])
    cams = _cam_function(model, layer or default_layer(model))(batch, np.int32(class_index))
    cams = np.asarray(cams)
    if tta == "hflip":
        cams = np.stack([cams[0], cams[1][:, ::-1]])
    return _normalise(_upsample(cams.mean(0), image.shape[:2]))


_CAM_FUNCTIONS: dict = {}  # (id(model), layer) -> compiled function; a model is explained often


def _cam_function(model, layer: str):
    """A traced TensorFlow function: images, class -> class activation maps (N, h, w)."""
    key = (id(model), layer)
    if key in _CAM_FUNCTIONS and _CAM_FUNCTIONS[key][0] is model:
        return _CAM_FUNCTIONS[key][1]
    import keras
    import tensorflow as tf

    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])

    @tf.function(reduce_retracing=True)
    def cams(images, class_index):
        with tf.GradientTape() as tape:
            features, probs = probe(images, training=False)
            score = tf.reduce_sum(tf.math.log(probs[:, class_index] + 1e-9))
        grads = tf.cast(tape.gradient(score, features), tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))

    _CAM_FUNCTIONS.clear()  # one model at a time: the app's active checkpoint
    _CAM_FUNCTIONS[key] = (model, cams)
    return cams


def occlusion(predict, image: np.ndarray, class_index: int, patch: int = 8,
              stride: int = 4) -> np.ndarray:
    """Occlusion map (H, W) in [0, 1]: how much hiding each region lowers the class probability.

    ``predict`` maps images (N, H, W, 3) to probabilities (N, classes), test-time augmentation
    included (``Classifier.classify``): any engine will do, numpy's first-prediction one too.
    """
    h, w = image.shape[:2]
    base = np.asarray(image, np.float32)
    spots = [(y, x) for y in range(0, h - patch + 1, stride) for x in range(0, w - patch + 1, stride)]
    batch = np.repeat(base[None], len(spots) + 1, axis=0)
    for i, (y, x) in enumerate(spots, start=1):
        batch[i, y:y + patch, x:x + patch] = GREY
    probs = np.asarray(predict(batch))[:, class_index]
    drop = np.clip(probs[0] - probs[1:], 0, None)
    heat, count = np.zeros((h, w)), np.zeros((h, w))
    for d, (y, x) in zip(drop, spots):
        heat[y:y + patch, x:x + patch] += d
        count[y:y + patch, x:x + patch] += 1
    return _normalise(heat / np.maximum(count, 1))


def deletion_auc(predict, image: np.ndarray, class_index: int, saliency: np.ndarray,
                 block: int = 4, steps: int = 16, order=None) -> float:
    """Mean class probability while ``block`` x ``block`` squares are greyed out, most salient
    first (lower: the map found what the decision rests on). Squares, not single pixels:
    scattered grey pixels are noise a CNN reacts to wherever they are. ``order`` overrides the
    squares' order (a random one is the baseline)."""
    h, w = saliency.shape
    rows, cols = h // block, w // block
    scores = saliency[:rows * block, :cols * block].reshape(rows, block, cols, block).mean((1, 3))
    order = np.argsort(-scores.ravel(), kind="stable") if order is None else np.asarray(order)
    batch = np.repeat(np.asarray(image, np.float32)[None], steps + 1, axis=0)
    for step in range(1, steps + 1):
        for cell in order[: round(step * rows * cols / steps)]:
            y, x = divmod(int(cell), cols)
            batch[step, y * block:(y + 1) * block, x * block:(x + 1) * block] = GREY
    return float(np.asarray(predict(batch))[:, class_index].mean())


def _upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image
    image = Image.fromarray(cam.astype(np.float32), mode="F")
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR), np.float32)


def _normalise(heat: np.ndarray) -> np.ndarray:
    heat = np.asarray(heat, np.float32)
    top = float(heat.max())
    return heat / top if top > 0 else np.zeros_like(heat)


def overlay(image: np.ndarray, saliency: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The image with the map drawn over it in a warm colour scale, as uint8 (H, W, 3).

    ``saliency`` is resized to the image (the original can be larger than the model input).
    """
    h, w = image.shape[:2]
    if saliency.shape != (h, w):
        saliency = _normalise(_upsample(saliency, (h, w)))
    s = saliency[..., None]
    heat = np.concatenate([np.clip(3 * s, 0, 1), np.clip(3 * s - 1, 0, 1),
                           np.clip(3 * s - 2, 0, 1)], axis=-1) * 255  # black-red-yellow-white
    alpha = opacity * np.clip(s * 1.5, 0, 1)
    return (image * (1 - alpha) + heat * alpha).round().clip(0, 255).astype(np.uint8)


def to_original(saliency: np.ndarray, size: tuple[int, int], policy) -> np.ndarray:
    """The model-input map placed over the original picture of ``size`` (width, height).

    The resize policy decides where the model's pixels came from: ``crop`` saw the centred crop
    (outside it the map is 0), ``pad`` saw the whole picture inside a border (the border is
    dropped), ``squash`` saw the whole picture stretched.
    """
    width, height = size
    th, tw = saliency.shape
    out = np.zeros((height, width), np.float32)
    if policy.resize == "crop":
        from .conversions import crop_box
        x0, y0, cw, ch = crop_box(width, height, (tw, th))
        out[y0:y0 + ch, x0:x0 + cw] = _upsample(saliency, (ch, cw))
        return out
    if policy.resize == "pad":
        from .conversions import pad_box
        x0, y0, cw, ch = pad_box(width, height, (tw, th))  # where the picture lies in the input
        saliency = saliency[y0:y0 + ch, x0:x0 + cw]
    return _upsample(saliency, (height, width))
