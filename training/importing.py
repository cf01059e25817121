"""Importing a ``.keras`` file from elsewhere into the user's checkpoint library: loaded with
``safe_mode`` in a staging folder, checked (an image input, probabilities out, a sidecar that
belongs to it) and only then given a free name in the library."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from .checkpoints import (CheckpointError, CheckpointInfo, atomic_write_bytes, check_compatible,
                          file_sha256, sidecar_path)
from .library import _free_name, _safe_stem, check_name
from .reporting import first_line


def import_checkpoint(source: Path, folder: Path, class_names: tuple[str, ...] | None = None) -> Path:
    """Copy a ``.keras`` file (and its sidecar, if any) into ``folder`` after checking it.

    The copy is loaded with ``safe_mode=True``: Lambda layers and unknown custom objects are
    refused. Its input must be an (H, W, 3) image and its output must be probabilities (it is run
    once on a blank image). Without a sidecar, ``class_names`` (or "class 1".."class N") name the
    outputs. Nothing in ``folder`` changes unless every check passes.

    Raises:
        CheckpointError: with a one-line reason.
    """
    import numpy as np

    source = Path(source)
    if source.suffix.lower() != ".keras" or not source.is_file():
        raise CheckpointError(f"{source.name} is not a .keras file")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = check_name(_safe_stem(source.stem))
    staging = Path(tempfile.mkdtemp(prefix=".import.", dir=folder))
    try:
        staged = staging / "model.keras"
        shutil.copyfile(source, staged)
        model = _load_untrusted(staged, source.name)
        info = _imported_info(source, model, class_names)
        shape = tuple(model.input_shape[1:])
        if len(shape) != 3 or shape[2] != 3 or None in shape:
            raise CheckpointError(f"input shape {shape} is not an (height, width, 3) image")
        check_compatible(model, info)
        probs = np.asarray(model.predict_on_batch(np.zeros((1, *shape), np.float32)), np.float64)
        if not np.isfinite(probs).all():  # NaN weights (saved from a diverged run, say)
            raise CheckpointError("its output is not a number (NaN): the weights are broken")
        if probs.min() < -1e-6 or abs(probs.sum() - 1.0) > 1e-3:
            raise CheckpointError("its output is not class probabilities (no softmax at the end)")
        digest = file_sha256(staged)
        if info.model_sha256 and info.model_sha256 != digest:
            raise CheckpointError("its sidecar was written for a different model file "
                                  "(SHA-256 differs)")
        return _place_new(staged, replace(info, model_sha256=digest), folder, wanted)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _place_new(staged: Path, info: CheckpointInfo, folder: Path, wanted: str) -> Path:
    """Move a checked model into ``folder`` as ``wanted`` or the next free "wanted (n)", never
    replacing a file that appeared meanwhile (a rename, an undo, another app instance).

    The sidecar claims the name first, then the model joins it: the library never lists a model
    without its sidecar, even for a moment, and a crash in between leaves only a sidecar (which
    lists nothing and keeps the name taken)."""
    for _ in range(100):
        name = _free_name(folder, wanted)
        side = staged.with_name(f"{name}.json")
        atomic_write_bytes(side, replace(info, name=name).to_json().encode())
        target = folder / f"{name}.keras"
        if not _place_exclusive(side, sidecar_path(target)):
            continue  # a sidecar of that name appeared meanwhile
        try:
            placed = _place_exclusive(staged, target)
        except BaseException:
            sidecar_path(target).unlink(missing_ok=True)
            raise
        if placed:
            return target
        sidecar_path(target).unlink(missing_ok=True)  # ours: the model's name was taken
    raise CheckpointError(f"no free name for {wanted} in {folder}")


def _place_exclusive(source: Path, target: Path) -> bool:
    """Put ``source`` at ``target`` unless something is there (False then): a hard link, or a
    copy on a file system without them; a copy cut short (a full disk) leaves nothing."""
    try:
        os.link(source, target)  # fails if it exists, unlike a rename
        return True
    except FileExistsError:
        return False
    except OSError:
        pass
    try:
        with open(source, "rb") as src, open(target, "xb") as dst:
            try:
                shutil.copyfileobj(src, dst)
            except BaseException:
                dst.close()
                target.unlink(missing_ok=True)
                raise
    except FileExistsError:
        return False
    return True


def _load_untrusted(path: Path, shown: str = ""):
    import keras
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # zip errors, safe-mode refusals, unknown classes: all one line
        text = first_line(exc)
        if "lambda" in text.lower():
            text = "it contains a Lambda layer (arbitrary code), refused in safe mode"
        elif "custom" in text.lower() or "could not locate" in text.lower():
            text = f"it needs custom code that is not part of Keras ({text[:120]})"
        raise CheckpointError(f"cannot import {shown or path.name}: {text}") from None


def _imported_info(source: Path, model, class_names) -> CheckpointInfo:
    side = sidecar_path(source)
    if side.is_file():
        try:
            return CheckpointInfo.from_json(side.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot read sidecar: {exc}") from None
    count = int(model.output_shape[-1])
    names = tuple(class_names) if class_names else tuple(f"class {i + 1}" for i in range(count))
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise CheckpointError(f"each class needs its own name: {', '.join(twice)} is named twice")
    from .preprocessing import Preprocessing
    h, w = model.input_shape[1:3]
    return CheckpointInfo(class_names=names, input_shape=tuple(model.input_shape[1:]),
                          preprocessing=Preprocessing(size=(int(w or 32), int(h or 32))),
                          command=f"imported from {source}")
