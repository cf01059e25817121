"""Training recipes: the hyper-parameters of a run (``TrainConfig``), the named recipes the CLI
and the app offer, how a recipe scales to a smaller data set, and the expected wall time of a
run. Cheap to import (no TensorFlow): the app reads them on the GUI thread."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (units in comments)."""

    epochs: int = 10               # passes over the training split
    batch_size: int = 512          # images per optimiser step
    lr: float = 0.2                # peak learning rate (SGD, per step) of the warm-up/cosine cycle
    warmup: float = 0.15           # fraction of all steps spent warming up linearly
    momentum: float = 0.9          # Nesterov momentum
    # Keras applies weight decay decoupled (w -= lr * wd * w, outside momentum), so 5e-3 here is
    # about the usual PyTorch-style 5e-4, which momentum 0.9 amplifies tenfold.
    weight_decay: float = 5e-3     # decoupled weight decay, multiplied by the learning rate
    label_smoothing: float = 0.2   # probability mass spread over the other classes
    val_fraction: float = 0.1      # share of labelled images held out for validation
    flip: bool = True              # random horizontal flips
    alternate_flip: bool = False   # flip each image in every other epoch instead (airbench)
    translate: int = 2             # random shift of up to this many pixels (reflect padding)
    cutout: int = 0                # side of a random square set to grey, pixels; 0 = off
    widths: tuple[int, int, int] = (64, 256, 256)  # channels of the three conv groups
    stem: int = 32                 # channels of the first convolution
    residual: bool = False         # residual pair of convs in each group (ResNet-9 shape)
    seed: int = 0                  # seeds the split, the initialisation and the augmentation
    precision: str = "auto"        # "auto", "float32" or "mixed_bfloat16"
    patience: int = 0              # early stopping on validation accuracy, epochs; 0 = off
    tta: bool = True               # predict with horizontal-flip test-time augmentation
    # airbench's network details (defaults: the network of checkpoints made before them)
    activation: str = "gelu"       # "gelu" or "relu"
    bn_momentum: float = 0.9       # batch norm running-average momentum (weight of the old value)
    bn_scale: bool = True          # batch norm learns a per-channel scale
    logit_scale: float = 1.0       # fixed multiplier of the logits
    whiten: bool = False           # frozen 2x2 whitening first layer set from the training images
    lookahead: int = 0             # every this many steps the weights become their moving
    lookahead_decay: float = 0.95  # average (decay per step, ramped up over the run); 0 = off
    schedule: str = "cosine"       # learning-rate shape: "cosine" (warm-up, cosine) or "triangle"
    bias_lr_scale: float = 1.0     # batch-norm biases learn this many times faster (airbench: 64)
    init: str = "glorot"           # kernel initialiser: "glorot" (Keras) or "torch" (PyTorch's)
    dirac: bool = False            # 3x3 convolutions start as identity where channels allow
    optimizer: str = "sgd"         # "sgd", or "muon": Muon steps for 3x3 kernels (airbench)
    muon_lr: float = 0.24          # Muon's peak step size (follows the schedule's shape)
    muon_momentum: float = 0.6     # Muon's Nesterov momentum
    teachers: tuple[str, ...] = ()  # checkpoints to distil: their averaged probabilities (with
    distill: float = 0.5            # their own flip TTA) make this share of every training target

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """The config a sidecar or run record recorded (other keys are ignored, missing ones take
        their defaults). ValueError with a one-line reason naming the field for a value of the
        wrong type or out of range (a hand-edited sidecar): it would otherwise fail deep in
        training with a traceback."""
        if not isinstance(data, dict):
            raise ValueError(f"config is {type(data).__name__}, not an object of settings")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key, value in known.items():
            ok, wanted = FIELD_RULES[key]
            if not ok(value):
                shown = repr(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise ValueError(f"config: {key} is {shown}, not {wanted}")
        for key in ("widths", "teachers"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


# What each setting of a recorded config may be (the command line's ranges). JSON numbers: an
# int is not a bool (True is an int to Python); a float may be written as an int ("lr": 1).
_MAX_INT = 2**31 - 1  # beyond any real run; larger numbers overflow the C ints TensorFlow takes


def _whole(low: int):
    return (lambda v: type(v) is int and low <= v <= _MAX_INT,
            f"a whole number from {low} to {_MAX_INT}")


def _real(ok, wanted: str):
    return (lambda v: type(v) in (int, float) and math.isfinite(v) and ok(v), wanted)


def _choice(*allowed: str):
    return (lambda v: isinstance(v, str) and v in allowed,
            " or ".join(repr(a) for a in allowed))


_BOOL = (lambda v: type(v) is bool, "true or false")
_SHARE = _real(lambda v: 0 <= v < 1, "a share from 0 up to (not including) 1")
_UNIT = _real(lambda v: 0 <= v <= 1, "a share from 0 to 1")
_NOT_NEGATIVE = _real(lambda v: v >= 0, "a number of at least 0")

FIELD_RULES = {
    "epochs": _whole(1), "batch_size": _whole(1), "lr": _NOT_NEGATIVE, "warmup": _SHARE,
    "momentum": _SHARE, "weight_decay": _NOT_NEGATIVE, "label_smoothing": _SHARE,
    "val_fraction": _SHARE, "flip": _BOOL, "alternate_flip": _BOOL, "translate": _whole(0),
    "cutout": _whole(0),
    "widths": (lambda v: isinstance(v, (list, tuple)) and len(v) == 3
               and all(type(w) is int and 1 <= w <= _MAX_INT for w in v),
               "three channel counts of at least 1, e.g. [64, 256, 256]"),
    "stem": _whole(0), "residual": _BOOL, "seed": _whole(0),
    "precision": _choice("auto", "float32", "mixed_bfloat16"), "patience": _whole(0),
    "tta": _BOOL, "activation": _choice("gelu", "relu"), "bn_momentum": _SHARE,
    "bn_scale": _BOOL, "logit_scale": _real(lambda v: v > 0, "a number above 0"),
    "whiten": _BOOL, "lookahead": _whole(0), "lookahead_decay": _UNIT,
    "schedule": _choice("cosine", "triangle"), "bias_lr_scale": _NOT_NEGATIVE,
    "init": _choice("glorot", "torch"), "dirac": _BOOL, "optimizer": _choice("sgd", "muon"),
    "muon_lr": _NOT_NEGATIVE, "muon_momentum": _SHARE,
    "teachers": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(t, str) for t in v),
                 "a list of checkpoint paths"),
    "distill": _UNIT,
}


