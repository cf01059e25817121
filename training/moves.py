"""Moving a checkpoint's files as one, so that a crash part-way never leaves it split.

A checkpoint is several files (model, sidecar, histories); a rename, a delete to the trash and a
restore move them one at a time. :func:`journaled` first writes a journal (``.moving.*.json`` in
the library folder) naming every move and which way a cut-short move settles; the journal goes
once the moves (and, for a rename, the new sidecar) are done or undone in the same process. A
journal left by a process that died part-way (a crash, a power cut, ``kill -9``) is settled by
:func:`recover_moves` at the next start: all its files go back (a rename, a delete) or all go
forward (a restore: a checkpoint is never left in a trash nobody offers; and any operation whose
every move was made), the sidecar's name is made the file's again, and the checkpoint is whole
under one name with nothing lost. A name taken meanwhile by another checkpoint is never
overwritten.
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
_TOKEN = uuid.uuid4().hex  # this process's journals, told apart from a dead one's with its pid


def same_file(a: Path, b: Path) -> bool:
    """The same file under two names: a change of case only, on Windows and macOS disks."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class MoveIncomplete(CheckpointError):
    """A move failed and undoing the moves already made failed too: the files are split."""


class NothingMoved(CheckpointError):
    """A move refused for a reason that may pass (a folder that cannot be written, a full disk):
    nothing was moved, so the same move can be tried again."""


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
        left = []
        for source, target in reversed(done):
            try:
                os.rename(target, source)
            except OSError:
                left.append(target)  # still on disk, under its new name: the journal knows
        if left:
            raise MoveIncomplete(f"{first_line(exc)}; {left[0].name} could not be moved back (it "
                                 "is put back when this window closes, or the app next starts)") \
                from None
        if isinstance(exc, CheckpointError):
            raise
        gone = isinstance(exc, FileNotFoundError)  # (vanished: trying again will not help)
        raise (CheckpointError if gone else NothingMoved)(
            f"{first_line(exc)} (nothing was moved)") from None


@contextmanager
def journaled(folder: Path, moves: list[tuple[Path, Path]], back: bool = True):
    """Keep a journal of ``moves`` in ``folder`` while the with-block makes them. Should the
    process die inside the block, :func:`recover_moves` settles them: back to the sources
    (``back``) or on to the targets. An exception the block raises means it undid its moves
    (:func:`move_all`), and the journal goes; not so for :class:`MoveIncomplete` or Ctrl+C."""
    folder = Path(folder)
    journal = folder / f".moving.{uuid.uuid4().hex}.json"
    record = {"pid": os.getpid(), "started": process_started(os.getpid()), "token": _TOKEN,
              "back": back, "moves": [[str(source), str(target)] for source, target in moves]}
    try:
        atomic_write_bytes(journal, json.dumps(record, indent=1).encode())
    except OSError as exc:
        raise NothingMoved(f"cannot write in {folder}: {first_line(exc)} (nothing was moved)") \
            from None
    with _lock(journal, wait=True):  # held while moving: another process never settles it
        try:
            yield
        except MoveIncomplete:
            raise  # split: the journal stays for the next start (or this window's close)
        except Exception:
            _forget(journal, moves)
            raise
        _forget(journal, moves)


