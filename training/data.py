"""Labelled image sets in memory: the CIFAR-10 JPEG archive, the official CIFAR-10 python batches
and folders with one subfolder per class (the python batches: ``cifar_batches``; the split and
the data check: ``splits``).

Images are decoded once through the one preprocessing path into uint8 arrays; decoding the
60,000-image archive is cached per user (keyed by the archive's hash and the preprocessing).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoints import atomic_write_bytes
from .checkpoints import file_sha256  # noqa: F401 (also used by callers of this module)
from .preprocessing import MAX_FILE_BYTES, ImageRejected, Preprocessing, is_image_path, load_image
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
    left_out: int | None = None  # files ``skipped`` stands for (one entry can name many); None: one each
    # of those, the files left out for their format (HEIC photos, a Thumbs.db), below ``source``:
    # a class folder's note on them is not a folder that could not be read
    other_formats: tuple[str, ...] = field(default=())

    def files_left_out(self) -> int:
        """How many files were left out: an entry for a class's files in formats the app does not
        read counts each of them; an unreadable folder counts one."""
        return len(self.skipped) if self.left_out is None else self.left_out

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
    except OSError as exc:
        raise DataError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    except tarfile.TarError:
        raise DataError(f"{path.name} is not a data set the app reads: a file must be the "
                        "CIFAR-10 archive (.tar.gz); a folder, CIFAR-10's python batches or "
                        "one folder of images per class") from None
    try:
        others = _read_archive(archive, path, part, policy, reporter, images, labels, skipped,
                               files)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # cut short, corrupt
        raise DataError(f"{path.name} is damaged or incomplete (a download cut short?): "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    except MemoryError:  # (the decoded images themselves: an archive of millions of them)
        raise DataError(f"{path.name} needs more memory to read than this computer has free") \
            from None
    if not labels:
        raise DataError(f"{path.name} has no '{part}/<class>/*.jpg' images: not the CIFAR-10 "
                        "archive (unpack your own data and give its folder of class folders)")
    _check_cifar10_classes(path, part, labels, others)
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


def _read_archive(archive, path, part, policy, reporter, images, labels, skipped,
                  files) -> set[str]:
    """Decode ``part``'s class-folder JPEGs of an open CIFAR-10 archive into the given lists;
    return the names of class folders there that are not CIFAR-10's."""
    others = set()
    with archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] != part:
                continue
            if not is_image_path(Path(parts[-1])):
                continue
            if parts[-2] not in CIFAR10_CLASSES:
                others.add(parts[-2])
                continue
            # the limit files on disk have: a sparse or PAX header declares gigabytes in a
            # 200-byte archive, a gzip bomb holds them, and reading it whole allocated them all
            if member.size > MAX_FILE_BYTES:
                skipped.append((member.name, f"too large: {member.size / 2**20:.0f} MB file "
                                             f"(limit {MAX_FILE_BYTES // 2**20} MB)"))
                continue
            # bounded all the same (and not read(limit): that allocates the limit at once)
            data = archive.extractfile(member).read(min(member.size, MAX_FILE_BYTES))
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
    return others


def _check_cifar10_classes(path: Path, part: str, labels: list, others: set[str]) -> None:
    """Refuse an archive laid out like CIFAR-10's that holds other classes (a user's own data
    packed as train/<class>/): read as CIFAR-10 it trained ten classes, most of them empty,
    and dropped the others without a word."""
    present = set(labels)
    empty = [c for i, c in enumerate(CIFAR10_CLASSES) if i not in present]
    if others or empty:
        what = (f"class folder(s) {', '.join(sorted(others)[:3])} in {part}/ are not CIFAR-10's"
                if others else f"no {part} images of {', '.join(empty[:3])}")
        raise DataError(f"{path.name} is not the CIFAR-10 archive ({what}): unpack your own "
                        "data and give its folder of class folders")


TRAIN_PARTS = {"train", "training"}
OTHER_PARTS = {"test", "testing", "val", "valid", "validation", "dev", "eval", "evaluation"}


def _data_set_parts(names: set[str]) -> bool:
    """Whether folder names (lower case) are a data set's parts rather than its classes: a
    train part and another (Kaggle's and Roboflow's train/valid/test, train/validation...)."""
    return bool(names & TRAIN_PARTS) and bool(names & OTHER_PARTS) \
        and names <= TRAIN_PARTS | OTHER_PARTS


