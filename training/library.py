"""The user's checkpoint library: list, rename, delete to a trash that can be restored
(importing a file: :mod:`training.importing`; comparing two checkpoints: :mod:`training.compare`).

The bundled checkpoint is listed first and is read-only. User checkpoints live in the per-user
folder (:func:`training.paths.user_checkpoints_dir`); a checkpoint's files are ``NAME.keras``,
``NAME.json`` and optionally ``NAME.history.csv`` / ``NAME.history.json``, and they move together.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from .checkpoints import (CheckpointError, CheckpointInfo, atomic_write_bytes,
                          pending_sidecar_path, read_info, read_sidecar, settle_pending,
                          sidecar_path)
from .moves import MoveIncomplete, journaled, move_all, same_file
from .reporting import first_line

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[\w][\w .,()+=-]{0,79}$")  # no path separators, no leading dot
# A name's UTF-8 bytes, so that NAME plus the longest suffix a file gets (".NAME.json.pending",
# a temporary ".NAME.history.json.XXXXXXXX.tmp", " (12)") stays under the 255 bytes most file
# systems allow in one file name: 80 characters of a CJK script are 240 bytes.
NAME_MAX_BYTES = 160


@dataclass(frozen=True)
class Entry:
    """One checkpoint as the library lists it; ``info`` is None when its sidecar is unreadable."""

    path: Path
    info: CheckpointInfo | None
    bundled: bool = False
    size: int = 0  # bytes of the .keras file
    error: str = ""  # why the sidecar could not be read

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def accuracy(self) -> tuple[str, float] | None:
        """The most trustworthy accuracy recorded: test, else validation (with flip TTA)."""
        metrics = self.info.metrics if self.info else {}
        for key, label in (("test_accuracy", "test"), ("val_accuracy_tta", "validation"),
                           ("val_accuracy", "validation")):
            if isinstance(metrics.get(key), (int, float)):
                return label, float(metrics[key])
        return None


def checkpoint_files(path: Path, pending: bool = True) -> list[Path]:
    """The files that make up the checkpoint at ``path`` and exist (with ``pending``, also the
    sidecar of a save cut short between its two renames, which :func:`read_info` may prefer)."""
    stem = path.with_suffix("")
    candidates = [path, sidecar_path(path), Path(f"{stem}.history.csv"), Path(f"{stem}.history.json")]
    if pending:
        candidates.append(pending_sidecar_path(path))
    return [p for p in candidates if p.exists()]


def read_entry(path: Path, bundled: bool = False) -> Entry:
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    try:
        return Entry(path, read_info(path), bundled, size)
    except CheckpointError as exc:
        return Entry(path, None, bundled, size, str(exc))
    except Exception as exc:  # noqa: BLE001 - a sidecar is untrusted: one line, never a crash
        return Entry(path, None, bundled, size, f"invalid sidecar: {first_line(exc)}")


def list_checkpoints(folder: Path, bundled: Path | None = None) -> list[Entry]:
    """The bundled checkpoint (when given and present), then ``folder``'s, newest first."""
    entries = [read_entry(bundled, True)] if bundled is not None and bundled.is_file() else []
    user = [read_entry(p) for p in Path(folder).glob("*.keras")
            if not p.name.startswith(".")] if Path(folder).is_dir() else []
    user.sort(key=lambda e: (e.info.created if e.info else "", e.name), reverse=True)
    return entries + user


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise CheckpointError("a name is 1-80 letters, digits, spaces or . , ( ) + = - _ and "
                              "starts with a letter or digit")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise CheckpointError(f"that name is too long for a file name ({NAME_MAX_BYTES} bytes "
                              "at most; letters of some scripts take 3 bytes each)")
    if name.lower().endswith(".history"):  # NAME.history.json is the history of NAME
        raise CheckpointError("a name cannot end in .history")
    return name


