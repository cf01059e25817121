"""The convolutional network: three conv groups with batch norm and max-pooling.

The shape follows the "airbench94" CIFAR-10 recipe (Keller Jordan): a small stem, then three
groups of two 3x3 convolutions where the first of each group is followed by 2x2 max-pooling,
global max-pooling and one linear layer. Only built-in Keras layers are used, so checkpoints load
with ``safe_mode=True`` and no custom objects.
"""
from __future__ import annotations

# Per-channel statistics of CIFAR-10 training pixels (0-255 scale); the first layer normalises.
CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)


def build_model(num_classes: int, widths: tuple[int, ...] = (64, 256, 256), stem: int = 32,
                input_shape: tuple[int, int, int] = (32, 32, 3), dtype: str = "float32",
                residual: bool = False, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                activation: str = "gelu", bn_momentum: float = 0.9, bn_scale: bool = True,
                logit_scale: float = 1.0, whiten: bool = False, init: str = "glorot"):
    """Build the classifier. Input: RGB 0-255 floats; output: class probabilities (float32).

    Args:
        num_classes: number of output classes.
        widths: channels of the three conv groups (params: ~2.0 M for (64, 256, 256)).
        stem: channels of the first 3x3 convolution.
        dtype: Keras dtype policy for compute ("float32" or "mixed_bfloat16").
        residual: when True each group is conv-pool followed by a residual pair of convs (the
            ResNet-9 shape of David Page's DAWNBench entry) instead of a second conv.
        activation: "gelu" or "relu" (ReLU trains ~17 % faster on the reference CPU).
        bn_momentum, bn_scale: batch norm's running-average momentum (Keras convention: the
            weight of the old value) and whether it learns a per-channel scale (airbench: no).
        logit_scale: multiplies the logits (airbench: 1/9), a fixed ``Rescaling`` layer.
        whiten: start with airbench's frozen 2x2 whitening convolution (24 channels, set from
            the training images with ``whitening_kernel``; valid padding, so 32x32 becomes 31x31).
            ``stem`` then may be 0 (no stem convolution).
        init: kernel initialiser of the convolutions and the last layer: "glorot" (Keras's
            default) or "torch" (PyTorch's default, uniform +-1/sqrt(fan_in): smaller weights,
            so a larger effective learning rate under batch norm).
    """
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="image")
    x = layers.Normalization(mean=list(mean), variance=[s * s for s in std], name="normalize",
                             dtype=dtype)(inputs)
    if whiten:
        x = layers.Conv2D(2 * 2 * 2 * input_shape[-1], 2, padding="valid", use_bias=False,
                          trainable=False, name="whiten_conv", dtype=dtype)(x)
        x = layers.Activation(activation, name=f"whiten_{activation}", dtype=dtype)(x)
    kernel_init = _initializer(init)
    block = dict(dtype=dtype, activation=activation, bn_momentum=bn_momentum, bn_scale=bn_scale,
                 kernel_init=kernel_init)
    if stem:
        x = _conv_bn(x, stem, "stem", **block)
    for i, width in enumerate(widths, start=1):
        x = _conv_bn(x, width, f"group{i}_a", pool=True, **block)
        if residual:
            y = _conv_bn(x, width, f"group{i}_res1", **block)
            y = _conv_bn(y, width, f"group{i}_res2", **block)
            x = layers.Add(name=f"group{i}_add", dtype=dtype)([x, y])
        else:
            x = _conv_bn(x, width, f"group{i}_b", **block)
    x = layers.GlobalMaxPooling2D(name="pool", dtype=dtype)(x)
    x = layers.Dense(num_classes, use_bias=False, name="logits", dtype=dtype,
                     kernel_initializer=kernel_init)(x)
    if logit_scale != 1.0:
        x = layers.Rescaling(logit_scale, name="logit_scale", dtype=dtype)(x)
    outputs = layers.Activation("softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn_classifier")


def _initializer(init: str):
    import keras

    if init == "glorot":
        return "glorot_uniform"
    if init == "torch":
        return keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform")
    raise ValueError(f"unknown initialiser {init!r}")


def _conv_bn(x, filters: int, name: str, dtype: str, activation: str, bn_momentum: float,
             bn_scale: bool, kernel_init, pool: bool = False):
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv",
                      dtype=dtype, kernel_initializer=kernel_init)(x)
    if pool:
        x = layers.MaxPooling2D(2, name=f"{name}_pool", dtype=dtype)(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=1e-5, scale=bn_scale,
                                  name=f"{name}_bn", dtype=dtype)(x)
    return layers.Activation(activation, name=f"{name}_{activation}", dtype=dtype)(x)


