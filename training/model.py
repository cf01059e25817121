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
                residual: bool = False, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    """Build the classifier. Input: RGB 0-255 floats; output: class probabilities (float32).

    Args:
        num_classes: number of output classes.
        widths: channels of the three conv groups (params: ~2.0 M for (64, 256, 256)).
        stem: channels of the first 3x3 convolution.
        dtype: Keras dtype policy for compute ("float32" or "mixed_bfloat16").
        residual: when True each group is conv-pool followed by a residual pair of convs (the
            ResNet-9 shape of David Page's DAWNBench entry) instead of a second conv.
    """
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="image")
    x = layers.Normalization(mean=list(mean), variance=[s * s for s in std], name="normalize",
                             dtype=dtype)(inputs)
    x = _conv_bn(x, stem, "stem", dtype)
    for i, width in enumerate(widths, start=1):
        x = _conv_bn(x, width, f"group{i}_a", dtype, pool=True)
        if residual:
            y = _conv_bn(x, width, f"group{i}_res1", dtype)
            y = _conv_bn(y, width, f"group{i}_res2", dtype)
            x = layers.Add(name=f"group{i}_add", dtype=dtype)([x, y])
        else:
            x = _conv_bn(x, width, f"group{i}_b", dtype)
    x = layers.GlobalMaxPooling2D(name="pool", dtype=dtype)(x)
    logits = layers.Dense(num_classes, use_bias=False, name="logits", dtype=dtype)(x)
    outputs = layers.Activation("softmax", name="probabilities", dtype="float32")(logits)
    return keras.Model(inputs, outputs, name="cnn_classifier")


def _conv_bn(x, filters: int, name: str, dtype: str, pool: bool = False):
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv",
                      dtype=dtype)(x)
    if pool:
        x = layers.MaxPooling2D(2, name=f"{name}_pool", dtype=dtype)(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn", dtype=dtype)(x)
    return layers.Activation("gelu", name=f"{name}_gelu", dtype=dtype)(x)

