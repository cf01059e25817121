"""Importing a ``.keras`` file from elsewhere into the user's checkpoint library: loaded with
``safe_mode`` in a staging folder, checked (an image input, probabilities out, a sidecar that
belongs to it) and only then given a free name in the library."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from .archive_limits import check_archive_sizes
from .checkpoints import (MAX_INPUT_SIDE, CheckpointError, CheckpointInfo, atomic_write_bytes,
                          check_compatible, file_sha256, read_sidecar, sidecar_path)
from .library import _safe_stem, check_name, free_name
from .reporting import first_line


def import_checkpoint(source: Path, folder: Path, class_names: tuple[str, ...] | None = None) -> Path:
    """Copy a ``.keras`` file (and its sidecar, if any) into ``folder`` after checking it.

    The copy is loaded with ``safe_mode=True``: Lambda layers and unknown custom objects are
    refused. It must have one input, an (H, W, 3) image of at most ``MAX_INPUT_SIDE`` pixels a
    side, and one output, (batch, classes) probabilities (it is run on a few test images). Without
    a sidecar, ``class_names`` (or "class 1".."class N") name the outputs. Nothing in ``folder``
    changes unless every check passes.

    Raises:
        CheckpointError: with a one-line reason.
    """
    source = Path(source)
    if source.suffix.lower() != ".keras" or not source.is_file():
        raise CheckpointError(f"{source.name} is not a .keras file")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = check_name(_safe_stem(source.stem))
    _check_sizes(source, source.name)  # before a copy of it: a sparse file of 64 GB fills a disk
    staging = Path(tempfile.mkdtemp(prefix=".import.", dir=folder))
    try:
        staged = staging / "model.keras"
        shutil.copyfile(source, staged)
        model = _load_untrusted(staged, source.name)
        shape = _check_shapes(model)  # before anything reads the shapes or runs the model
        info = _imported_info(source, model, class_names)
        check_compatible(model, info)
        _check_probabilities(model, shape)
        digest = file_sha256(staged)
        if info.model_sha256 and info.model_sha256 != digest:
            raise CheckpointError("its sidecar was written for a different model file "
                                  "(SHA-256 differs)")
        return _place_new(staged, replace(info, model_sha256=digest), folder, wanted)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_shapes(model) -> tuple[int, int, int]:
    """The (height, width, 3) input of a model with one image input and one (batch, classes)
    output; anything else is refused before it is run (a huge input would exhaust memory)."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or not outputs:  # a Sequential saved before it was built
        raise CheckpointError("it has no defined input or output (saved before it was built)")
    if len(inputs) != 1 or len(outputs) != 1:
        raise CheckpointError(f"it has {_count(len(inputs), 'input')} and "
                              f"{_count(len(outputs), 'output')}; a classifier has one image "
                              f"input and one output")
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[2] != 3 or None in shape:
        raise CheckpointError(f"input shape {shape} is not an (height, width, 3) image")
    if max(shape[:2]) > MAX_INPUT_SIDE:
        raise CheckpointError(f"its input of {shape[1]}x{shape[0]} pixels is larger than "
                              f"{MAX_INPUT_SIDE} a side: classifying would exhaust memory")
    out = tuple(model.output_shape)
    if len(out) != 2 or out[1] is None:
        raise CheckpointError(f"output shape {out} is not (batch, classes) probabilities")
    return shape


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _check_probabilities(model, shape: tuple[int, int, int]) -> None:
    """Refuse a model whose outputs are not probabilities that sum to 1 on each of a few images.

    Not only a blank image: sigmoid outputs of a two-class model are (0.5, 0.5) there and pass,
    then read 100 % for both classes on real images. Mid-grey and fixed random noise (pixels are
    0-255, as the app feeds them) catch that; the seed keeps a refusal repeatable."""
    import numpy as np

    noise = np.random.default_rng(0).random((2, *shape), np.float32) * 255.0
    flat = np.zeros((1, *shape), np.float32), np.full((1, *shape), 127.5, np.float32)
    images = np.concatenate([*flat, noise])
    try:
        raw = model.predict_on_batch(images)
    except Exception as exc:  # noqa: BLE001 - untrusted model: any failure is one line
        raise CheckpointError(f"it fails on a test image: {first_line(exc)[:160]}") from None
    if isinstance(raw, (dict, list, tuple)):  # one output, but named: the app expects an array
        raise CheckpointError(f"its output is a {type(raw).__name__}, not one array of "
                              f"probabilities")
    # a model trained under mixed bfloat16 may end in a bfloat16 softmax: its rows sum to 1
    # only within what 8 bits of mantissa hold (1.00098, 0.99902...)
    eps = {"bfloat16": 2.0 ** -7, "float16": 2.0 ** -10}.get(str(getattr(raw, "dtype", "")), 0.0)
    tolerance = max(1e-3, 2.0 * np.sqrt(model.output_shape[1]) * eps)
    probs = np.asarray(raw, np.float64)
    if probs.shape != (len(images), model.output_shape[1]):
        raise CheckpointError(f"its output {probs.shape} for {len(images)} images is not "
                              f"(images, classes) probabilities")
    if not np.isfinite(probs).all():  # NaN weights (saved from a diverged run, say)
        raise CheckpointError("its output is not a number (NaN): the weights are broken")
    if probs.min() < -1e-6 or np.abs(probs.sum(axis=1) - 1.0).max() > tolerance:
        raise CheckpointError("its output is not class probabilities that sum to 1 "
                              "(no softmax at the end)")


def _place_new(staged: Path, info: CheckpointInfo, folder: Path, wanted: str) -> Path:
    """Move a checked model into ``folder`` as ``wanted`` or the next free "wanted (n)", never
    replacing a file that appeared meanwhile (a rename, an undo, another app instance).

    The sidecar claims the name first, then the model joins it: the library never lists a model
    without its sidecar, even for a moment, and a crash in between leaves only a sidecar (which
    lists nothing and keeps the name taken)."""
    for _ in range(100):
        name = free_name(folder, wanted)
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


def _check_sizes(path: Path, shown: str) -> None:
    """``archive_limits.check_archive_sizes``, its reason naming the file being imported."""
    try:
        check_archive_sizes(path)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot import {shown}: {exc}") from None


def _load_untrusted(path: Path, shown: str = ""):
    _check_sizes(path, shown or path.name)  # (the copy Keras reads, not only the original)
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
            return read_sidecar(side)
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
