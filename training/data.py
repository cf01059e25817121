"""Labelled image sets in memory: the CIFAR-10 JPEG archive, the official CIFAR-10 python batches
and folders with one subfolder per class.

Images are decoded once through the one preprocessing path into uint8 arrays; decoding the
60,000-image archive is cached per user (keyed by the archive's hash and the preprocessing).
Python batches are pickles, so they are read with an unpickler that builds nothing but plain
containers, bytes and numpy arrays.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import logging
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoints import atomic_write_bytes
from .checkpoints import file_sha256  # noqa: F401 (also used by callers of this module)
from .preprocessing import ImageRejected, Preprocessing, is_image_path, load_image
from .reporting import Reporter, SilentReporter

log = logging.getLogger(__name__)

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
    files: tuple[str, ...] = field(default=())  # each image's file below ``source``; () unknown

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
        files = tuple(self.files[i] for i in np.asarray(index).reshape(-1)) if self.files else ()
        return ImageSet(self.images[index], self.labels[index], self.class_names, self.source,
                        files=files)

    def file_of(self, i: int) -> str:
        """Image ``i``'s file below the source ("test/cat/0003.jpg"), or "" when not known."""
        return self.files[i] if self.files else ""


def load_cifar10_archive(path: str | os.PathLike, part: str, policy: Preprocessing = Preprocessing(),
                         reporter: Reporter | None = None, cache_dir: Path | None = None) -> ImageSet:
    """Read ``train`` or ``test`` of the CIFAR-10 JPEG archive (``<part>/<class>/*.jpg``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{file_sha256(path)}{policy}files".encode()).hexdigest()[:20]
        cache = Path(cache_dir) / f"cifar10-{key}-{part}.npz"
        if cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as stored:
                    files = tuple(stored["files"].tolist()) if "files" in stored.files else ()
                    skipped = tuple(zip(stored["skipped_files"].tolist(),
                                        stored["skipped_reasons"].tolist())) \
                        if "skipped_files" in stored.files else ()
                    cached = ImageSet(stored["images"], stored["labels"], CIFAR10_CLASSES,
                                      str(path), skipped, files)
                if cached.images.ndim == 4 and len(cached.images) == len(cached.labels) > 0:
                    return cached
            except Exception:  # noqa: BLE001 - a damaged cache is a cache miss: decode again
                log.warning("ignoring the unreadable decode cache %s", cache, exc_info=True)
    images, labels, skipped, files = [], [], [], []
    reporter = reporter or SilentReporter()
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"not a readable tar archive: {path.name} ({exc})") from None
    try:
        _read_archive(archive, path, part, policy, reporter, images, labels, skipped, files)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # cut short, corrupt
        raise DataError(f"{path.name} is damaged or incomplete (a download cut short?): "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not labels:
        raise DataError(f"{path.name} has no '{part}/<class>/*.jpg' images: not the CIFAR-10 archive")
    result = ImageSet(np.stack(images), np.asarray(labels, np.int32), CIFAR10_CLASSES, str(path),
                      tuple(skipped), tuple(files))
    if cache is not None:
        # through a unique temporary file: two processes decoding the same archive at once (two
        # app windows, parallel training runs) must not collide
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            np.savez(buffer, images=result.images, labels=result.labels,
                     files=np.asarray(result.files, dtype=str),  # what was skipped, and why:
                     skipped_files=np.asarray([f for f, _ in skipped], dtype=str),  # said again
                     skipped_reasons=np.asarray([r for _, r in skipped], dtype=str))
            atomic_write_bytes(cache, buffer.getbuffer())
        except OSError:  # a full disk costs the next check its speed, not this one its data
            log.warning("could not write the decode cache %s", cache, exc_info=True)
    return result


def _read_archive(archive, path, part, policy, reporter, images, labels, skipped, files) -> None:
    """Decode ``part``'s class-folder JPEGs of an open CIFAR-10 archive into the given lists."""
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
            files.append(member.name)
            if len(labels) % 5000 == 0:
                reporter.progress(0.0, f"decoded {len(labels)} {part} images")
            if reporter.cancelled():
                raise DataError("cancelled")