@contextmanager
def _lock(journal: Path, wait: bool = False):
    """An exclusive lock on ``journal`` (where the OS has ``flock``: POSIX); yields whether it
    was got (without ``wait``, False while another process holds it, or the journal is gone)."""
    try:
        import fcntl
    except ImportError:  # Windows: the owner's pid says whether it still runs
        yield journal.exists()
        return
    try:
        fd = os.open(journal, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            yield False
            return
        try:  # the journal may have been settled and removed while this waited
            same = os.path.samestat(os.fstat(fd), os.stat(journal))
        except OSError:
            same = False
        yield same
    finally:
        os.close(fd)


def _forget(journal: Path, moves) -> None:
    for folder in {Path(p).parent for move in moves for p in move}:
        try:  # the moves reach the disk before the journal's removal does
            _fsync_dir(folder)
        except OSError:
            pass
    try:
        journal.unlink(missing_ok=True)
    except OSError as exc:  # the moves are done: a journal left over is settled as done later
        log.warning("could not remove %s: %s", journal.name, first_line(exc))


def recover_moves(folder: Path, trash: Path | None = None, own: bool = False) -> list[Path]:
    """Settle the moves that processes which died part-way left in ``folder``'s journals; returns
    the checkpoints (``.keras`` paths) made whole. Never raises: a journal it cannot settle is
    left, with a line in the log. Left alone: a journal whose process still runs (another
    window moving files now), one naming a file outside ``folder`` and ``trash``, one that
    cannot be read (nothing :func:`journaled` writes) or whose moves meet files it does not
    own (see :func:`_settle`). With ``own``, also this process's journals (kept after a
    :class:`MoveIncomplete`): the window calls it so when it closes, when nothing moves."""
    folder = Path(folder)
    settled = []
    try:
        journals = sorted(folder.glob(JOURNAL_GLOB)) if folder.is_dir() else []
    except OSError:
        return settled
    for journal in journals:
        try:
            with _lock(journal) as mine:  # not while its owner moves, or another settles it
                if mine:
                    settled += _recover(journal, folder, trash, own)
        except Exception as exc:  # noqa: BLE001 - a journal is a file on disk: never a crash
            log.warning("could not settle %s: %s", journal.name, first_line(exc))
    return settled


def _recover(journal: Path, folder: Path, trash: Path | None, own: bool) -> list[Path]:
    record = json.loads(journal.read_text(encoding="utf-8"))
    pid, started, back = int(record["pid"]), str(record["started"]), bool(record["back"])
    moves = [(Path(source), Path(target)) for source, target in record["moves"]]
    if pid == os.getpid():
        if record.get("token") == _TOKEN and not own:
            return []  # this process, moving them now
    elif same_process_alive(pid, started):
        return []  # another window, moving them now
    if not all(_allowed(p, folder, trash) for move in moves for p in move):
        raise CheckpointError("it names files outside the library")
    models = _settle(moves, back, trash)
    _forget(journal, moves)
    return models


def _allowed(path: Path, folder: Path, trash: Path | None) -> bool:
    parent = Path(path).parent.resolve()
    return parent == folder.resolve() or (trash is not None and (
        parent == Path(trash).resolve() or Path(trash).resolve() in parent.parents))


def _settle(moves: list[tuple[Path, Path]], back: bool, trash: Path | None) -> list[Path]:
    """All the files to where ``back`` says (on, when every move was made), or none of them.
    A file of another checkpoint in the way (its name taken since the crash) is never moved or
    overwritten: files coming out of the trash (surely this checkpoint's) then go under a free
    name; others stay as they are, and the journal with them."""
    done = all(_listed(target) and not _listed(source) for source, target in moves)
    if back and not done:  # (done: only the journal's removal was left: it stands)
        steps = [(target, source) for source, target in reversed(moves)]
    else:
        steps = list(moves)
    clash = [(start, end) for start, end in steps
             if start.exists() and end.exists() and not same_file(start, end)]
    if clash:
        if trash is None or not all(Path(trash).resolve() in start.parent.resolve().parents
                                    for start, _ in clash):
            raise CheckpointError(f"{clash[0][1].name} belongs to another checkpoint now")
        steps = _free_stem(steps)
    todo = [(start, end) for start, end in steps
            if start.exists() and (not end.exists() or same_file(start, end))]
    move_all(todo)
    names = {p.stem for move in moves for p in move if p.suffix == ".keras"}
    models = [end for _, end in steps if end.suffix == ".keras" and end.exists()]
    for model in models:
        _match_name(model, names)
    return models


def _listed(path: Path) -> bool:
    """``path`` exists under exactly that name (on disks that ignore case, "Mine.keras" is
    not listed while the file is still called "mine.keras")."""
    try:
        return path.name in os.listdir(path.parent)
    except OSError:
        return False


def _free_stem(steps: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """``steps`` with each file that is (or goes) where another checkpoint now is moved
    under the first free "STEM (n)" instead."""
    [model] = [end for _, end in steps if end.suffix == ".keras"] or [None]
    if model is None:
        raise CheckpointError("no model among the files")
    stem = model.stem
    n = 2
    while True:
        renamed = [(end if end.exists() and not start.exists() else start,
                    end.with_name(end.name.replace(stem, f"{stem} ({n})", 1)))
                   for start, end in steps]
        if not any(end.exists() for _, end in renamed):
            return renamed
        n += 1


def _match_name(model: Path, names: set[str]) -> None:
    """A rename cut short after its new sidecar was written, or a checkpoint settled under a
    free name: the sidecar names the checkpoint by its name on disk (only a name the journal
    knew is replaced; a sidecar that cannot be read or written stays as it is)."""
    try:
        info = read_info(model)
        if info.name != model.stem and info.name in names:
            text = replace(info, name=model.stem).to_json().encode()
            atomic_write_bytes(sidecar_path(model), text)
            pending_sidecar_path(model).unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - an untrusted sidecar: the name is cosmetic
        log.warning("left the name in %s's sidecar: %s", model.name, first_line(exc))
