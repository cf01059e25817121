"""A table of prediction results written as CSV or JSON, headed by the checkpoint that made it."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .checkpoints import atomic_write_bytes, now_iso
from .reporting import Reporter, SilentReporter

FIELDS = ("file", "class", "probability", "flags", "error")


def write_results(path: Path, rows: list[dict], checkpoint: dict, threshold: float,
                  kind: str | None = None) -> Path:
    """Write ``rows`` (dicts with :data:`FIELDS`) to ``path``: ``kind`` "csv" or "json", by
    default by its suffix. A name without a suffix gets the kind's (``results`` -> ``.json``).

    ``checkpoint`` identifies the model (``name``, ``model_sha256``, ``data_fingerprint``); CSV
    carries it in ``#`` comment lines above the column names, JSON in a ``checkpoint`` object.
    """
    path = Path(path)
    kind = kind or ("json" if path.suffix.lower() == ".json" else "csv")
    if not path.suffix:  # Qt's dialogs on Linux add none: the file says what it holds
        path = path.with_name(f"{path.name}.{kind}")
    header = {**checkpoint, "low_confidence_below": threshold, "exported": now_iso(),
              "rows": len(rows)}
    if kind == "json":
        text = json.dumps({"checkpoint": header, "results": rows}, indent=2)
    else:
        out = io.StringIO()
        for key, value in header.items():
            out.write(f"# {key}: {value}\n")
        writer = csv.writer(out, lineterminator="\n")  # as the comment lines: one ending
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([";".join(row[f]) if f == "flags" else ("" if row[f] is None else row[f])
                             for f in FIELDS])
        text = out.getvalue()
    # A file name that is not valid UTF-8 (Linux allows any bytes) is written as its own bytes
    # (surrogateescape round-trips them), never a UnicodeEncodeError that loses the export.
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))
    return path


def class_folder(root: Path, class_name: str) -> Path:
    """``root/class_name``, checked before any copying.

    Raises:
        ValueError: the class name is empty or would leave ``root``.
    """
    class_name = class_name.strip()
    if not class_name or class_name in (".", "..") or any(c in class_name for c in "/\\\0"):
        raise ValueError(f"{class_name!r} is not a usable class folder name")
    return Path(root) / class_name


def collect_into_class(files, root: Path, class_name: str,
                       reporter: Reporter | None = None) -> list[Path]:
    """Copy image ``files`` into ``root/class_name/`` (a class-folder data set the Train tab
    reads), never overwriting: a name already there gets a numbered suffix. Each file appears
    whole or not at all (copied under a hidden name, then renamed). Returns the copies.

    Raises:
        ValueError: the class name is empty or would leave ``root``.
        OSError: a file could not be copied (the message says how many were, before it).
        InterruptedError: the reporter says stop (the copies made so far stay).
    """
    import shutil

    reporter = reporter or SilentReporter()
    files = [Path(f) for f in files]
    folder = class_folder(root, class_name)
    folder.mkdir(parents=True, exist_ok=True)
    copies: list[Path] = []
    for file in files:
        if reporter.cancelled():
            raise InterruptedError(f"stopped: {len(copies)} of {len(files)} copied")
        target, n = folder / file.name, 2
        while target.exists():
            target, n = folder / f"{file.stem} ({n}){file.suffix}", n + 1
        partial = target.with_name(f".partial-{target.name}")
        try:
            shutil.copy2(file, partial)
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OSError(f"{file.name}: {exc.strerror or exc} ({len(copies)} of {len(files)} "
                          "copied before it)") from exc
        copies.append(target)
        reporter.progress(len(copies) / len(files), f"copied {len(copies)} of {len(files)}")
    return copies
