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


def _class_probability(model, images: np.ndarray, class_index: int, tta: str) -> np.ndarray:
    from .predict import probabilities
    return probabilities(model, images, tta)[:, class_index]


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
    import tensorflow as tf
    import keras

    layer = layer or default_layer(model)
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    batch = np.asarray(image, np.float32)[None]
    if tta == "hflip":
        batch = np.concatenate([batch, batch[:, :, ::-1]])
    x = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        features, probs = probe(x, training=False)
        score = tf.reduce_sum(tf.math.log(probs[:, class_index] + 1e-9))
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1)).numpy()
    if tta == "hflip":
        cams = np.stack([cams[0], cams[1][:, ::-1]])
    return _normalise(_upsample(cams.mean(0), image.shape[:2]))


def occlusion(model, image: np.ndarray, class_index: int, patch: int = 8, stride: int = 4,
              tta: str = "none") -> np.ndarray:
    """Occlusion map (H, W) in [0, 1]: how much hiding each region lowers the class probability."""
    h, w = image.shape[:2]
    base = np.asarray(image, np.float32)
    spots = [(y, x) for y in range(0, h - patch + 1, stride) for x in range(0, w - patch + 1, stride)]
    batch = np.repeat(base[None], len(spots) + 1, axis=0)
    for i, (y, x) in enumerate(spots, start=1):
        batch[i, y:y + patch, x:x + patch] = GREY
    probs = _class_probability(model, batch, class_index, tta)
    drop = np.clip(probs[0] - probs[1:], 0, None)
    heat, count = np.zeros((h, w)), np.zeros((h, w))
    for d, (y, x) in zip(drop, spots):
        heat[y:y + patch, x:x + patch] += d
        count[y:y + patch, x:x + patch] += 1
    return _normalise(heat / np.maximum(count, 1))


def deletion_auc(model, image: np.ndarray, class_index: int, saliency: np.ndarray,
                 steps: int = 16, tta: str = "none") -> float:
    """Mean class probability while pixels are greyed out most-salient first (lower: better)."""
    h, w = saliency.shape
    order = np.argsort(-saliency.ravel(), kind="stable")
    batch = np.repeat(np.asarray(image, np.float32)[None], steps + 1, axis=0)
    for step in range(1, steps + 1):
        hidden = order[: round(step * h * w / steps)]
        batch[step].reshape(h * w, -1)[hidden] = GREY
    return float(_class_probability(model, batch, class_index, tta).mean())


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
