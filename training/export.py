"""Export a checkpoint for use outside the app, and check that the export predicts like the app.

Formats (:data:`FORMATS`): ``keras`` (``model.keras``), ``savedmodel`` (``saved_model/``),
``tflite`` (float32, ``model.tflite``), ``tflite-int8`` (dynamic-range int8 weights,
``model_int8.tflite``) and ``onnx`` (``model.onnx``, needs the optional packages tf2onnx and
onnxruntime). Every export is a folder holding the artefact, ``labels.txt``, ``preprocessing.json``,
``parity.json`` and a ``README.md`` with a Pillow snippet that reproduces the app's preprocessing.

The exported graph takes float32 RGB 0-255 images (N, H, W, 3) and returns the probabilities the
app shows: the checkpoint's flip test-time augmentation is inside it, and it always computes in
float32 (TFLite and ONNX runtimes have no bfloat16 kernels).

Parity: after writing, the artefact is loaded with its own runtime, classifies a sample of at
least :data:`MIN_PARITY_IMAGES` images and is compared with the app's path
(:func:`training.predict.probabilities`). The export passes when top-1 agreement is 100 % and
no probability is more than 1e-3 from the app's; for ``tflite-int8`` and for checkpoints that
compute in a mixed precision (the export computes in float32), at least 99 % and 0.25, since
there the arithmetic legitimately differs. Every output row must sum to 1 (within 1e-3). A
failed export stays on disk but is flagged in ``parity.json``, the README and
:class:`ExportResult`; an export that could not be written or checked leaves nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .checkpoints import now_iso
from .export_formats import (WRITERS, ExportError, compute_dtypes, load_exported, onnx_modules,
                             quiet_tensorflow, serving_model)
from .export_notes import write_description, write_notes
from .parity import (LENIENT_AGREEMENT, LENIENT_MAX_DIFF, MAX_FLOAT_DIFF, MIN_PARITY_IMAGES,
                     STRICT_AGREEMENT, SYNTHETIC, ParitySample, parity, parity_sample)
from .paths import cannot_write
from .reporting import Reporter, SilentReporter, first_line

__all__ = ["FORMATS", "ExportError", "ExportResult", "MIN_PARITY_IMAGES", "ParitySample",
           "check_export", "export_checkpoint", "export_job", "load_exported", "parity",
           "parity_sample", "serving_model"]

FORMATS = ("keras", "savedmodel", "tflite", "tflite-int8", "onnx")
ARTEFACTS = {"keras": "model.keras", "savedmodel": "saved_model", "tflite": "model.tflite",
             "tflite-int8": "model_int8.tflite", "onnx": "model.onnx"}
@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how it compares with the app.

    Attributes:
        format: one of :data:`FORMATS`.
        folder: the export folder.
        artefact: the model file (or SavedModel folder) inside it.
        parity: ``images``, ``top1_agreement`` (0-1), ``max_abs_diff`` (largest absolute
            probability difference), ``min_agreement``, ``ok`` and ``sample`` (its source).
        ok: False when the export disagrees with the app: it is on disk but must not be shipped.
    """

    format: str
    folder: Path
    artefact: Path
    parity: dict = field(default_factory=dict)
    ok: bool = False

    def summary(self) -> str:
        """One line: what was written and the parity figures."""
        p = self.parity
        needs = f"{p['min_agreement']:.0%} top-1 agreement"
        if p.get("max_allowed_diff") is not None:
            needs += f" and probabilities within {p['max_allowed_diff']:g}"
        verdict = "OK" if self.ok else f"PARITY FAILED (needs {needs}; do not ship it)"
        if not self.ok and p["sample"] == SYNTHETIC:
            verdict += ("; synthetic images are ambiguous to a trained model, so check again "
                        "on labelled images")
        return (f"exported {self.format} to {self.folder}: parity on {p['images']} images "
                f"({p['sample']}): top-1 agreement {p['top1_agreement'] * 100:.2f} %, "
                f"largest probability difference {p['max_abs_diff']:.1e} - {verdict}")