def load_class_folders(root: str | os.PathLike, policy: Preprocessing = Preprocessing(),
                       reporter: Reporter | None = None, min_classes: int = 2,
                       allow_empty: bool = False) -> ImageSet:
    """Read a folder with one subfolder per class; unreadable files are skipped and listed.

    Training needs two classes with images each; an evaluation takes one class, or a class
    folder left empty (``min_classes=1, allow_empty=True``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < min_classes:
        need = "one class subfolder" if min_classes == 1 else f"{min_classes} class subfolders"
        raise DataError(f"{root.name} needs at least {need.replace('2', 'two')}, found "
                        f"{len(classes)}")
    for name in classes:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # bytes of another encoding (an old zip unpacked here)
            shown = name.encode("utf-8", "surrogateescape").decode("latin-1")
            raise DataError(f"the class folder name {shown!r} is not UTF-8 text: rename the "
                            "folder") from None
    from .predict import iter_image_files

    reporter = reporter or SilentReporter()
    files, unreadable = [], []
    for i, c in enumerate(classes):  # listing a huge tree stops at once on cancel
        found = sorted(iter_image_files(root / c, reporter.cancelled, unreadable))
        if reporter.cancelled():
            raise DataError("cancelled")
        files += [(f, i) for f in found]
    images, labels, skipped, names = [], [], [], []
    for where, why in unreadable:  # a subfolder that cannot be read: listed, not a crash
        skipped.append((str(Path(where).relative_to(root)) + "/", f"folder cannot be read: {why}"))
    for n, (file, label) in enumerate(files):
        if reporter.cancelled():
            raise DataError("cancelled")
        try:
            images.append(load_image(file, policy).array)
            labels.append(label)
            names.append(file.relative_to(root).as_posix())
        except ImageRejected as exc:
            skipped.append((str(file.relative_to(root)), str(exc)))
        if n % 500 == 0:
            reporter.progress(n / max(len(files), 1), f"read {n} of {len(files)} images")
    empty = [c for i, c in enumerate(classes) if i not in set(labels)]
    if empty and not (allow_empty and images):
        raise DataError(f"no readable image in class folder(s): {', '.join(empty)}")
    # the source as an absolute path: evaluations of two folders named alike stay apart
    return ImageSet(np.stack(images), np.asarray(labels, np.int32), tuple(classes),
                    str(root.resolve()), tuple(skipped), tuple(names))


def load_labelled(path: str | os.PathLike, part: str = "train", policy: Preprocessing = Preprocessing(),
                  reporter: Reporter | None = None, cache_dir: Path | None = None,
                  evaluation: bool = False) -> ImageSet:
    """Any supported labelled data set: the CIFAR-10 JPEG archive (a file), the CIFAR-10 python
    batches (a folder with ``batches.meta``/``data_batch_*``) or class folders (any other folder).

    ``part`` ("train" or "test") picks the part of the two CIFAR-10 forms; class folders have
    one part only and are returned whole; for an ``evaluation`` they may hold one class, or
    some class folders left empty.
    """
    path = Path(path)
    if path.is_file():
        return load_cifar10_archive(path, part, policy, reporter, cache_dir)
    if path.is_dir() and is_cifar10_batches(path):
        return load_cifar10_batches(path, part, policy, reporter)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    if evaluation:
        return load_class_folders(path, policy, reporter, min_classes=1, allow_empty=True)
    return load_class_folders(path, policy, reporter)


# -- the official CIFAR-10 python batches ---------------------------------------------------------

_NUMPY_GLOBALS = {  # what pickled numpy arrays need, and nothing that can run other code
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds plain containers, bytes, strings, numbers and numpy arrays; refuses any other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refused: the pickle asks for {module}.{name}")
        if module.startswith("numpy.core."):
            module = "numpy._core." + module.split(".", 2)[2]  # numpy 2 name, no deprecation warning
        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: the pickle uses persistent ids")


def restricted_unpickle(path: Path) -> object:
    """Unpickle ``path`` allowing only plain data and numpy arrays (CIFAR's py2 pickles included)."""
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle, encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        text = str(exc) if str(exc).startswith("refused") else f"not a readable pickle ({exc})"
        raise DataError(f"{path.name}: {text}") from None
    except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is a reason
        # (LookupError from an allowed codec call, RecursionError, ... never a traceback)
        raise DataError(f"{path.name}: not a readable pickle ({type(exc).__name__})") from None


def _plain_keys(obj: object, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"{path.name}: unexpected content (a {type(obj).__name__}, not a dict)")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def is_cifar10_batches(folder: Path) -> bool:
    return (folder / "batches.meta").is_file() or any(folder.glob("data_batch_*"))


def load_cifar10_batches(folder: str | os.PathLike, part: str = "train",
                         policy: Preprocessing = Preprocessing(),
                         reporter: Reporter | None = None) -> ImageSet:
    """Read the official CIFAR-10 python version (``data_batch_1..5`` or ``test_batch``)."""
    folder = Path(folder)
    if tuple(policy.size) != (32, 32):
        raise DataError("CIFAR-10 batches are 32x32; this checkpoint expects another input size")
    class_names = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        meta = _plain_keys(restricted_unpickle(folder / "batches.meta"), folder / "batches.meta")
        names = meta.get("label_names")
        if (not isinstance(names, list) or len(names) < 2
                or not all(isinstance(n, (bytes, str)) for n in names)):
            raise DataError("batches.meta: unexpected content (no list of label_names)")
        class_names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n
                            for n in names)
    files = (sorted(folder.glob("data_batch_*")) if part == "train" else
             [folder / "test_batch"] if (folder / "test_batch").is_file() else [])
    if not files:
        raise DataError(f"{folder.name} has no {'data_batch_*' if part == 'train' else 'test_batch'} file")
    images, labels, names = [], [], []
    for n, file in enumerate(files):
        if reporter is not None:
            if reporter.cancelled():
                raise DataError("cancelled")
            reporter.progress(n / len(files), f"reading {file.name}")
        batch = _plain_keys(restricted_unpickle(file), file)
        data, batch_labels = batch.get("data"), batch.get("labels")
        if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
                or data.shape[1] != 3072 or not isinstance(batch_labels, list)
                or len(batch_labels) != len(data)):
            raise DataError(f"{file.name}: unexpected content (want 'data' uint8 Nx3072 and 'labels')")
        label_array = np.asarray(batch_labels)
        if (label_array.dtype.kind not in "iu" or label_array.min(initial=0) < 0
                or label_array.max(initial=0) >= len(class_names)):
            raise DataError(f"{file.name}: labels outside the {len(class_names)} classes")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(label_array.astype(np.int32))
        stored = batch.get("filenames")  # the original batches name every image
        if (isinstance(stored, list) and len(stored) == len(data)
                and all(isinstance(x, (bytes, str)) for x in stored)):
            names.extend(f"{file.name}/" + (x.decode("utf-8", "replace") if isinstance(x, bytes)
                                            else x) for x in stored)
        else:
            names.extend(f"{file.name}/#{i}" for i in range(len(data)))
    return ImageSet(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                    class_names, str(folder), files=tuple(names))


