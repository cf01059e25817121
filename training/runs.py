"""Resumable training runs: one small record per run in the per-user data folder.

``runs/<id>/run.json`` says what the run trains (data path, config, parent, output) and whether it
finished; ``runs/<id>/backup/`` holds Keras ``BackupAndRestore`` state (weights, optimizer, last
completed epoch) and the per-epoch history. A record still marked "running" whose process is gone
(a crash, a power cut, ``kill -9``) is an unfinished run that the next launch offers to resume.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .backups import completed_epochs
from .checkpoints import atomic_write_bytes, now_iso, read_small_file
from .paths import user_data_dir
from .processes import process_started, same_process_alive
from .run_lock import ENDED, GONE, TAKEN, RunUnavailable, run_lock

log = logging.getLogger(__name__)

RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"


@dataclass(frozen=True)
class RunRecord:
    """What a resumed run needs to carry on exactly where the killed one stopped."""

    id: str
    data: str                 # data path as given (archive, batches folder or class folders)
    out: str                  # the checkpoint the run writes
    config: dict              # TrainConfig.to_dict()
    parent: str | None = None  # checkpoint it started from, None for from scratch
    fine_tune: str = "full"   # "full" or "head" (only the new head trains)
    created: str = ""
    status: str = RUNNING
    pid: int = 0
    data_fingerprint: str = ""
    pid_started: str = ""     # when that process started (Linux; "" elsewhere): a reused pid
    folder: str = field(default="", compare=False)

    @property
    def backup_dir(self) -> Path:
        return Path(self.folder) / "backup"

    def completed_epochs(self) -> int:
        """Epochs whose weights the backup holds (0 when none finished)."""
        return completed_epochs(self.backup_dir)


def runs_dir() -> Path:
    return user_data_dir() / "runs"


def _write(record: RunRecord) -> RunRecord:
    data = asdict(record)
    data.pop("folder")
    atomic_write_bytes(Path(record.folder) / "run.json", json.dumps(data, indent=2).encode())
    return record


def new_run(data: str, out: str | Path, config: dict, parent: str | Path | None = None,
            fine_tune: str = "full", data_fingerprint: str = "", root: Path | None = None) -> RunRecord:
    """Create the record (status running, this process) and its backup folder."""
    created = now_iso()
    run_id = created[:19].replace(":", "").replace("-", "") + f"-{os.getpid()}"
    folder = Path(root or runs_dir()) / run_id
    n = 1
    while folder.exists():
        n += 1
        folder = folder.with_name(f"{run_id}-{n}")
    (folder / "backup").mkdir(parents=True)
    return _write(RunRecord(folder.name, str(data), str(out), dict(config),
                            str(parent) if parent else None, fine_tune, created, RUNNING,
                            os.getpid(), data_fingerprint, process_started(os.getpid()),
                            str(folder)))


def update(record: RunRecord, **changes) -> RunRecord:
    return _write(replace(record, **changes))


def claim(record: RunRecord) -> RunRecord:
    """Mark a resumed run as owned by this process. Its record is read again first: another copy
    of the app, offering the same run, may have resumed or discarded it since (RunUnavailable)."""
    with run_lock(Path(record.folder)):
        current = _still_offered(record)
        return _write(replace(current, status=RUNNING, pid=os.getpid(),
                              pid_started=process_started(os.getpid())))


def _still_offered(record: RunRecord) -> RunRecord:
    """``record`` as run.json says now, if it is still an unfinished run that no other live
    process has taken; RunUnavailable saying why, if not."""
    current = read_run(Path(record.folder))
    if current is None:
        raise RunUnavailable(GONE)
    if current.status != RUNNING:
        raise RunUnavailable(ENDED)
    if current.pid != os.getpid() and _still_running(current):
        raise RunUnavailable(TAKEN)
    return current


def _still_running(record: RunRecord) -> bool:
    """The process that ran ``record`` is alive (the same process, not its reused pid)."""
    return same_process_alive(record.pid, record.pid_started)


def set_status(record: RunRecord, status: str) -> RunRecord:
    """Record how the run ended; a finished or stopped run's backup is no longer needed."""
    record = _write_at_end(replace(record, status=status))
    if status != RUNNING:
        shutil.rmtree(record.backup_dir, ignore_errors=True)
    return record


