"""Knowledge distillation: teacher checkpoints whose averaged probabilities on each augmented
training image become part of the targets (``TrainConfig.teachers`` / ``distill``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .checkpoints import load_checkpoint
from .data import DataError, ImageSet
from .predict import probabilities
from .preprocessing import Preprocessing
from .splits import held_out_by, split_by_content, split_is_clean


def teachers(paths, data: ImageSet, preprocessing: Preprocessing,
             held_out: tuple[int, float] = (0, 0.0), fingerprint: str = "",
             by_content: bool = True):
    """Knowledge distillation: a function from a batch of uint8 images to the average of the
    teacher checkpoints' probabilities (each with its own test-time augmentation). Teachers must
    know the data's classes in its order and take its image size; a teacher trained on this data
    (``fingerprint``) must have held out this run's validation split (``held_out``: seed and
    share, split ``by_content`` or not), or what it learnt of those images would reach the
    student and its validation."""
    loaded = []
    for path in paths:
        model, info = load_checkpoint(path)
        if fingerprint and info.data_fingerprint == fingerprint and held_out[1] > 0:
            seed, share = held_out_by(info)
            same = (seed, share) == tuple(held_out) and split_by_content(info) == by_content
            if not same or not split_is_clean(info):
                theirs = ("it descends from a run that trained on some of them" if share > 0
                          and same else
                          "it split the data another way (shuffled, before splits by "
                          "content)" if share > 0 and (seed, share) == tuple(held_out) else
                          f"it held out seed {seed}'s {share:.0%}: use that split" if share > 0
                          else "it held none out")
                raise DataError(f"teacher {Path(path).name} trained on images this run holds "
                                f"out for validation ({theirs})")
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