# -- the data check shown before training -----------------------------------------------------------

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
        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        first = first_label.setdefault(key, int(label))
        conflicting += first != int(label)
    duplicates = len(data) - len(first_label)
    takes = [validation_take(c, val_fraction) for c in counts]
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
        warnings.append(f"{duplicates} duplicate image(s){extra}")
    return DataCheck(tuple(names), tuple(counts), tuple(data.skipped), duplicates, conflicting,
                     len(data) - sum(takes), sum(takes), tuple(warnings), val_fraction)


def split_warning(names, counts, val_fraction: float) -> str:
    """The warning for classes the split leaves without validation images ("" for none)."""
    no_val = [n for n, c in zip(names, counts) if validation_take(c, val_fraction) == 0]
    return f"no validation images for: {', '.join(no_val)}" if val_fraction > 0 and no_val else ""


def validation_take(count: int, fraction: float) -> int:
    """How many of a class's ``count`` images the split holds out (at least one stays to train)."""
    return min(int(round(count * fraction)), max(count - 1, 0))


def split(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Stratified split into (train, validation); each class keeps at least one training image."""
    rng = np.random.default_rng(seed)
    val_index = []
    for label in range(len(data.class_names)):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        val_index.extend(members[:validation_take(len(members), fraction)])
    val_mask = np.zeros(len(data), bool)
    val_mask[np.asarray(val_index, dtype=np.int64)] = True
    return data.subset(np.flatnonzero(~val_mask)), data.subset(np.flatnonzero(val_mask))
