"""The split into training and validation images, and the data check shown before training."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .data import ImageSet, format_kinds

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
    seed: int = 0                     # and its seed
    # what recounts the split for another share or rule without the images (see split_at)
    basis: "SplitBasis | None" = field(default=None, compare=False, repr=False)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything to warn about for the split this check was made with."""
        return self.warnings_at(self.val_fraction)

    def warnings_at(self, val_fraction: float, rule: dict | None = None) -> tuple[str, ...]:
        """The data's own warnings and the split's: the split a run of its own makes at
        ``val_fraction``, or ``rule`` (:func:`split`'s arguments: a fine-tune's, say)."""
        rule = rule or {"fraction": val_fraction, "seed": self.seed}
        return self.warnings_for(self.split_at(rule)[0], rule["fraction"])

    def warnings_for(self, held_out: tuple[int, ...], val_fraction: float) -> tuple[str, ...]:
        """The data's own warnings and those of a split holding out ``held_out`` images of each
        class (from :meth:`split_at`) with validation share ``val_fraction``."""
        held = split_warning(self.class_names, held_out, val_fraction)
        return self.data_warnings + ((held,) if held else ())

    def split_at(self, rule: dict) -> tuple[tuple[int, ...], bool]:
        """How many images of each class :func:`split` holds out with ``rule`` (its arguments,
        as :func:`split_rule` or ``lineage.split_rule_for`` give them) on the checked data, and
        whether that is exact: numpy on what the check hashed, no image touched. Not exact only
        for a split by content under a seed the check hashed no draws for: then each class's
        :func:`validation_take`, what the draws hold out on average."""
        held = self.basis.held_out(**rule) if self.basis is not None else None
        if held is None:
            return tuple(validation_take(c, rule["fraction"]) for c in self.counts), False
        return tuple(np.bincount(self.basis.labels[held],
                                 minlength=len(self.class_names)).tolist()), True

    @property
    def fingerprint(self) -> str:
        """The checked data's ``ImageSet.fingerprint`` (whether a parent trained on this data)."""
        return self.basis.fingerprint if self.basis is not None else ""

    @property
    def total(self) -> int:
        return sum(self.counts)


def check_data(data: ImageSet, val_fraction: float, seed: int = 0,
               more_seeds: tuple[int, ...] = ()) -> DataCheck:
    """Count images per class, find duplicates and describe the split that training will use;
    each image's draw is kept for ``seed`` and ``more_seeds`` (a parent's split seed, say), so
    that the split of any share and rule under them can be counted later without the images."""
    names = data.class_names
    counts = np.bincount(data.labels, minlength=len(names)).tolist()
    basis = SplitBasis.of(data, (seed, *more_seeds), fingerprint=True)
    first_label: dict[bytes, int] = {}
    conflicting = 0
    for key, label in zip(basis.keys, data.labels):
        first = first_label.setdefault(key, int(label))
        conflicting += first != int(label)
    duplicates = len(data) - len(first_label)
    val_images = int(basis.held_out(val_fraction, seed).sum())
    warnings = []
    small = [f"{n} ({c})" for n, c in zip(names, counts) if c < MIN_PER_CLASS]
    if small:
        warnings.append(f"fewer than {MIN_PER_CLASS} images: {', '.join(small)}")
    if min(counts) > 0 and max(counts) / min(counts) > MAX_IMBALANCE:
        big, few = names[int(np.argmax(counts))], names[int(np.argmin(counts))]
        warnings.append(f"imbalanced: {big} has {max(counts)} images, {few} only {min(counts)} "
                        f"(over {MAX_IMBALANCE:g}:1)")
    if data.skipped:
        # "a/" is a folder that could not be read; each other entry a file, except a class
        # folder's one note on its files in other formats (a Thumbs.db, HEIC photos): counted apart
        folders = sum(name.endswith("/") for name, _ in data.skipped)
        others = data.other_formats
        broken = data.files_left_out() - folders - len(others)
        if broken > 0:
            warnings.append(f"{broken} unreadable file(s) will be skipped")
        if others:
            warnings.append(f"{len(others)} file(s) in formats the app does not read are skipped "
                            f"({format_kinds(others)})")
        if folders:
            warnings.append(f"{folders} folder(s) cannot be read: none of their images are used")
    if duplicates:
        extra = f", {conflicting} of them filed under another class" if conflicting else ""
        warnings.append(f"{duplicates} duplicate image(s){extra} (no copy of a training image "
                        "is held out)")
    return DataCheck(tuple(names), tuple(counts), tuple(data.skipped), duplicates, conflicting,
                     len(data) - val_images, val_images, tuple(warnings), val_fraction, seed,
                     basis)


def split_warning(names, held_out, val_fraction: float) -> str:
    """The warning for classes a split holds out none of (``held_out``: images held out per
    class, from :meth:`DataCheck.split_at`; "" for none, or for no validation share)."""
    no_val = [n for n, h in zip(names, held_out) if h == 0]
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
    if fraction <= 0:  # none held out (and no image hashed)
        return np.zeros(len(data), bool)
    basis = SplitBasis.of(data, (seed,) if by_content else ())
    return basis.held_out(fraction, seed, by_content, borrow, trained)


@dataclass(frozen=True, eq=False)
class SplitBasis:
    """What :func:`split` needs to know of each image, worked out once: its class, its identity
    (:func:`_key`) and its draw under each seed of ``draws`` (:func:`_draw`). The hashing is
    the slow part (about 0.5 s a seed for 50,000 images); from these, the split of any share
    is numpy, so the data check recounts it while the share is changed."""

    labels: np.ndarray
    members: tuple[np.ndarray, ...]  # each class's images, in order
    keys: tuple[bytes, ...]
    draws: dict                      # seed -> each image's draw
    fingerprint: str = ""            # the data's ImageSet.fingerprint, where asked for

    @classmethod
    def of(cls, data: ImageSet, seeds=(), fingerprint: bool = False) -> "SplitBasis":
        labels = np.asarray(data.labels)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(len(data.class_names) + 1))
        return cls(labels, tuple(order[a:b] for a, b in zip(bounds[:-1], bounds[1:])),
                   tuple(_key(image) for image in data.images),
                   {seed: np.array([_draw(image, seed) for image in data.images], float)
                    for seed in dict.fromkeys(seeds)},
                   data.fingerprint() if fingerprint else "")

    def held_out(self, fraction: float, seed: int, by_content: bool = True, borrow: bool = True,
                 trained: frozenset = frozenset()) -> np.ndarray | None:
        """Which images :func:`split` holds out with these arguments; None for a split by
        content under a seed whose draws are not here."""
        val_mask = np.zeros(len(self.labels), bool)
        if fraction <= 0:
            return val_mask
        keys = self.keys
        if by_content:
            if seed not in self.draws:
                return None
            draw = self.draws[seed]
            val_mask = draw < fraction
            if trained:
                kept = {bytes.fromhex(k) for k in trained}
                val_mask &= np.array([key not in kept for key in keys], bool)
            for members in self.members:
                held = val_mask[members]
                if borrow and not held.any() and validation_take(len(members), fraction):
                    val_mask[members[np.argmin(draw[members])]] = True  # a small class: one
                elif held.all() and len(members):
                    val_mask[members[np.argmax(draw[members])]] = False  # one stays to train
        else:
            rng = np.random.default_rng(seed)
            for members in self.members:
                members = rng.permutation(members)
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