def export_checkpoint(checkpoint_path, fmt: str, out_dir, sample=None,
                      reporter: Reporter | None = None) -> ExportResult:
    """Export the checkpoint at ``checkpoint_path`` as ``fmt`` into the folder ``out_dir``.

    Args:
        sample: a :class:`ParitySample`, a uint8 array (N >= 200, H, W, 3), or None for
            :func:`parity_sample`'s seeded synthetic images.
        reporter: progress and cancellation (checked between steps).
    Raises:
        ExportError: unknown format, missing ONNX packages, a folder holding something else,
            a conversion or runtime failure (the checkpoint's own errors are CheckpointError).
        InterruptedError: when the reporter says the job was cancelled.
    """
    from .checkpoints import load_checkpoint

    reporter = reporter or SilentReporter()
    out_dir = Path(out_dir)
    check_export(checkpoint_path, fmt, out_dir)
    step = _Steps(reporter)
    step(0.0, "loading the checkpoint")
    model, info = load_checkpoint(checkpoint_path)  # (checked against the hash it records)
    info = replace(info, name=Path(checkpoint_path).stem)  # as listed (renamed by hand: not
    # the older name in its sidecar)
    digest = info.model_sha256 or _sha256(checkpoint_path)
    _check_folder(out_dir, digest)
    if sample is None:
        sample = parity_sample(None, 256, info.preprocessing)
    elif not isinstance(sample, ParitySample):
        sample = ParitySample(np.asarray(sample), "given images")
    if sample.images.ndim != 4 or sample.images.shape[1:] != tuple(info.input_shape) \
            or len(sample.images) < MIN_PARITY_IMAGES:
        raise ExportError(f"the parity sample must hold at least {MIN_PARITY_IMAGES} images of "
                          f"shape {tuple(info.input_shape)}, got {sample.images.shape}")
    step(0.1, f"converting to {fmt}")
    mixed = compute_dtypes(model) != {"float32"}
    serving = serving_model(model, info.tta)
    made = not out_dir.exists()
    fresh = made or not any(out_dir.iterdir())  # nothing here yet: on failure nothing stays
    out_dir.mkdir(parents=True, exist_ok=True)
    write_description(out_dir, info, digest, mixed)  # first: it marks the folder as ours
    artefact = out_dir / ARTEFACTS[fmt]
    # Written and checked under a staging name; only then does it replace an earlier export in
    # this folder, so a cancel or a failure never costs the user the export they had.
    # Its own name: another export into this folder at the same time stages its own file
    # (a shared name was removed or replaced under the other: "No such file or directory").
    staged = out_dir / f".staging.{os.getpid()}.{uuid.uuid4().hex[:8]}.{ARTEFACTS[fmt]}"
    _remove_dead_staging(out_dir)
    lenient = fmt == "tflite-int8" or mixed
    try:
        try:
            WRITERS[fmt](serving, staged, info.input_shape)
        except (ExportError, InterruptedError):
            raise
        except Exception as exc:  # a converter's or TensorFlow's own error: one line
            raise ExportError(f"cannot write {fmt}: {first_line(exc)}") from None
        step(0.6, "checking parity with the app")
        try:
            with quiet_tensorflow():  # a fresh model's predict traces again: TensorFlow warns
                figures = parity(load_exported(fmt, staged), model, info, sample.images,
                                 LENIENT_AGREEMENT if lenient else STRICT_AGREEMENT,
                                 LENIENT_MAX_DIFF if lenient else MAX_FLOAT_DIFF)
        except (ExportError, InterruptedError, MemoryError):
            raise
        except Exception as exc:  # its runtime's own error (onnxruntime, TFLite): one line
            raise ExportError(f"the exported {fmt} model does not run: {first_line(exc)}") \
                from None
        step(0.95, "putting it in place")
    except BaseException:  # cancelled, or it does not run: no unchecked model stays behind
        _remove(staged)
        others = [p for p in out_dir.glob(".staging.*") if p != staged]
        if fresh and not others:  # no notes left about a model that is not there (while another
            # export into this new folder goes on, its staged model and the notes stay for it)
            for path in list(out_dir.iterdir()):
                _remove(path)
            if made:
                out_dir.rmdir()
        elif not artefact.exists():
            write_notes(out_dir, fmt, None, info, ARTEFACTS)
        raise
    _replace(staged, artefact)
    figures.update(sample=sample.source, artefact=artefact.name, checked=now_iso())
    write_notes(out_dir, fmt, figures, info, ARTEFACTS)
    reporter.progress(1.0, "export done" if figures["ok"] else "export DISAGREES with the app")
    return ExportResult(fmt, out_dir, artefact, figures, bool(figures["ok"]))