def whitening_kernel(images, mean=CIFAR10_MEAN, std=CIFAR10_STD, eps: float = 5e-4,
                     limit: int = 5000, seed: int = 0):
    """airbench's whitening filters for a 2x2 valid convolution: the eigenvectors of the
    covariance of the normalised images' 2x2 patches, scaled by 1/sqrt(eigenvalue + eps), and
    their negatives. ``images``: uint8 (N, H, W, C); at most ``limit`` of them are used, drawn
    at random with ``seed`` (never the first ones: class-folder data sets are sorted by class).

    Returns a Keras kernel (2, 2, C, 2 * 4 * C) whose output channels are decorrelated with unit
    variance on those patches.
    """
    import numpy as np

    if len(images) > limit:
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), limit, replace=False))]
    x = (np.asarray(images, np.float32) - np.float32(mean)) / np.float32(std)
    n, h, w, c = x.shape
    patches = np.concatenate([x[:, i:h - 1 + i, j:w - 1 + j, :] for i in (0, 1) for j in (0, 1)],
                             axis=-1).reshape(-1, 4 * c).astype(np.float64)  # (i, j, c) order
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    scaled = eigenvectors / np.sqrt(eigenvalues + eps)  # columns are the filters
    kernel = np.concatenate([scaled, -scaled], axis=1)
    return kernel.reshape(2, 2, c, 2 * 4 * c).astype(np.float32)


def dirac_init(model) -> int:
    """airbench's identity start: in every 3x3 convolution after the first layer, the first
    ``in_channels`` filters pass their input channel through unchanged (a Dirac delta at the
    kernel's centre); the remaining filters keep their random start. Returns how many
    convolutions were changed."""
    import numpy as np

    changed = 0
    for layer in model.layers:
        if not layer.name.endswith("_conv") or layer.name == "whiten_conv":
            continue
        kernel = layer.get_weights()[0]
        kh, kw, c_in, c_out = kernel.shape
        if kh != 3 or kw != 3:
            continue
        n = min(c_in, c_out)
        kernel[:, :, :, :n] = 0.0
        kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        layer.set_weights([kernel] + layer.get_weights()[1:])
        changed += 1
    return changed


def network(config, n_classes: int, shape: tuple, dtype: str):
    """The network ``config`` (a TrainConfig) describes, from ``build_model``."""
    return build_model(n_classes, config.widths, config.stem, shape, dtype, config.residual,
                       activation=config.activation, bn_momentum=config.bn_momentum,
                       bn_scale=config.bn_scale, logit_scale=config.logit_scale,
                       whiten=config.whiten, init=config.init)


def architecture_of(model) -> dict:
    """The config fields describing a network built by ``build_model`` (widths, stem, residual,
    activation, batch norm, logit scale, whitening)."""
    from .checkpoints import CheckpointError

    names = {layer.name: layer for layer in model.layers}
    try:
        bn = names["group1_a_bn"]
        return {"stem": int(names["stem_conv"].filters) if "stem_conv" in names else 0,
                "widths": tuple(int(names[f"group{i}_a_conv"].filters) for i in (1, 2, 3)),
                "residual": "group1_res1_conv" in names,
                "activation": next(n.rsplit("_", 1)[1] for n in names if n.startswith("group1_a_")
                                   and n.rsplit("_", 1)[1] in ("gelu", "relu")),
                "bn_momentum": float(bn.momentum), "bn_scale": bool(bn.scale),
                "logit_scale": float(names["logit_scale"].scale) if "logit_scale" in names else 1.0,
                "whiten": "whiten_conv" in names}
    except (KeyError, StopIteration):
        raise CheckpointError("this checkpoint's network is not one the app can fine-tune") from None


def copy_weights(source, model, source_classes=None, classes=None) -> None:
    """Copy weights from ``source`` into ``model`` wherever layer names and shapes match. The head
    (``logits``) only where it means the same: the same classes (their columns put in the data's
    order when it differs); other classes, even as many, get a new head."""
    by_name = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        other = by_name.get(layer.name)
        if other is None or not layer.weights:
            continue
        weights = other.get_weights()
        if layer.name == "logits" and source_classes is not None and classes is not None:
            if sorted(source_classes) != sorted(classes) or len(set(classes)) != len(classes):
                continue  # other classes: a new head, trained from scratch
            order = [list(source_classes).index(name) for name in classes]
            weights = [w[..., order] for w in weights]  # one column per class, the data's order
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