# The default from scratch, in the app and the CLI: airbench94_muon's recipe (Keller Jordan)
# with ReLU for CPU speed: a frozen whitening first layer, batch norm without scale at
# momentum 0.6, identity-started convolutions trained by Muon, batch-norm biases at 64x the
# SGD learning rate, logits / 9, a linear decay, alternating flips; 7 epochs fit 15 minutes
# on the reference 2-core CPU. Learning rates are per mean-loss step (airbench's per-summed-
# loss figures times its batch, its weight decay as Keras's decoupled form).
_FAST = dict(epochs=7, batch_size=2000, optimizer="muon", lr=1.66, momentum=0.85,
             weight_decay=0.016, muon_lr=0.24, muon_momentum=0.6, bias_lr_scale=64.0,
             schedule="triangle", warmup=0.0, init="torch", dirac=True,
             widths=(64, 256, 256), stem=0, whiten=True, activation="relu", bn_momentum=0.6,
             bn_scale=False, logit_scale=1 / 9, translate=2, alternate_flip=True)

RECIPES = {
    "fast": _FAST,
    # Starting from a trained checkpoint: fewer epochs, a gentler peak learning rate.
    "fine-tune": dict(epochs=8, batch_size=256, lr=0.04, warmup=0.1, translate=2,
                      weight_decay=5e-3, patience=3),
    # The bundled checkpoint: the fast recipe's network and optimiser trained 15x longer with
    # stronger augmentation (4 px translation, 12 px cutout), half Muon's step size, batch 1000
    # (KERAS_BACKEND=jax on a GPU: 3 minutes on an H200 shared with two other runs; a CPU: about
    # 3.5 hours).
    "bundled": dict(_FAST, epochs=105, batch_size=1000, lr=0.83, muon_lr=0.12, translate=4,
                    cutout=12, val_fraction=0.1),
}


