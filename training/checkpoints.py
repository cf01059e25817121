"""Checkpoint files: a ``.keras`` model plus a JSON sidecar, written atomically, loaded safely.

``NAME.keras`` holds the network; ``NAME.json`` beside it records what a user and the app need to
trust and reproduce it: class names, input shape, preprocessing, metrics, data fingerprint, training
config, seed, parent, creation time, library versions and the SHA-256 of the model file.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import stat
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .preprocessing import Preprocessing
from .reporting import first_line
from .sidecar_format import MAX_SIDECAR_CHARS, check_types, jsonable, readable_json

SIDECAR_FORMAT = 1
# Every image is scaled to the network's input before it is classified, and images go through
# in batches: a 15000-pixel side is 2.7 GB per image and ran a machine out of memory. Published
# image classifiers take 224 to 600 pixels; 1024 leaves room for those and refuses the absurd.
MAX_INPUT_SIDE = 1024


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is a one-line reason."""


@dataclass(frozen=True)
class CheckpointInfo:
    """The sidecar's contents."""

    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int] = (32, 32, 3)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    tta: str = "none"  # "hflip": average with the horizontally flipped image
    metrics: dict = field(default_factory=dict)
    data_fingerprint: str = ""
    config: dict = field(default_factory=dict)
    seed: int | None = None
    parent: str | None = None  # the name it was fine-tuned from (follows a rename)
    parent_sha256: str = ""  # that parent's model_sha256: which checkpoint of that name
    created: str = ""
    versions: dict = field(default_factory=dict)
    command: str = ""
    history: dict = field(default_factory=dict)
    name: str = ""
    model_sha256: str = ""
    data_source: str = ""  # the path the training data was read from, when known
    evaluations: dict = field(default_factory=dict)  # data description -> evaluation summary
    calibration: dict = field(default_factory=dict)  # low-confidence threshold (calibration.py)

    def to_json(self) -> str:
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict()
        data["format"] = SIDECAR_FORMAT
        return readable_json(data, sort_keys=True, default=jsonable)

    @classmethod
    def from_json(cls, text: str) -> "CheckpointInfo":
        try:
            if len(text) > MAX_SIDECAR_CHARS:  # ours are kilobytes; the table reads every one
                raise ValueError(f"{len(text) / 1e6:.0f} MB is far more than a sidecar holds")
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            names = data["class_names"]
            if not (isinstance(names, list) and len(names) >= 2
                    and all(isinstance(n, str) for n in names)):
                raise ValueError("class_names must list at least two names")
            shape = tuple(int(v) for v in data.get("input_shape", (32, 32, 3)))
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"input_shape {shape} is not (height, width, 3)")
            if not all(v > 0 for v in shape):
                raise ValueError(f"input_shape {shape} is not an image size")
            if max(shape[:2]) > MAX_INPUT_SIDE:
                raise ValueError(f"input_shape {shape} is larger than {MAX_INPUT_SIDE} pixels a "
                                 f"side, more than classifying could hold in memory")
            known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            check_types(known)
            preprocessing = data.get("preprocessing", {})
            if not isinstance(preprocessing, dict):
                raise ValueError("preprocessing is not an object")
            # the images are resized to the network's input: unsaid, it is that size
            preprocessing = {"size": [shape[1], shape[0]], **preprocessing}
            policy = Preprocessing.from_dict(preprocessing)
            if tuple(policy.size) != (shape[1], shape[0]):
                raise ValueError(f"preprocessing size {tuple(policy.size)} (width, height) is "
                                 f"not the input shape {shape}")
            if len(set(names)) != len(names):
                raise ValueError("class_names names a class twice")
            if data.get("tta", "none") not in ("none", "hflip"):
                raise ValueError(f"tta {data['tta']!r} is not 'none' or 'hflip'")
            known.update(class_names=tuple(names), input_shape=shape, preprocessing=policy)
            return cls(**known)
        except Exception as exc:  # noqa: BLE001 - untrusted text: any failure is one line
            raise CheckpointError(f"invalid sidecar: {first_line(exc)}") from None