def _write_at_end(record: RunRecord) -> RunRecord:
    """Write the record of a run that ends; its folder removed meanwhile (by hand, or by a copy
    of the app from before runs were locked) is logged, not raised: the checkpoint the run saved
    is there all the same, and the run must not be reported as failed for the record alone."""
    try:
        return _write(record)
    except FileNotFoundError:
        if Path(record.folder).is_dir():
            raise
        log.warning("run %s ended (%s, pid %s), but its folder %s was removed meanwhile: "
                    "not recorded", record.id, record.status, record.pid, record.folder)
        return record


MAX_RECORD_BYTES = 1 << 20  # ours are a few kilobytes (a config and some paths)
_TEXT_FIELDS = ("id", "data", "out", "fine_tune", "created", "status", "data_fingerprint",
                "pid_started")
_said_unreadable: set[tuple[str, str]] = set()  # (run.json, why) already logged


def read_run(folder: Path) -> RunRecord | None:
    """The run recorded in ``folder``; None when there is none, or when its run.json is not a
    record this app wrote (damaged, cut short, edited by hand): that run is not offered, and
    never keeps the app from starting (each launch reads every record). Logged once."""
    path = Path(folder) / "run.json"
    try:
        # (a FIFO named run.json must not hang the app's start, nor a huge one fill memory)
        return _record_from(json.loads(read_small_file(path, MAX_RECORD_BYTES)), folder)
    except FileNotFoundError:
        return None  # (a run being discarded, a folder without a record yet)
    except (OSError, ValueError, TypeError, RecursionError) as exc:  # RecursionError: [[[[...
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if (str(path), why) not in _said_unreadable:  # (every launch and refresh reads it)
            _said_unreadable.add((str(path), why))
            log.warning("ignoring the run record %s: %s", path, why)
        return None


def _record_from(data, folder) -> RunRecord:
    """Check what run.json holds field by field (ValueError saying what is wrong): a record's
    pid goes to os.kill, its config to training, its paths to the file system."""
    from .recipes import TrainConfig

    if not isinstance(data, dict):
        kind = "null" if data is None else "list" if isinstance(data, list) else "value"
        raise ValueError(f"a JSON {kind}, not a run record")
    known = {k: v for k, v in data.items() if k in RunRecord.__dataclass_fields__ and k != "folder"}
    missing = [k for k in ("id", "data", "out", "config") if k not in known]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    wrong = [k for k in _TEXT_FIELDS if k in known and not isinstance(known[k], str)]
    if known.get("parent") is not None and not isinstance(known["parent"], str):
        wrong.append("parent")
    if wrong:
        raise ValueError(f"{', '.join(wrong)} not text")
    if any("\0" in (known.get(k) or "") for k in ("data", "out", "parent")):
        raise ValueError("a path with a NUL character")
    pid = known.get("pid", 0)
    if type(pid) is not int or not 0 <= pid < 2**31:  # (bool is an int to Python)
        shown = repr(pid) if len(repr(pid)) <= 20 else repr(pid)[:19] + "…"
        raise ValueError(f"pid {shown} is not a process number")
    if known.get("fine_tune", "full") not in ("full", "head"):
        raise ValueError(f"fine_tune {known['fine_tune'][:20]!r} is not 'full' or 'head'")
    TrainConfig.from_dict(known["config"])  # (ValueError naming the setting)
    return RunRecord(**known, folder=str(folder))


def _running_records(root: Path | None = None):
    """Every run record marked running below ``root`` (default: the user's runs folder), except
    runs being discarded (".discarded-…" folders)."""
    root = Path(root or runs_dir())
    if not root.is_dir():
        return
    for folder in root.iterdir():
        record = read_run(folder) if folder.is_dir() and not folder.name.startswith(".") else None
        if record is not None and record.status == RUNNING:
            yield record


