"""Where evaluation results are kept: in the checkpoint's sidecar, under the name of the data
they were measured on, or, for a checkpoint whose sidecar must not be written (the bundled one),
in an overlay file in the per-user folder that is merged back when read."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .checkpoints import (MAX_SIDECAR_CHARS, CheckpointError, CheckpointInfo, atomic_write_bytes,
                          read_info, readable_json, sidecar_path)


def overlay_path(checkpoint: Path, folder: Path, info: CheckpointInfo | None = None) -> Path:
    """Where evaluations of a read-only checkpoint (the bundled one) are kept instead."""
    info = info or read_info(checkpoint)
    return Path(folder) / f"{checkpoint.stem}-{(info.model_sha256 or 'unknown')[:12]}.json"


def overlay_for(checkpoint: Path) -> Path | None:
    """Where to keep ``checkpoint``'s evaluations when its sidecar must not be written (the
    bundled checkpoint, or any read-only one): a file in the per-user folder; else None."""
    from .paths import bundled_checkpoint, user_evaluations_dir
    checkpoint = Path(checkpoint)
    if (checkpoint.resolve() == bundled_checkpoint().resolve()
            or not os.access(sidecar_path(checkpoint), os.W_OK)
            or not os.access(checkpoint.parent, os.W_OK)):  # the sidecar is replaced, not edited
        return overlay_path(checkpoint, user_evaluations_dir())
    return None


def store_evaluation(checkpoint: Path, record: dict, overlay: Path | None = None,
                     model_sha256: str = "") -> dict:
    """Add ``record`` to the checkpoint's sidecar under its data description (atomically).

    With ``overlay`` (a read-only checkpoint), the evaluations go to that JSON file instead and
    :func:`stored_evaluations` merges them back. A CIFAR-10 test-part result also becomes the
    ``test_accuracy`` metric. Returns the record as kept (``data``: the name it is kept under).
    """
    checkpoint = Path(checkpoint)
    if overlay is not None:
        current = _read_overlay(overlay)
        key, record = _stored_under(record, current)
        current[key] = record
        overlay.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(overlay, readable_json(current).encode())
        return record
    from dataclasses import replace

    info = read_info(checkpoint)
    if model_sha256 and info.model_sha256 and info.model_sha256 != model_sha256:
        raise CheckpointError("the checkpoint changed while it was evaluated (a training run "
                              "saved a newer epoch): this result belongs to the older one")
    key, record = _stored_under(record, info.evaluations)
    metrics = dict(info.metrics)
    if key == "CIFAR-10 test part":
        metrics.update(test_accuracy=record["accuracy"], test_images=record["images"])
    info = replace(info, evaluations={**info.evaluations, key: record}, metrics=metrics)
    text = info.to_json()
    if len(text) > MAX_SIDECAR_CHARS:  # kept, it would make the sidecar unreadable
        raise CheckpointError(f"the sidecar would grow to {len(text) / 1e6:.0f} MB with this "
                              "result (many classes): save the result as JSON instead")
    atomic_write_bytes(sidecar_path(checkpoint), text.encode())
    return record


def _stored_under(record: dict, existing: dict) -> tuple[str, dict]:
    """The name ``record`` is kept under: its data description, unless another data set of
    that name (two folders both called "test", say) is already kept there; then both are kept,
    this one named with its path. The same folder evaluated again replaces its old result."""
    key, source = record["data"], record.get("data_source")
    other = existing.get(key)
    if (isinstance(other, dict) and key.startswith("class folders") and source
            and other.get("data_source") and not _same_data(other, record)):
        key = f"{key} ({source})"
    return key, {**record, "data": key}


def _same_data(a: dict, b: dict) -> bool:
    """The same pixels, or the same folder however its path was written."""
    if a.get("data_fingerprint") and a.get("data_fingerprint") == b.get("data_fingerprint"):
        return True
    try:
        return Path(a["data_source"]).resolve() == Path(b["data_source"]).resolve()
    except (OSError, RuntimeError, TypeError, ValueError):
        return a.get("data_source") == b.get("data_source")


def stored_evaluations(info: CheckpointInfo, overlay: Path | None = None) -> dict:
    return {**info.evaluations, **(_read_overlay(overlay) if overlay is not None else {})}


def _read_overlay(path: Path) -> dict:
    try:
        if Path(path).stat().st_size > 4 * MAX_SIDECAR_CHARS:  # not read: none is that large
            return {}
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: record for key, record in data.items()  # only records the app can show
            if isinstance(record, dict) and isinstance(record.get("accuracy"), (int, float))}
