"""Labelled image sets in memory: the CIFAR-10 JPEG archive and folders with one subfolder per class.

Images are decoded once through the one preprocessing path into uint8 arrays; decoding the
60,000-image archive is cached per user (keyed by the archive's hash and the preprocessing).
"""
from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocessing import ImageRejected, Preprocessing, is_image_path, load_image
from .reporting import Reporter, SilentReporter

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


class DataError(Exception):
    """A data set that cannot be used; the message is meant for the user."""


@dataclass(frozen=True)
class ImageSet:
    """Decoded images with integer labels into ``class_names``."""

    images: np.ndarray  # uint8, (N, height, width, 3)
    labels: np.ndarray  # int32, (N,)
    class_names: tuple[str, ...]
    source: str = ""
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (file, one-line reason)

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """Hash of the decoded pixels, labels and class names: identifies the data exactly."""
        digest = hashlib.sha256()
        digest.update("\n".join(self.class_names).encode())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int32).tobytes())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        return "sha256:" + digest.hexdigest()[:32]

    def subset(self, index: np.ndarray) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.class_names, self.source)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_cifar10_archive(path: str | os.PathLike, part: str, policy: Preprocessing = Preprocessing(),
                         reporter: Reporter | None = None, cache_dir: Path | None = None) -> ImageSet:
    """Read ``train`` or ``test`` of the CIFAR-10 JPEG archive (``<part>/<class>/*.jpg``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{file_sha256(path)}{policy}".encode()).hexdigest()[:20]
        cache = Path(cache_dir) / f"cifar10-{key}-{part}.npz"
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as stored:
                return ImageSet(stored["images"], stored["labels"], CIFAR10_CLASSES, str(path))
    images, labels, skipped = [], [], []
    reporter = reporter or SilentReporter()
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"not a readable tar archive: {path.name} ({exc})") from None
    with archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] != part:
                continue
            if parts[-2] not in CIFAR10_CLASSES or not is_image_path(Path(parts[-1])):
                continue
            data = archive.extractfile(member).read()
            try:
                report = load_image(data, policy, name=member.name)
            except ImageRejected as exc:
                skipped.append((member.name, str(exc)))
                continue
            images.append(report.array)
            labels.append(CIFAR10_CLASSES.index(parts[-2]))
            if len(labels) % 5000 == 0:
                reporter.progress(0.0, f"decoded {len(labels)} {part} images")
            if reporter.cancelled():
                raise DataError("cancelled")
    if not labels:
        raise DataError(f"{path.name} has no '{part}/<class>/*.jpg' images: not the CIFAR-10 archive")
    result = ImageSet(np.stack(images), np.asarray(labels, np.int32), CIFAR10_CLASSES, str(path),
                      tuple(skipped))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=result.images, labels=result.labels)
        os.replace(tmp, cache)
    return result


def load_class_folders(root: str | os.PathLike, policy: Preprocessing = Preprocessing(),
                       reporter: Reporter | None = None) -> ImageSet:
    """Read a folder with one subfolder per class; unreadable files are skipped and listed."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root.name} needs at least two class subfolders, found {len(classes)}")
    reporter = reporter or SilentReporter()
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).rglob("*"))
             if f.is_file() and is_image_path(f)]
    images, labels, skipped = [], [], []
    for n, (file, label) in enumerate(files):
        if reporter.cancelled():
            raise DataError("cancelled")
        try:
            images.append(load_image(file, policy).array)
            labels.append(label)
        except ImageRejected as exc:
            skipped.append((str(file.relative_to(root)), str(exc)))
        if n % 500 == 0:
            reporter.progress(n / max(len(files), 1), f"read {n} of {len(files)} images")
    empty = [c for i, c in enumerate(classes) if i not in set(labels)]
    if empty:
        raise DataError(f"no readable image in class folder(s): {', '.join(empty)}")
    return ImageSet(np.stack(images), np.asarray(labels, np.int32), tuple(classes), str(root),
                    tuple(skipped))


def split(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Stratified split into (train, validation); each class keeps at least one training image."""
    rng = np.random.default_rng(seed)
    val_index = []
    for label in range(len(data.class_names)):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        take = min(int(round(len(members) * fraction)), max(len(members) - 1, 0))
        val_index.extend(members[:take])
    val_mask = np.zeros(len(data), bool)
    val_mask[np.asarray(val_index, dtype=np.int64)] = True
    return data.subset(np.flatnonzero(~val_mask)), data.subset(np.flatnonzero(val_mask))