def unfinished_runs(root: Path | None = None) -> list[RunRecord]:
    """Runs left "running" by a process that no longer exists, with at least one epoch to resume
    from; newest first. Such runs that never finished an epoch are forgotten (their folders
    would otherwise stay for ever)."""
    found = []
    for record in _running_records(root):
        if _still_running(record):
            continue  # (a run another copy of the app trains: runs_of_other_live_processes)
        if record.completed_epochs() > 0:
            found.append(record)
        else:  # ended before its first epoch (a crash, a kill): nothing to resume, ever
            # (another copy of the app at it too, or a read-only data folder: it stays, unoffered)
            with contextlib.suppress(RunUnavailable, OSError):
                discard_run(record)
    return sorted(found, key=lambda r: r.created, reverse=True)


def runs_of_other_live_processes(root: Path | None = None) -> list[RunRecord]:
    """Runs that another copy of the app (a live process, not this one) trains now: the
    checkpoints they write or started from are in use there."""
    return [record for record in _running_records(root)
            if record.pid != os.getpid() and _still_running(record)]


def discard_run(record: RunRecord) -> None:
    """Forget an unfinished run (its best checkpoint so far, if any, stays). Its record is read
    again first: a run another copy of the app has resumed since is kept (RunUnavailable)."""
    folder = Path(record.folder)
    hidden = folder.with_name(f".discarded-{folder.name}")
    with run_lock(Path(record.folder)):
        _still_offered(record)
        # renamed in one step first: another copy of the app finds the run whole or gone, never
        # half deleted ("." folders are not runs)
        try:
            os.replace(folder, hidden)
        except OSError:
            hidden = folder  # (a file system that cannot rename it) removed where it is
    shutil.rmtree(hidden, ignore_errors=True)


def run_training(record: RunRecord, data, reporter):
    """Train ``data`` as ``record`` says, then record how the run ended.

    Plain and picklable by name, so the app can run it in a child process
    (``training.isolated``). Hashing the pixels, when the record has no fingerprint yet, happens
    here too: on the worker, never on the caller's GUI thread.
    """
    from .recipes import TrainConfig
    from .train import Cancelled, train

    if not record.data_fingerprint:
        record = update(record, data_fingerprint=data.fingerprint())
    try:
        result = train(data, TrainConfig.from_dict(record.config), record.out, reporter,
                       parent=record.parent, backup_dir=record.backup_dir,
                       command=f"in-app training on {record.data}", fine_tune=record.fine_tune)
    except Cancelled:
        if record.completed_epochs() > 0:  # a resumed run stopped before it trained again:
            _write_at_end(replace(record, pid=0))  # its backup stays, and so does the offer
        else:
            set_status(record, STOPPED)
        raise
    except (OSError, MemoryError, KeyboardInterrupt, SystemExit):
        # a full disk at epoch 7, Ctrl+C in the app's terminal, the app gone while the run was
        # paused: resumable, as after a crash (errors that would only repeat, a loss that is
        # NaN or a parent that is gone, end the run)
        if 0 < record.completed_epochs() < int(record.config.get("epochs", 0)):
            _write_at_end(replace(record, pid=0))
        else:
            set_status(record, FAILED)
        raise
    except BaseException:
        set_status(record, FAILED)
        raise
    set_status(record, STOPPED if result.stopped_early else FINISHED)
    return result


class _Reading:
    """A run's reporter while its data is read again: what is read is said, but it is not the
    run's progress (the bar would show reading 100 % as "training 100 %")."""

    def __init__(self, reporter) -> None:
        self._reporter = reporter

    def progress(self, fraction: float, message: str = "") -> None:
        self._reporter.progress(0.0, f"reading the data again: {message}" if message else "")

    def __getattr__(self, name):
        return getattr(self._reporter, name)


def resume_training(record: RunRecord, cache_dir, reporter):
    """Read an unfinished run's data again (refusing data that changed) and carry the run on."""
    from .checkpoints import read_info
    from .data import DataError, load_labelled
    from .preprocessing import Preprocessing

    policy = read_info(record.parent).preprocessing if record.parent else Preprocessing()
    data = load_labelled(record.data, "train", policy, _Reading(reporter), cache_dir=cache_dir)
    if record.data_fingerprint and data.fingerprint() != record.data_fingerprint:
        set_status(record, FAILED)
        raise DataError("the data changed since this run started; it cannot be resumed")
    return run_training(record, data, reporter)