ARCHITECTURE_FIELDS = ("widths", "stem", "residual", "activation", "bn_momentum", "bn_scale",
                       "logit_scale", "whiten")


def speed_key(config: TrainConfig) -> str:
    """What a run's training images per second depend on: network, precision, batch size.
    Cheap (no TensorFlow import): the app computes it on the GUI thread."""
    from .hardware import BF16_CPU_FLAGS, cpu_flags

    precision = config.precision
    if precision == "auto":
        precision = "mixed_bfloat16" if set(BF16_CPU_FLAGS) & set(cpu_flags()) else "float32"
    return (f"{'-'.join(map(str, config.widths))} stem{config.stem}"
            f"{' residual' if config.residual else ''}{' whiten' if config.whiten else ''} "
            f"{config.activation} {precision} batch{config.batch_size}")


# Training images per second of whole runs (validation, saving and start-up included) on the
# reference machine (2-core x86-64 with AVX512-BF16): the app's estimate before this computer
# has measured its own. batch2000/512: the "fast" recipe, ``python -m training train --data
# cifar10-jpg.tar.gz --recipe fast``; batch256: the "fine-tune" recipe from the bundled
# checkpoint (the Train tab's default start), ``... --from models/cifar10.keras --epochs 1``.
REFERENCE_SPEED = {"64-256-256 stem0 whiten relu mixed_bfloat16 batch2000": 378.0,  # 2026-11-26
                   "64-256-256 stem0 whiten relu mixed_bfloat16 batch512": 385.0,  # 2026-11-25
                   "64-256-256 stem0 whiten relu mixed_bfloat16 batch256": 398.0}  # 2026-11-26


def expected_seconds(config: TrainConfig, n_images: int, images_per_s: float) -> float:
    """Wall time of a run of ``config`` on ``n_images`` labelled images at ``images_per_s``."""
    n_train = max(int(n_images * (1 - config.val_fraction)), 1)
    return n_train * config.epochs / images_per_s


def fit_to_data(config: TrainConfig, n_images: int, min_steps_per_epoch: int = 16,
                min_total_steps: int = 240, max_epochs: int = 100,
                design_images: int = 50_000, keep: frozenset = frozenset()) -> TrainConfig:
    """Scale a recipe made for CIFAR-10's 50,000 images to a data set of ``n_images``.

    Lower the batch to the next power of two until an epoch has ``min_steps_per_epoch``
    optimiser steps (batch norm and the schedule need steps, not epochs), scale the learning
    rate with the batch (the linear rule), and add epochs until the run has ``min_total_steps``
    steps, or as many as the recipe takes on ``design_images`` if that is fewer. Large data sets
    keep the recipe unchanged. Settings named in ``keep`` (``epochs``, ``batch_size``, ``lr``:
    given by the user) stay as they are; the others are still scaled.
    """
    n_train = max(int(n_images * (1 - config.val_fraction)), 1)
    design_steps = math.ceil(int(design_images * (1 - config.val_fraction)) / config.batch_size)
    min_total_steps = min(min_total_steps, design_steps * config.epochs)
    batch = config.batch_size
    while "batch_size" not in keep and batch > 8 and n_train / batch < min_steps_per_epoch:
        batch = 1 << ((batch - 1).bit_length() - 1)
    steps = math.ceil(n_train / batch)
    epochs = min(max(config.epochs, math.ceil(min_total_steps / steps)), max(max_epochs, config.epochs))
    return replace(config, batch_size=batch,
                   lr=config.lr if "lr" in keep else config.lr * batch / config.batch_size,
                   epochs=config.epochs if "epochs" in keep else epochs)
