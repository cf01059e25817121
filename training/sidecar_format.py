"""What a sidecar may hold and how it is written: the types and finite numbers the app reads
(anything else refuses the whole file: it is untrusted, and a wrong type would otherwise fail
later, while painting a table), its size cap, and indented JSON with lists of numbers kept on
one line. :class:`training.checkpoints.CheckpointInfo` reads and writes through these."""
from __future__ import annotations

import json
import math
import re

# What the app reads from a sidecar, by type: anything else is refused as a whole (the file is
# untrusted, and a wrong type would otherwise fail later, while painting a table).
_FIELD_TYPES = {"tta": str, "metrics": dict, "data_fingerprint": str, "config": dict,
                "seed": (int, type(None)), "parent": (str, type(None)), "created": str,
                "versions": dict, "command": str, "history": dict, "name": str,
                "model_sha256": str, "parent_sha256": str, "data_source": str, "evaluations": dict, "calibration": dict}
_NUMBERS = {"metrics": ("test_accuracy", "val_accuracy", "val_accuracy_tta", "test_images",
                        "val_images", "train_images", "best_epoch", "command_wall_s"),
            "config": ("epochs_run", "wall_time_s", "epochs"),
            "calibration": ("threshold", "images", "ece")}


MAX_SIDECAR_CHARS = 64_000_000  # a 1,000-class evaluation is 3.2 MB; a store refuses to pass it


def _is_number(value) -> bool:
    """A finite int or float: a 400-digit integer or 1e999 would fail later, while painting."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def check_types(known: dict) -> None:
    for key, kind in _FIELD_TYPES.items():
        if key in known and not isinstance(known[key], kind):
            raise ValueError(f"{key} has the wrong type ({type(known[key]).__name__})")
    for key, names in _NUMBERS.items():
        for name in names:
            value = known.get(key, {}).get(name)
            if value is not None and not _is_number(value):
                raise ValueError(f"{key}.{name} is not a number")
    for data, evaluation in known.get("evaluations", {}).items():
        if not (isinstance(evaluation, dict) and _is_number(evaluation.get("accuracy"))):
            raise ValueError(f"evaluation {data!r} has no accuracy")
    for name, values in known.get("history", {}).items():
        if not isinstance(values, list):
            raise ValueError(f"history {name!r} is not a list")
        if not all(v is None or _is_number(v) or v != v for v in values):  # drawn in charts
            raise ValueError(f"history {name!r} holds something other than numbers")  # (a NaN
            # loss is a diverged epoch's record; infinities and 400-digit integers are not)


_NUMBER = r"(?:-?[0-9][0-9.eE+-]*|NaN|-?Infinity|null|true|false)"
# a list of numbers json.dumps spread over lines: raw line breaks never occur inside a string
_SPREAD_NUMBERS = re.compile(rf"\[\n\s*(?:{_NUMBER},\n\s*)*{_NUMBER}\n\s*\]")


def readable_json(data, **options) -> str:
    """Indented JSON whose lists of numbers each stay on one line: a confusion matrix is one
    row per line (json.dumps's indent gives every number its own: 3x the size for 1,000
    classes), everything else is as ``indent=2`` writes it."""
    text = json.dumps(data, indent=2, **options)
    return _SPREAD_NUMBERS.sub(lambda m: "[" + ", ".join(
        part.strip() for part in m.group(0)[1:-1].split(",")) + "]", text)


def jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
