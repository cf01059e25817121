"""Knowledge distillation: teacher checkpoints whose averaged probabilities on each augmented
training image become part of the targets (``TrainConfig.teachers`` / ``distill``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .checkpoints import load_checkpoint
from .data import DataError, ImageSet
from .predict import probabilities
from .preprocessing import Preprocessing
from .splits import image_key, split, split_is_clean, split_rule


def teachers(paths, data: ImageSet, preprocessing: Preprocessing,
             held_out: ImageSet | None = None, fingerprint: str = ""):
    """Knowledge distillation: a function from a batch of uint8 images to the average of the
    teacher checkpoints' probabilities (each with its own test-time augmentation). Teachers must
    know the data's classes in its order and take its image size; a teacher trained on this data
    (``fingerprint``) must have trained on none of this run's validation images (``held_out``),
    nor descend from a run that did, or what it learnt of them would reach the student and its
    validation."""
    loaded = []
    for path in paths:
        model, info = load_checkpoint(path)
        if fingerprint and info.data_fingerprint == fingerprint and held_out is not None and len(
                held_out):
            why = _trained_on(info, data, held_out)
            if why:
                raise DataError(f"teacher {Path(path).name} trained on images this run holds "
                                f"out for validation ({why})")
        if tuple(info.class_names) != tuple(data.class_names):
            raise DataError(f"teacher {Path(path).name} knows other classes than the data "
                            f"({', '.join(info.class_names)})")
        if tuple(info.input_shape) != tuple(data.images.shape[1:]):
            raise DataError(f"teacher {Path(path).name} takes another image size than the data")
        theirs = info.preprocessing
        if (theirs.resize, theirs.pad_value) != (preprocessing.resize, preprocessing.pad_value):
            raise DataError(f"teacher {Path(path).name} prepares images another way (resize "
                            f"{theirs.resize}, pad {theirs.pad_value}; this run: resize "
                            f"{preprocessing.resize}, pad {preprocessing.pad_value})")
        loaded.append((model, info.tta))

    def teach(images):
        return np.mean([probabilities(m, images, tta, batch_size=2 * len(images))
                        for m, tta in loaded], axis=0)

    return teach


def _trained_on(info, data: ImageSet, held_out: ImageSet) -> str:
    """Why a teacher trained on ``data`` saw some of the ``held_out`` images, or ""."""
    rule = split_rule(info)
    if rule["fraction"] <= 0:
        return "it held none out"
    theirs, _ = split(data, **rule)
    trained = {image_key(image) for image in theirs.images}
    seen = sum(image_key(image) in trained for image in held_out.images)
    if seen:
        kind = "by content" if rule["by_content"] else "shuffled"
        return (f"{seen} of them: it held out seed {rule['seed']}'s {rule['fraction']:.0%}, "
                f"{kind}: use that split")
    if not split_is_clean(info):
        return "it descends from a run that trained on some of them"
    return ""