def rename_checkpoint(path: Path, new_name: str) -> Path:
    """Rename all of a checkpoint's files; its sidecar's name and its children's parent follow.

    Raises:
        CheckpointError: invalid name, the checkpoint's model file is gone (deleted behind the
            app's back: nothing is moved or rewritten), or a checkpoint of that name exists.
    """
    path = Path(path)
    new_name = check_name(new_name)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    target = path.with_name(f"{new_name}.keras")
    if target.name == path.name:  # not ``==``: Windows paths compare ignoring case
        return path
    if any(p.exists() and not same_file(p, mine) for p, mine in
           ((target, path), (sidecar_path(target), sidecar_path(path)))):
        raise CheckpointError(f"a checkpoint named {new_name} already exists")
    try:  # a save cut short: its pending sidecar becomes NAME.json, which the journal moves
        settle_pending(path)
        info = read_info(path)
    except CheckpointError:
        info = None  # an unreadable sidecar moves along as it is
    except OSError as exc:
        raise CheckpointError(f"cannot settle its sidecar: {first_line(exc)}") from None
    old_name = path.stem
    try:  # serialised before anything moves: a sidecar that cannot be written stops it here
        text = replace(info, name=new_name).to_json().encode() if info is not None else None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"its sidecar cannot be rewritten: {first_line(exc)}") from None
    moves = [(file, target.parent / file.name.replace(old_name, new_name, 1))
             for file in checkpoint_files(path, pending=False)]
    with journaled(target.parent, moves, back=True):  # a crash part-way: the old name again
        move_all(moves)
        if text is not None:
            try:
                atomic_write_bytes(sidecar_path(target), text)
            except OSError as exc:
                why = first_line(exc)
                try:
                    move_all([(new, old) for old, new in moves])
                except CheckpointError:  # neither way through: the journal settles it
                    raise MoveIncomplete(f"renamed, but its sidecar could not be rewritten "
                                         f"({why})") from None
                raise CheckpointError(f"cannot write its sidecar: {why}") from None
            pending_sidecar_path(path).unlink(missing_ok=True)  # its contents are the sidecar now
    for sibling in target.parent.glob("*.json"):  # best effort: the rename has happened
        try:
            _rename_parent(sibling, old_name, new_name, info.model_sha256 if info else "")
        except Exception:  # noqa: BLE001 - a child's sidecar that cannot be rewritten keeps
            log.warning("could not point %s at %s", sibling.name, new_name, exc_info=True)
    return target


def _rename_parent(side: Path, old: str, new: str, sha256: str) -> None:
    """A child of the renamed checkpoint names its new name. A child that recorded its parent's
    model hash follows only the checkpoint with that hash: another one once given the same name
    (an import, a parent deleted and its name reused) is not its parent."""
    if side.name.endswith(".history.json"):
        return
    try:
        info = read_sidecar(side)  # (its size checked before it is read)
    except (CheckpointError, OSError, UnicodeDecodeError):  # not ours to read: left as it is
        return
    if info.parent == old and not (info.parent_sha256 and sha256 and info.parent_sha256 != sha256):
        atomic_write_bytes(side, replace(info, parent=new).to_json().encode())


@dataclass(frozen=True)
class Trashed:
    """Where a deleted checkpoint's files went, so they can be put back."""

    original: Path  # the .keras path it had
    folder: Path  # the trash subfolder holding its files


def trash_checkpoint(path: Path, trash: Path) -> Trashed:
    """Move a checkpoint's files into a new subfolder of ``trash`` (same file system: a rename)."""
    path = Path(path)
    files = checkpoint_files(path)
    if not files:
        raise CheckpointError(f"checkpoint not found: {path}")
    trash.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="deleted.", dir=trash))
    moves = [(file, folder / file.name) for file in files]
    try:
        with journaled(path.parent, moves, back=True):  # a crash part-way: not deleted
            move_all(moves)
    except MoveIncomplete:
        raise  # some files are in the folder: the journal brings them back
    except CheckpointError:
        folder.rmdir()
        raise
    return Trashed(path, folder)


def restore_checkpoint(record: Trashed) -> Path:
    """Put a trashed checkpoint back where it was; if that name was taken meanwhile, under a
    free one ("NAME (restored)"). Returns where it now is."""
    original = record.original
    name = free_name(original.parent, original.stem, first=" (restored)")

    def moves() -> list[tuple[Path, Path]]:
        return [(file, original.parent / file.name.replace(original.stem, name, 1))
                for file in sorted(record.folder.iterdir())]

    trashed = record.folder / original.name
    try:  # a save cut short: its pending sidecar becomes NAME.json, which the journal moves
        settle_pending(trashed)
    except OSError as exc:
        raise CheckpointError(f"cannot settle its sidecar: {first_line(exc)}") from None
    with journaled(original.parent, moves(), back=False):  # a crash part-way: restored
        if name != original.stem:
            try:
                text = replace(read_info(trashed), name=name).to_json().encode()
            except (CheckpointError, ValueError, RecursionError):
                text = None  # a sidecar that cannot be rewritten keeps the name it had
            if text is not None:
                atomic_write_bytes(sidecar_path(trashed), text)
        move_all(moves())
    record.folder.rmdir()
    return original.with_name(f"{name}.keras")


