"""The parity check: an export classifies a held-out sample with its own runtime and is compared
with the app's predictions (top-1 agreement, largest probability difference)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .export_formats import ExportError
from .preprocessing import Preprocessing
from .reporting import Reporter

MIN_PARITY_IMAGES = 200
STRICT_AGREEMENT = 1.0    # float exports: every top-1 answer must match the app's
LENIENT_AGREEMENT = 0.99  # int8 weights, or a mixed-precision checkpoint exported in float32
# float exports: no probability more than this away from the app's (measured: ~1e-6), else the
# low-confidence flag (a threshold on the top probability) would fall on other images
MAX_FLOAT_DIFF = 1e-3
# int8 weights or float32 arithmetic for a mixed-precision checkpoint: measured up to 0.033
# (int8) and 0.16 (bfloat16 against float32, all 10,000 test images); more is a broken export
LENIENT_MAX_DIFF = 0.25
ROW_SUM_TOLERANCE = 1e-3  # every format: each output row is a probability distribution
SYNTHETIC_SEED = 20240
SYNTHETIC = "synthetic images"  # the parity sample's source when no labelled data is given


@dataclass(frozen=True)
class ParitySample:
    """uint8 images (N, H, W, 3) for the parity check and where they came from, in words."""

    images: np.ndarray
    source: str


def parity(exported_predict, model, info, images, min_agreement: float = STRICT_AGREEMENT,
           max_diff: float | None = MAX_FLOAT_DIFF) -> dict:
    """Compare an export's probabilities with the app's on uint8 ``images``.

    Returns:
        ``images``, ``top1_agreement`` (fraction of images whose most probable class is the
        app's), ``max_abs_diff`` (largest absolute probability difference), ``min_agreement``,
        ``max_allowed_diff`` (``max_diff``; None: not checked), ``max_row_sum_error`` (how far
        an output row's sum is from 1) and ``ok`` (agreement >= ``min_agreement``, the
        difference within ``max_diff`` and every row summing to 1 within 1e-3: NaN fails).
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
    close = max_diff is None or diff <= max_diff
    row_sums = float(np.max(np.abs(got.sum(axis=1) - 1.0))) if len(got) else 0.0
    return {"images": len(images), "top1_agreement": agreement, "max_abs_diff": diff,
            "min_agreement": min_agreement, "max_allowed_diff": max_diff,
            "max_row_sum_error": row_sums,
            "ok": bool(agreement >= min_agreement and close and row_sums <= ROW_SUM_TOLERANCE)}


def parity_sample(data_path=None, n: int = 256, policy: Preprocessing = Preprocessing(),
                  class_names=None, reporter: Reporter | None = None) -> ParitySample:
    """``n`` images for the parity check: from labelled data, or seeded synthetic images.

    With ``data_path`` (CIFAR-10 archive or batches: the test part; class folders: all of it) the
    images are taken evenly through the set sorted by class, so every class is represented in
    proportion, and the same images every time. Without it: ``n`` smooth random colour patterns
    with noise from a fixed seed. ``class_names`` (the checkpoint's) only annotates the source
    when the data's classes differ; the parity check compares outputs and needs no labels. A
    data set of fewer than MIN_PARITY_IMAGES is used whole and topped up with synthetic images.
    """
    if data_path is None:
        return ParitySample(_synthetic(n, policy), SYNTHETIC)
    from .cifar_batches import is_cifar10_batches
    from .data import DataError, load_labelled
    from .paths import user_cache_dir

    try:
        data = load_labelled(data_path, "test", policy, reporter, cache_dir=user_cache_dir(),
                             evaluation=True)  # pixels only: one class will do
    except DataError as exc:
        raise ExportError(f"parity sample: {exc}") from None
    path = Path(data_path)
    source = path.name + (", test part" if path.is_file() or is_cifar10_batches(path) else "")
    if class_names is not None and tuple(class_names) != tuple(data.class_names):
        source += "; its classes differ from the checkpoint's"
    if len(data) < MIN_PARITY_IMAGES:  # a small set (a fine-tune on a few folders): all of
        extra = n - len(data)            # it, topped up with synthetic images
        return ParitySample(np.concatenate([data.images, _synthetic(extra, policy)]),
                            f"{source} ({len(data)} images) and {extra} {SYNTHETIC}")
    order = np.argsort(data.labels, kind="stable")
    pick = order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]
    return ParitySample(data.images[pick], source)


def _synthetic(n: int, policy: Preprocessing) -> np.ndarray:
    """``n`` smooth random colour patterns with noise, from a fixed seed."""
    from PIL import Image

    rng = np.random.default_rng(SYNTHETIC_SEED)
    width, height = policy.size
    coarse = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    smooth = np.stack([np.asarray(Image.fromarray(c).resize((width, height),
                                                             Image.Resampling.BICUBIC))
                       for c in coarse]).astype(np.float32)
    noisy = smooth + rng.normal(0.0, 12.0, smooth.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)
