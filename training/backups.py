"""A run's backup folder: Keras ``BackupAndRestore``'s weights and epoch, written so that a
crash at any moment leaves an epoch and the weights it finished with (never one with the
other's), and ``run.json``: the run that made it. Resuming it with other data, settings, start
or output is refused."""
from __future__ import annotations

import hashlib
import json
import os
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
        differ = [k for k in run if k != "config" and stored.get(k) != run[k]
                  and not (k == "split_by" and k not in stored)]  # (made before it was kept)
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


def backup_split_kind(backup) -> str | None:
    """How the run a ``--backup`` folder holds split its data ("content" or "shuffle"; one
    recorded before splits by content shuffled), or None when it holds no run to resume."""
    if not backup or not completed_epochs(backup):
        return None
    try:
        stored = json.loads((Path(backup) / "run.json").read_text())
    except (OSError, ValueError):
        return "shuffle"
    kind = stored.get("split_by") if isinstance(stored, dict) else None
    return kind if kind in ("content", "shuffle") else "shuffle"


def resumed_out(backup) -> Path | None:
    """The output file of the run a ``--backup`` folder holds, when it holds one to resume: the
    same command without ``--out FILE`` then resumes into it, not into a new time-stamped name."""
    if not backup or not completed_epochs(backup):
        return None
    try:
        out = json.loads((Path(backup) / "run.json").read_text())["out"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(out) if isinstance(out, str) and out.endswith(".keras") else None


WEIGHTS, EPOCH = "latest.weights.h5", "training_metadata.json"  # Keras's names
PREVIOUS = ".bkp"  # Keras's suffix of the pair before (``double_checkpoint``)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _whole_pair(weights: Path, record: Path) -> int | None:
    """The epoch ``record`` names, when ``weights`` are the ones that epoch ended with: the
    record carries their hash (backups of older versions, without one, are taken at their
    word). None for a record cut short, weights missing, or weights of another epoch."""
    try:
        stored = json.loads(record.read_text())
        epoch, digest = stored["epoch"], stored.get("weights_sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        return None
    try:
        if not weights.is_file() or (digest is not None and _sha256(weights) != digest):
            return None
    except OSError:
        return None
    return epoch


def _pairs(backup_dir: Path):
    main = (backup_dir / WEIGHTS, backup_dir / EPOCH)
    return main, tuple(Path(f"{path}{PREVIOUS}") for path in main)


def completed_epochs(backup_dir: str | Path | None) -> int:
    """The epoch a run resumes from: that of the last whole pair of weights and epoch record in
    ``backup_dir`` (0 if none)."""
    if backup_dir is None:
        return 0
    for pair in _pairs(Path(backup_dir)):
        epoch = _whole_pair(*pair)
        if epoch is not None:
            return epoch
    return 0


def repair_backup(backup_dir: Path) -> None:
    """Leave in Keras's place the last whole pair, the one Keras resumes from: a crash while an
    epoch was being written leaves the new weights with the old epoch's record (a resume would
    train that epoch's batches again), or either file cut short. Then the previous copy is put
    back; with none whole, everything goes and the run starts again, since weights without
    their epoch cannot be placed in the schedule."""
    main, previous = _pairs(Path(backup_dir))
    if _whole_pair(*main) is not None or not any(p.exists() for p in main):
        return
    if _whole_pair(*previous) is not None:
        for source, target in zip(previous, main):
            atomic_write_bytes(target, source.read_bytes())
    else:
        for path in main + previous:
            path.unlink(missing_ok=True)


def finished_epochs_backup(folder: Path, progress):
    """Keras's ``BackupAndRestore`` (weights, optimizer, epoch; two copies), written only for an
    epoch that finished: not for one Stop cut short (a resume would take its half-trained
    weights for a whole epoch) nor one whose loss diverged (NaN weights to resume from). Each
    file is written whole (temporary file, fsync, rename) and the epoch record names its
    weights by hash, so ``repair_backup`` can tell a pair a crash split."""
    import keras

    class Backup(keras.callbacks.BackupAndRestore):
        def on_epoch_end(self, epoch, logs=None):
            if progress.finished(logs):
                super().on_epoch_end(epoch, logs)

        def _save_model(self):  # Keras's overwrites both files in place, weights first
            (weights, record), previous = _pairs(folder)
            if _whole_pair(weights, record) is not None:  # the pair before, kept whole
                for source, target in zip((weights, record), previous):
                    atomic_write_bytes(target, source.read_bytes())
            fresh = folder / f"next-{os.getpid()}.weights.h5"  # Keras wants this suffix
            try:
                self.model.save_weights(str(fresh), overwrite=True)
                with open(fresh, "rb+") as handle:
                    os.fsync(handle.fileno())
                digest = _sha256(fresh)
                os.replace(fresh, weights)
            finally:
                fresh.unlink(missing_ok=True)
            atomic_write_bytes(record, json.dumps({
                "epoch": self._current_epoch, "batch": self._last_batch_seen,
                "weights_sha256": digest}).encode())

    return Backup(str(folder), delete_checkpoint=False, double_checkpoint=True)