def empty_trash(trash: Path) -> None:
    """Delete for good what was trashed (the app does this when it closes)."""
    shutil.rmtree(trash, ignore_errors=True)


def prune_trash(root: Path, days: float = 14) -> None:
    """Remove trash folders under ``root`` left by app sessions that ended without closing
    (a crash) more than ``days`` ago. A window still open keeps its folder however old (its
    deletes can be undone until it closes): ``session-PID-...`` names its process."""
    import time

    if not Path(root).is_dir():
        return
    for folder in Path(root).iterdir():
        try:
            if (folder.is_dir() and time.time() - folder.stat().st_mtime > days * 86400
                    and not _owner_running(folder.name)):
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _owner_running(name: str) -> bool:
    """Whether the process a trash folder ``session-PID-...`` names still runs (a number taken
    since by another process keeps the folder until that one ends too: kept, never lost)."""
    from .processes import alive

    parts = name.split("-")
    return len(parts) >= 3 and parts[0] == "session" and parts[1].isdigit() and alive(int(parts[1]))


def clean_debris(folder: Path, days: float = 1) -> list[Path]:
    """Remove what saves and imports killed mid-way left in ``folder`` more than ``days`` ago:
    import staging folders (``.import.*``) and temporary files (``.NAME.*.keras``,
    ``.NAME.*.tmp``). Pending sidecars stay (:func:`read_info` may need one). Returns them."""
    import time

    removed = []
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).glob(".*"):
        try:
            old = time.time() - path.lstat().st_mtime > days * 86400
            if not old:
                continue
            if path.is_dir() and path.name.startswith(".import."):
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file() and path.suffix in (".keras", ".tmp"):
                path.unlink()
            else:
                continue
            removed.append(path)
        except OSError:
            pass
    return removed


def _safe_stem(stem: str, fallback: str = "imported", room: int = 8) -> str:
    """``stem`` as a valid checkpoint name, with ``room`` bytes left over (for " (12)")."""
    cleaned = re.sub(r"[^\w .,()+=-]", "_", stem).strip(" .") or fallback
    cleaned = cleaned if cleaned[0].isalnum() else f"{fallback} {cleaned}"
    cleaned = re.sub(r"\.history$", "", cleaned[:80 - room], flags=re.IGNORECASE)
    while len(cleaned.encode("utf-8")) > NAME_MAX_BYTES - room:
        cleaned = cleaned[:-1]
    return cleaned.strip(" .") or fallback


def run_name(data_path, when: str) -> str:
    """A new run's checkpoint name: its data's name and the time (``when``, ISO), made a name
    that rename and its undo accept (a folder named "cats & dogs" gives "cats _ dogs-...")."""
    stamp = "-" + when[:19].replace(":", "")
    stem = Path(str(data_path).rstrip("/\\")).name
    for suffix in (".tar.gz", ".tar.xz", ".tar.bz2", ".tgz", ".tar", ".zip"):  # an archive's
        if stem.lower().endswith(suffix):  # type, not a folder's dots ("photos.v1 café")
            stem = stem[:-len(suffix)]
            break
    return check_name(_safe_stem(stem, fallback="run", room=len(stamp.encode())) + stamp)


def free_name(folder: Path, name: str, first: str = " (2)") -> str:
    """``name``, or the first of ``name`` + ``first``, "name (3)", ... no checkpoint uses."""
    def taken(candidate: str) -> bool:  # any of a checkpoint's files (a history left alone)
        return bool(checkpoint_files(folder / f"{candidate}.keras"))

    if not taken(name):
        return name
    if not taken(name + first):
        return name + first
    n = 3 if first == " (2)" else 2
    while taken(f"{name} ({n})"):
        n += 1
    return f"{name} ({n})"