def export_job(checkpoint_path, fmt: str, out_dir, data_path: str | None = None,
               reporter: Reporter | None = None) -> ExportResult:
    """The app's export, as the export dialog runs it: refusals first (before the data is read),
    then the parity sample from ``data_path`` (None: synthetic images), then
    :func:`export_checkpoint`.

    Plain and picklable by name, so the app runs it in a child process
    (``training.isolated``): TensorFlow's converters hold the interpreter lock for half a
    second at a time (a TFLite conversion, its ``gc.collect``, an interpreter's ``invoke``),
    and in the app's own process each of those froze the window.
    """
    reporter = reporter or SilentReporter()
    try:
        if reporter.cancelled():  # (asked while this process was still importing TensorFlow)
            raise InterruptedError("export cancelled")
        from .checkpoints import read_info
        check_export(checkpoint_path, fmt, out_dir)
        info = read_info(checkpoint_path)
        sample = parity_sample(data_path, 256, info.preprocessing, info.class_names, reporter)
        return export_checkpoint(checkpoint_path, fmt, out_dir, sample=sample,
                                 reporter=reporter)
    except Exception as exc:
        _arrives_whole(exc)
        raise


def _arrives_whole(exc: Exception) -> None:
    """Raise, in its place, a plain error with the same words when ``exc`` would not come back
    from the child process as itself (an exception whose class needs more than its message to
    be made again): the app's process would get a confusing TypeError instead of the reason."""
    import pickle
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        raise RuntimeError(str(exc) or type(exc).__name__) from None


def _remove_dead_staging(out_dir: Path) -> None:
    """Staged files an export killed mid-way left (its process is gone; a name without one is
    an older version's): each would stay in the folder for ever, some of them a model's size.
    Only those an hour old: on a shared network folder a pid may be another computer's."""
    import time

    from .processes import alive
    for left in out_dir.glob(".staging.*"):
        pid = left.name.split(".")[2]
        try:
            old = time.time() - left.lstat().st_mtime > 3600
        except OSError:
            continue
        if old and (not (pid.isascii() and pid.isdigit()) or not alive(int(pid))):
            _remove(left)


def _replace(staged: Path, artefact: Path) -> None:
    """Move ``staged`` to ``artefact``; a folder (SavedModel) replaces the old one as a whole."""
    if staged.is_dir() and artefact.exists():
        old = artefact.with_name(f".old.{staged.name.split('.')[2]}.{artefact.name}")  # (own)
        _remove(old)
        os.replace(artefact, old)
        os.replace(staged, artefact)
        _remove(old)
    else:
        os.replace(staged, artefact)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class _Steps:
    """Report a step and stop there when the job was cancelled."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def __call__(self, fraction: float, message: str) -> None:
        if self.reporter.cancelled():
            raise InterruptedError("export cancelled")
        self.reporter.progress(fraction, message)


def check_export(checkpoint_path, fmt: str, out_dir) -> None:
    """What can be refused at once, before a parity sample is read (seconds for an archive):
    an unknown format, missing ONNX packages, a folder that holds something else or cannot be
    written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        onnx_modules()
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        _check_folder(out_dir, _sha256(checkpoint_path))
    elif out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder")
    if why := cannot_write(out_dir / "labels.txt"):  # (a file on its way, a read-only folder)
        raise ExportError(why)  # found now, not after the checkpoint was loaded and converted


def _sha256(checkpoint_path) -> str:
    from .checkpoints import CheckpointError, file_sha256
    try:
        return file_sha256(Path(checkpoint_path))
    except OSError as exc:
        raise CheckpointError(f"cannot read {Path(checkpoint_path).name}: {first_line(exc)}") \
            from None


def _check_folder(out_dir: Path, digest: str) -> None:
    """Refuse a folder that holds anything but an earlier export of this same checkpoint."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    try:
        recorded = json.loads((out_dir / "preprocessing.json").read_text())["checkpoint_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError(f"{out_dir} is not empty and holds no export: "
                          "choose a new folder") from None
    if recorded != digest:
        raise ExportError(f"{out_dir} holds an export of another checkpoint: choose a new folder")