def load_class_folders(root: str | os.PathLike, policy: Preprocessing = Preprocessing(),
                       reporter: Reporter | None = None, min_classes: int = 2,
                       allow_empty: bool = False) -> ImageSet:
    """Read a folder with one subfolder per class; unreadable files are skipped and listed.

    Training needs two classes with images each; an evaluation takes one class, or a class
    folder left empty (``min_classes=1, allow_empty=True``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    # not classes: hidden folders, and the __MACOSX folder of ._ companions a Mac's zip leaves
    classes = sorted(p.name for p in root.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")
    parts = {c.lower() for c in classes}
    if _data_set_parts(parts) and all(any(q.is_dir() for q in (root / c).iterdir())
                                      for c in classes):
        raise DataError(f"{root.name} holds a data set's parts ({', '.join(classes)}), each with "
                        "class folders: choose its train folder to train on, its test folder "
                        "to evaluate (as classes, the test images would be trained on)")
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
    files, unreadable, skipped, other_formats = [], [], [], []
    left_out = 0  # files the skipped entries stand for
    not_images = {}  # class -> (how many of its files are in other formats, their kinds)
    for i, c in enumerate(classes):  # listing a huge tree stops at once on cancel
        others = []
        found = sorted(iter_image_files(root / c, reporter.cancelled, unreadable, others=others))
        if reporter.cancelled():
            raise DataError("cancelled")
        files += [(f, i) for f in found]
        if others:  # said, not silently left out (a class of HEIC photos looked empty)
            theirs = sorted(f.relative_to(root).as_posix() for f in others)
            left_out += len(others)
            other_formats += theirs
            not_images[c] = (f"{len(others)} file(s) not in an image format the app reads",
                             format_kinds(theirs))
            skipped.append((_other_formats_entry(c, theirs), "{} ({})".format(*not_images[c])))
    images, labels, names = [], [], []
    for where, why in unreadable:  # a subfolder that cannot be read: listed, not a crash
        skipped.append((str(Path(where).relative_to(root)) + "/", f"folder cannot be read: {why}"))
        left_out += 1
    for n, (file, label) in enumerate(files):
        if reporter.cancelled():
            raise DataError("cancelled")
        try:
            images.append(load_image(file, policy).array)
            labels.append(label)
            names.append(file.relative_to(root).as_posix())
        except ImageRejected as exc:
            skipped.append((str(file.relative_to(root)), str(exc)))
            left_out += 1
        if n % 500 == 0:
            reporter.progress(n / max(len(files), 1), f"read {n} of {len(files)} images")
    present = set(labels)  # (once, not per class)
    empty = [c for i, c in enumerate(classes) if i not in present]
    if empty and not (allow_empty and images):  # each with why, where the app knows it
        raise DataError("no readable image in class folder(s): " + ", ".join(
            "{} ({}: {})".format(c, *not_images[c]) if c in not_images else c for c in empty))
    # the source as an absolute path: evaluations of two folders named alike stay apart
    return ImageSet(np.stack(images), np.asarray(labels, np.int32), tuple(classes),
                    str(root.resolve()), tuple(skipped), tuple(names), left_out,
                    tuple(other_formats))


def format_kinds(files) -> str:
    """The kinds of ``files`` as a user knows them: ".db, .heic" (a file without one by its name)."""
    kinds = sorted({Path(f).suffix.lower() or Path(f).name for f in files})
    return ", ".join(kinds[:4]) + (", ..." if kinds[4:] else "")


def _other_formats_entry(folder: str, files: list[str]) -> str:
    """How the skipped list names a class folder's ``files`` in other formats: the one file
    ("sky/Thumbs.db"), or all of them ("phone/*.heic"). Never "sky/" alone: that is a folder
    that could not be read, all of its images left out."""
    if len(files) == 1:
        return files[0]
    suffixes = {Path(f).suffix for f in files}  # as written: a pattern to find them by
    return f"{folder}/*{suffixes.pop()}" if len(suffixes) == 1 and "" not in suffixes \
        else f"{folder}/*"


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
    from .cifar_batches import is_cifar10_batches, load_cifar10_batches

    if path.is_dir() and is_cifar10_batches(path):
        return load_cifar10_batches(path, part, policy, reporter)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    if evaluation:
        return load_class_folders(path, policy, reporter, min_classes=1, allow_empty=True)
    return load_class_folders(path, policy, reporter)
