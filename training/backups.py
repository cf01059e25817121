"""A backup folder (Keras ``BackupAndRestore``) belongs to the run that made it: ``run.json``
records that run, and resuming it with other data, settings, start or output is refused."""
from __future__ import annotations

import json
from pathlib import Path

from .checkpoints import atomic_write_bytes
from .sidecar_format import jsonable
from .data import DataError


def claim_backup(backup: Path, first_epoch: int, config_type, run: dict) -> None:
    """A backup folder belongs to one run: resuming from it with other data, config, start or
    output would mix two runs, so that is refused with what differs. A fresh run claims it.
    ``config_type`` (TrainConfig) fills in the defaults of settings a later version added."""
    run = json.loads(json.dumps(run, default=jsonable))  # tuples as lists, as stored
    if first_epoch:
        try:
            stored = json.loads((backup / "run.json").read_text())
        except (OSError, ValueError):
            stored = None  # made before runs were recorded: nothing to compare
        if not isinstance(stored, dict):
            return
        differ = [k for k in run if k != "config" and stored.get(k) != run[k]]
        theirs = stored.get("config") if isinstance(stored.get("config"), dict) else {}
        try:  # settings a later version added take their defaults, as the run had them
            theirs = json.loads(json.dumps(config_type.from_dict(theirs).to_dict()))
        except (TypeError, ValueError):
            pass
        differ += [k for k in run["config"] if theirs.get(k) != run["config"][k]]
        if differ:
            words = {"data_fingerprint": "data", "out": "output file", "parent": "start",
                     "fine_tune": "fine-tuning"}
            names = ", ".join(words.get(k, k.replace("_", " ")) for k in differ)
            raise DataError(f"the backup in {backup} is of another run (different {names}): "
                            "resume with the same settings, or use another backup folder")
        return
    atomic_write_bytes(backup / "run.json", json.dumps(run, indent=1).encode())


def resumed_out(backup) -> Path | None:
    """The output file of the run a ``--backup`` folder holds, when it holds one to resume: the
    same command without ``--out FILE`` then resumes into it, not into a new time-stamped name."""
    from .callbacks import completed_epochs

    if not backup or not completed_epochs(backup):
        return None
    try:
        out = json.loads((Path(backup) / "run.json").read_text())["out"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(out) if isinstance(out, str) and out.endswith(".keras") else None
