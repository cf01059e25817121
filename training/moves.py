"""Moving a checkpoint's files as one, so that a crash part-way never leaves it split.

A checkpoint is several files (model, sidecar, histories); a rename, a delete to the trash and a
restore move them one at a time. :func:`journaled` first writes a journal (``.moving.*.json`` in
the library folder) naming every move and which way a cut-short move settles; the journal goes
once the moves (and, for a rename, the new sidecar) are done or undone in the same process. A
journal left by a process that died part-way (a crash, a power cut, ``kill -9``) is settled by
:func:`recover_moves` at the next start: all its files go back (a rename, a delete) or all go
forward (a restore: a checkpoint is never left in a trash nobody offers), the sidecar's name is
made the file's again, and the checkpoint is whole under one name with nothing lost.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .checkpoints import (CheckpointError, _fsync_dir, atomic_write_bytes, pending_sidecar_path,
                          read_info, sidecar_path)
from .processes import process_started, same_process_alive
from .reporting import first_line

log = logging.getLogger(__name__)

JOURNAL_GLOB = ".moving.*.json"


def same_file(a: Path, b: Path) -> bool:
    """The same file under two names: a change of case only, on Windows and macOS disks."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def move_all(moves: list[tuple[Path, Path]]) -> None:
    """Move each ``(source, target)`` without overwriting anything; if one move fails, the ones
    already made are moved back, so a checkpoint is never left half here and half there."""
    done = []
    try:
        for source, target in moves:
            if target.exists() and not same_file(source, target):
                raise CheckpointError(f"{target.name} already exists")
            os.rename(source, target)  # one file system (the trash is in the data folder):
            done.append((source, target))  # a rename, never a copy that could be left half
    except (OSError, CheckpointError) as exc:
        for source, target in reversed(done):
            try:
                os.rename(target, source)
            except OSError:
                pass  # left where it is, under its own name: still on disk, nothing lost
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{first_line(exc)} (nothing was moved)") from None


@contextmanager
def journaled(folder: Path, moves: list[tuple[Path, Path]], back: bool = True):
    """Keep a journal of ``moves`` in ``folder`` while the with-block makes them. Should the
    process die inside the block, :func:`recover_moves` settles them: back to the sources
    (``back``) or on to the targets. The block undoes its own failures (:func:`move_all`); any
    other exception (Ctrl+C part-way) keeps the journal for the next start."""
    folder = Path(folder)
    journal = folder / f".moving.{uuid.uuid4().hex}.json"
    record = {"pid": os.getpid(), "started": process_started(os.getpid()), "back": back,
              "moves": [[str(source), str(target)] for source, target in moves]}
    try:
        atomic_write_bytes(journal, json.dumps(record, indent=1).encode())
    except OSError as exc:
        raise CheckpointError(f"cannot write in {folder}: {first_line(exc)} (nothing was moved)") \
            from None
    try:
        yield
    except (CheckpointError, OSError, ValueError):
        _forget(journal, moves)  # undone in this process (or never started)
        raise
    else:
        _forget(journal, moves)


def _forget(journal: Path, moves) -> None:
    for folder in {Path(p).parent for move in moves for p in move}:
        try:  # the moves reach the disk before the journal's removal does
            _fsync_dir(folder)
        except OSError:
            pass
    journal.unlink(missing_ok=True)


def recover_moves(folder: Path, trash: Path | None = None) -> list[Path]:
    """Settle the moves that processes which died part-way left in ``folder``'s journals; returns
    the checkpoints (``.keras`` paths) made whole. A journal whose process still runs (another
    window moving files now) is left alone, as is one naming a file outside ``folder`` and
    ``trash``, or one that cannot be read (nothing written by :func:`journaled`)."""
    folder = Path(folder)
    settled = []
    if not folder.is_dir():
        return settled
    for journal in sorted(folder.glob(JOURNAL_GLOB)):
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
            pid, started, back = int(record["pid"]), str(record["started"]), bool(record["back"])
            moves = [(Path(source), Path(target)) for source, target in record["moves"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            log.warning("left %s as it is: %s", journal.name, first_line(exc))
            continue
        if same_process_alive(pid, started):
            continue
        if not all(_allowed(p, folder, trash) for move in moves for p in move):
            log.warning("left %s as it is: it names files outside the library", journal.name)
            continue
        try:
            settled += _settle(moves, back)
        except OSError as exc:
            log.warning("could not settle %s: %s", journal.name, first_line(exc))
            continue
        _forget(journal, moves)
    return settled


def _allowed(path: Path, folder: Path, trash: Path | None) -> bool:
    path = Path(os.path.abspath(path))
    return path.parent == Path(os.path.abspath(folder)) or (
        trash is not None and Path(os.path.abspath(trash)) in path.parents)


def _settle(moves: list[tuple[Path, Path]], back: bool) -> list[Path]:
    steps = [(target, source) for source, target in reversed(moves)] if back else moves
    for start, end in steps:
        if start.exists() and not end.exists():
            os.rename(start, end)
    names = {p.stem for move in moves for p in move if p.suffix == ".keras"}
    models = [end for _, end in steps if end.suffix == ".keras" and end.exists()]
    for model in models:
        _match_name(model, names)
    return models


def _match_name(model: Path, names: set[str]) -> None:
    """A rename cut short after its new sidecar was written: the sidecar names the checkpoint
    by the name it has on disk again (only a name the journal knew is replaced)."""
    try:
        info = read_info(model)
    except Exception:  # noqa: BLE001 - an untrusted sidecar that cannot be read stays as it is
        return
    if info.name != model.stem and info.name in names:
        atomic_write_bytes(sidecar_path(model), replace(info, name=model.stem).to_json().encode())
        pending_sidecar_path(model).unlink(missing_ok=True)
