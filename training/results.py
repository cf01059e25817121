"""A table of prediction results written as CSV or JSON, headed by the checkpoint that made it."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .checkpoints import atomic_write_bytes, now_iso

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
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([";".join(row[f]) if f == "flags" else ("" if row[f] is None else row[f])
                             for f in FIELDS])
        text = out.getvalue()
    # A file name that is not valid UTF-8 (Linux allows any bytes) is written as its own bytes
    # (surrogateescape round-trips them), never a UnicodeEncodeError that loses the export.
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))
    return path


def collect_into_class(files, root: Path, class_name: str) -> list[Path]:
    """Copy image ``files`` into ``root/class_name/`` (a class-folder data set the Train tab
    reads), never overwriting: a name already there gets a numbered suffix. Returns the copies.

    Raises:
        ValueError: the class name is empty or would leave ``root``.
    """
    import shutil

    class_name = class_name.strip()
    if not class_name or class_name in (".", "..") or any(c in class_name for c in "/\\\0"):
        raise ValueError(f"{class_name!r} is not a usable class folder name")
    folder = Path(root) / class_name
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for file in map(Path, files):
        target, n = folder / file.name, 2
        while target.exists():
            target, n = folder / f"{file.stem} ({n}){file.suffix}", n + 1
        shutil.copy2(file, target)
        copies.append(target)
    return copies
