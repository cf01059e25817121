"""Per-user folders (platformdirs) and the bundled checkpoint's location."""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "PixelClassifier"
APP_AUTHOR = "PixelClassifier"


def project_root() -> Path:
    """Folder holding ``models/`` and ``resources/`` (the bundle's folder when frozen)."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def bundled_checkpoint() -> Path:
    return project_root() / "models" / "cifar10.keras"


def user_data_dir() -> Path:
    """Where user checkpoints live; ``PIXELCLASSIFIER_HOME`` overrides (tests, portable use)."""
    override = os.environ.get("PIXELCLASSIFIER_HOME")
    if override:
        return Path(override) / "data"
    import platformdirs
    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def user_cache_dir() -> Path:
    override = os.environ.get("PIXELCLASSIFIER_HOME")
    if override:
        return Path(override) / "cache"
    import platformdirs
    return Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))


def keras_home() -> Path:
    """Keras's own folder (``keras.json``), kept inside ours instead of ``~/.keras``."""
    return user_data_dir() / "keras"


def user_checkpoints_dir() -> Path:
    return user_data_dir() / "checkpoints"


def user_evaluations_dir() -> Path:
    """Evaluations of read-only checkpoints (the bundled one), which cannot go in their sidecar."""
    return user_data_dir() / "evaluations"


def user_log_dir() -> Path:
    """Where the app's rotating log file lives."""
    override = os.environ.get("PIXELCLASSIFIER_HOME")
    if override:
        return Path(override) / "logs"
    import platformdirs
    return Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))


def cannot_write(path: Path) -> str:
    """Why a file cannot be written at ``path`` (folders missing on the way would be made), or
    "". Nothing is left behind."""
    import tempfile

    if path.is_dir():
        return f"{path} is a folder: name a file"
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        return f"cannot write in {folder}: {exc.strerror or exc}"
    return ""


def reserve_checkpoint(path: Path) -> Path:
    """A new run's checkpoint file: ``path``, or the first free "NAME (2)", "NAME (3)", ... when
    a checkpoint or a run started at the same moment (same default name, to the second) has it.
    The name is held by a hidden placeholder made with O_CREAT|O_EXCL, so of two runs one wins
    it, until :func:`release_checkpoint`; the Checkpoints tab never lists it, and one a crash
    left is cleaned up with the saves' debris a day later (``library.clean_debris``)."""
    from .library import free_name  # its rule: any of a checkpoint's files takes the name

    folder, name = Path(path).parent, Path(path).stem
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = name if n == 1 else f"{name} ({n})"
        n += 1
        if free_name(folder, candidate) != candidate:
            continue
        held = _placeholder(folder / f"{candidate}.keras")
        try:
            os.close(os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue  # another run holds it
        if free_name(folder, candidate) == candidate:  # (not saved since by a run that held it)
            return folder / f"{candidate}.keras"
        held.unlink(missing_ok=True)


def release_checkpoint(path: Path) -> None:
    """Let go of a name :func:`reserve_checkpoint` gave: its checkpoint (if the run saved one)
    holds it now."""
    try:
        _placeholder(Path(path)).unlink(missing_ok=True)
    except OSError:  # (a folder gone read-only: the placeholder is debris, cleaned up later)
        pass


def _placeholder(checkpoint: Path) -> Path:
    return checkpoint.with_name(f".{checkpoint.stem}.reserved.tmp")
