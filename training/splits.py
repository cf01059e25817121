"""The split into training and validation images, and the data check shown before training."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .data import ImageSet

MIN_PER_CLASS = 10
MAX_IMBALANCE = 3.0


@dataclass(frozen=True)
class DataCheck:
    """What a user should know about a data set before training on it."""

    class_names: tuple[str, ...]
    counts: tuple[int, ...]           # images per class
    skipped: tuple[tuple[str, str], ...]  # unreadable files and why
    duplicates: int                   # images identical (after preprocessing) to an earlier one
    conflicting: int                  # of those, copies filed under a different class
    train_images: int
    val_images: int
    data_warnings: tuple[str, ...]    # about the images themselves, whatever the split
    val_fraction: float               # the validation share the split above was made with

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything to warn about for the split this check was made with."""
        return self.warnings_at(self.val_fraction)

    def warnings_at(self, val_fraction: float) -> tuple[str, ...]:
        """The data's own warnings and the split's, for another validation share."""
        held_out = split_warning(self.class_names, self.counts, val_fraction)
        return self.data_warnings + ((held_out,) if held_out else ())

    @property
    def total(self) -> int:
        return sum(self.counts)


def check_data(data: ImageSet, val_fraction: float, seed: int = 0) -> DataCheck:
    """Count images per class, find duplicates and describe the split that training will use."""
    names = data.class_names
    counts = np.bincount(data.labels, minlength=len(names)).tolist()
    first_label: dict[bytes, int] = {}
    conflicting = 0
    for image, label in zip(data.images, data.labels):
        first = first_label.setdefault(_key(image), int(label))
        conflicting += first != int(label)
    duplicates = len(data) - len(first_label)
    val_images = int(_held_out(data, val_fraction, seed).sum())
    warnings = []
    small = [f"{n} ({c})" for n, c in zip(names, counts) if c < MIN_PER_CLASS]
    if small:
        warnings.append(f"fewer than {MIN_PER_CLASS} images: {', '.join(small)}")
    if min(counts) > 0 and max(counts) / min(counts) > MAX_IMBALANCE:
        big, few = names[int(np.argmax(counts))], names[int(np.argmin(counts))]
        warnings.append(f"imbalanced: {big} has {max(counts)} images, {few} only {min(counts)} "
                        f"(over {MAX_IMBALANCE:g}:1)")
    if data.skipped:
        folders = sum(name.endswith("/") for name, _ in data.skipped)  # (whole folders)
        if len(data.skipped) > folders:
            warnings.append(f"{len(data.skipped) - folders} unreadable file(s) will be skipped")
        if folders:
            warnings.append(f"{folders} folder(s) cannot be read: none of their images are used")
    if duplicates:
        extra = f", {conflicting} of them filed under another class" if conflicting else ""
        warnings.append(f"{duplicates} duplicate image(s){extra} (no copy of a training image "
                        "is held out)")
    return DataCheck(tuple(names), tuple(counts), tuple(data.skipped), duplicates, conflicting,
                     len(data) - val_images, val_images, tuple(warnings), val_fraction)


def split_warning(names, counts, val_fraction: float) -> str:
    """The warning for classes the split leaves without validation images ("" for none)."""
    no_val = [n for n, c in zip(names, counts) if validation_take(c, val_fraction) == 0]
    return f"no validation images for: {', '.join(no_val)}" if val_fraction > 0 and no_val else ""


def validation_take(count: int, fraction: float) -> int:
    """How many of a class's ``count`` images the split holds out (at least one stays to train)."""
    return min(int(round(count * fraction)), max(count - 1, 0))


def split(data: ImageSet, fraction: float, seed: int, by_content: bool = True,
          borrow: bool = True, trained: frozenset = frozenset()) -> tuple[ImageSet, ImageSet]:
    """Split into (train, validation), about ``fraction`` of each class held out, at least one
    image of each class on either side where it has two.

    ``by_content`` (runs made since 2026-11-26): each image's side follows from its pixels and
    ``seed`` alone, so images added to a data set later never pull an earlier one into
    validation. Two exceptions keep a class usable: one the draw leaves without validation
    images lends its lowest draw (``borrow``), one it leaves without training images keeps its
    highest. A fine-tune on grown data (its parent's seed) borrows nothing and keeps in training
    the images its ancestors trained on although drawn under the share (``trained``: their
    :func:`image_key` each). Otherwise (older checkpoints): a seeded per-class shuffle, which any
    change to the data reshuffles. Either way a held-out image with an exact copy among the
    training images is trained on instead (validation only shrinks)."""
    held_out = _held_out(data, fraction, seed, by_content, borrow, trained)
    return data.subset(np.flatnonzero(~held_out)), data.subset(np.flatnonzero(held_out))