def sidecar_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def library_versions() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version(), "platform": sys.platform}
    for dist in ("keras", "tensorflow-cpu", "tensorflow", "jax", "numpy", "pillow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    versions["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600; a saved file should look like any other
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """0666 less the process umask: the mode ``open(path, "w")`` would have given the file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pending_sidecar_path(model_path: str | os.PathLike) -> Path:
    """Where :func:`save_checkpoint` puts the new sidecar until the new model is in place."""
    path = Path(model_path)
    return path.with_name(f".{path.stem}.json.pending")


def save_checkpoint(model, info: CheckpointInfo, path: str | os.PathLike) -> Path:
    """Save ``model`` to ``path`` (``.keras``) and its sidecar so that a crash at any moment
    leaves a checkpoint that loads, with the sidecar that belongs to its model.

    Order: the model goes to a temporary file (fsync), its SHA-256 into the new sidecar, written
    as ``.NAME.json.pending`` (fsync); then two renames: model, sidecar. Killed between the two,
    the folder holds the new model, the old sidecar and the pending one that names the new
    model's hash: :func:`read_info` then reads the pending one. Killed earlier, the old pair is
    untouched (a stale pending sidecar names a hash no model has and is ignored).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError("checkpoint path must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    settle_pending(path)  # an earlier save cut short: its sidecar first, before this one fails
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _file_mode())
    pending = pending_sidecar_path(path)
    try:
        model.save(tmp)
        digest = file_sha256(Path(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        info = replace(info, model_sha256=digest, name=info.name or path.stem,
                       created=info.created or now_iso(),
                       versions=info.versions or library_versions())
        atomic_write_bytes(pending, info.to_json().encode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, sidecar_path(path))
    _fsync_dir(path.parent)
    return path


def settle_pending(path: Path) -> None:
    """Finish a save killed between its two renames (its pending sidecar names the model now
    at ``path``: it becomes the sidecar), or drop a stale pending sidecar (a save killed
    earlier). Then a failing save can remove its own pending file without losing another's."""
    pending = pending_sidecar_path(path)
    if not pending.exists():
        return
    try:  # a sidecar written since (an evaluation) for the same model is the newer record
        current = read_sidecar(sidecar_path(path))
    except (CheckpointError, OSError, UnicodeDecodeError):
        current = None
    if _finished_pending(path, current) is not None:
        os.replace(pending, sidecar_path(path))
        _fsync_dir(path.parent)
    else:
        pending.unlink(missing_ok=True)


def _finished_pending(path, current: CheckpointInfo | None) -> CheckpointInfo | None:
    """The pending sidecar of a save killed between its two renames, when it names the model
    now at ``path`` and the sidecar ``current`` does not; else None (none, stale or cut short)."""
    pending = pending_sidecar_path(path)
    if not pending.exists():
        return None
    try:
        newer = read_sidecar(pending)
        if (newer.model_sha256 and (current is None or newer.model_sha256 != current.model_sha256)
                and newer.model_sha256 == file_sha256(Path(path))):
            return newer
    except (CheckpointError, OSError, UnicodeDecodeError):
        pass  # a pending sidecar cut short: the save never reached its renames
    return None


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_info(path: str | os.PathLike) -> CheckpointInfo:
    """Read and validate the sidecar of the checkpoint at ``path`` (the pending one of a save
    that was interrupted between its two renames, when it is the one naming the model's hash)."""
    side = sidecar_path(path)
    try:
        info = read_sidecar(side)
    except FileNotFoundError:
        info = None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read sidecar: {exc}") from None
    if (newer := _finished_pending(path, info)) is not None:
        return newer
    if info is None:
        if Path(path).is_dir() or not Path(path).exists():
            raise _not_a_checkpoint(Path(path))
        raise CheckpointError(f"no sidecar {side.name} next to the model")
    return info


class TooLarge(ValueError):
    """A file larger than its reader takes; ``size``: how large (in bytes) it said it was."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"larger than {limit / 1e6:.0f} MB ({size / 1e6:.0f} MB)")
        self.size = size


def read_small_file(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of ``path``, a plain file of at most ``limit`` bytes (a sidecar, a run record:
    files an untrusted hand may have put there). Opened without waiting: a pipe waits for a
    writer for ever (the window froze). Never read whole when larger: a sparse file of
    gigabytes takes no disk, and took twice its size in memory and a second per GB.

    Raises:
        OSError: as opening it does (FileNotFoundError: none there).
        ValueError: not a plain file; TooLarge (a ValueError) over ``limit``.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise ValueError("not a regular file")
        if status.st_size > limit:
            raise TooLarge(status.st_size, limit)
        data = handle.read(status.st_size + 1)  # (read(n) sets n bytes aside: not the limit)
        if len(data) > status.st_size:  # it grew meanwhile
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise TooLarge(len(data), limit)
    return data


def read_sidecar(side: Path) -> CheckpointInfo:
    """The sidecar file ``side``, read and checked (:func:`read_small_file`).

    Raises:
        OSError, UnicodeDecodeError: as reading the file does (FileNotFoundError: none there).
        CheckpointError: too large, not a plain file, or not a valid sidecar.
    """
    try:
        data = read_small_file(side, MAX_SIDECAR_CHARS)  # ours are ASCII: a byte a character
    except TooLarge as exc:
        raise CheckpointError(f"invalid sidecar: {exc.size / 1e6:.0f} MB is far more than a "
                              f"sidecar holds") from None
    except ValueError:
        raise CheckpointError(f"invalid sidecar: {Path(side).name} is not a file") from None
    return CheckpointInfo.from_json(data.decode("utf-8"))


def _not_a_checkpoint(path: Path) -> CheckpointError:
    return CheckpointError(f"{path} is a folder, not a .keras checkpoint" if path.is_dir()
                           else f"checkpoint not found: {path}")


def load_checkpoint(path: str | os.PathLike):
    """Load a checkpoint with Keras ``safe_mode=True`` and check it against its sidecar.

    Returns:
        (model, info)
    Raises:
        CheckpointError: with a one-line reason (corrupt file, unsafe content, mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise _not_a_checkpoint(path)
    info = read_info(path)
    if info.model_sha256 and file_sha256(path) != info.model_sha256:
        raise CheckpointError(f"{path.name} is not the model its sidecar was written for "
                              "(SHA-256 differs)")
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):  # Keras says "File not found" of a file cut short
        raise CheckpointError(f"cannot load {path.name}: not a whole .keras file (a .keras file "
                              "is a zip archive; this one is damaged or cut short)")
    try:
        from .archive_limits import check_archive_sizes  # (it raises CheckpointError)
        check_archive_sizes(path)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot load {path.name}: {exc}") from None
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for corrupt or unsafe files
        raise CheckpointError(f"cannot load {path.name}: {first_line(exc)}") from None
    check_compatible(model, info)
    return model, info


def check_compatible(model, info: CheckpointInfo) -> None:
    """Refuse a model whose input shape or class count disagrees with the sidecar."""
    shape = tuple(model.input_shape[1:])
    if shape != tuple(info.input_shape):
        raise CheckpointError(f"model input {shape} differs from sidecar {tuple(info.input_shape)}")
    classes = model.output_shape[-1]
    if classes != len(info.class_names):
        raise CheckpointError(f"model has {classes} outputs but the sidecar names "
                              f"{len(info.class_names)} classes")