def trained_under_the_share(train_part: ImageSet, fraction: float, seed: int) -> list[str]:
    """The :func:`image_key` of each image of a content split's ``train_part`` drawn under
    ``fraction`` (a class's last training image, a copy of a training image): what a fine-tune
    on grown data must keep in training too. Usually none; CIFAR-10 has none."""
    return sorted({image_key(image) for image in train_part.images
                   if _draw(image, seed) < fraction})


def _held_out(data: ImageSet, fraction: float, seed: int, by_content: bool = True,
              borrow: bool = True, trained: frozenset = frozenset()) -> np.ndarray:
    val_mask = np.zeros(len(data), bool)
    # each image's identity, for copies and kept-back images (none needed if none is held out)
    keys = [_key(image) for image in data.images] if fraction > 0 else []
    if by_content:
        draw = np.array([_draw(image, seed) for image in data.images])
        val_mask = draw < fraction
        if trained:
            kept = {bytes.fromhex(k) for k in trained}
            val_mask &= np.array([key not in kept for key in keys], bool)
        for label in range(len(data.class_names)):
            members = np.flatnonzero(data.labels == label)
            held = val_mask[members]
            if borrow and not held.any() and validation_take(len(members), fraction):
                val_mask[members[np.argmin(draw[members])]] = True  # a small class: one
            elif held.all() and len(members):
                val_mask[members[np.argmax(draw[members])]] = False  # one stays to train
    else:
        rng = np.random.default_rng(seed)
        for label in range(len(data.class_names)):
            members = rng.permutation(np.flatnonzero(data.labels == label))
            val_mask[members[:validation_take(len(members), fraction)]] = True
    if val_mask.any():
        in_training = {keys[i] for i in np.flatnonzero(~val_mask)}
        for i in np.flatnonzero(val_mask):
            val_mask[i] = keys[i] not in in_training
    return val_mask


def image_key(image: np.ndarray) -> str:
    """An image's identity by its pixels (hex), as a split records it."""
    return _key(image).hex()


def _key(image: np.ndarray) -> bytes:
    return hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def _draw(image: np.ndarray, seed: int) -> float:
    """A number in [0, 1) fixed by the image's pixels and the seed."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=8, key=str(seed).encode()[:64]).digest()
    return int.from_bytes(digest, "little") / 2 ** 64


def split_rule(info) -> dict:
    """Everything :func:`split` needs to re-derive the validation part the run that made
    checkpoint ``info`` held out: ``fraction``, ``seed``, ``by_content``, ``borrow``, ``trained``."""
    seed, share = held_out_by(info)
    used = info.config.get("split")
    used = used if isinstance(used, dict) else {}
    trained = used.get("trained")
    return {"fraction": share, "seed": seed, "by_content": split_by_content(info),
            "borrow": used.get("borrow") is not False,
            "trained": frozenset(k for k in trained if isinstance(k, str))
            if isinstance(trained, list) else frozenset()}


def split_by_content(info) -> bool:
    """Whether checkpoint ``info``'s run split its data by content (see :func:`split`)."""
    used = info.config.get("split")
    return isinstance(used, dict) and used.get("by") == "content"


def held_out_by(info) -> tuple[int, float]:
    """The seed and validation share of the split the run that made checkpoint ``info`` (a
    CheckpointInfo) held out: its ``config.split`` (a fine-tune on its parent's data keeps the
    parent's), else, for a checkpoint made before that was recorded, its own settings."""
    used = info.config.get("split")
    if isinstance(used, dict) and isinstance(used.get("seed"), int) and _is_share(
            used.get("val_fraction")):
        return used["seed"], float(used["val_fraction"])
    share = info.config.get("val_fraction", 0.0)
    return (int(info.config.get("seed", info.seed or 0)),
            float(share) if _is_share(share) else 0.0)


def split_is_clean(info) -> bool:
    """Whether the split checkpoint ``info`` held out was never trained on by an ancestor (a
    fine-tune of a parent that trained on all of its data records ``clean: false``)."""
    used = info.config.get("split")
    return not (isinstance(used, dict) and used.get("clean") is False)


def _is_share(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1
