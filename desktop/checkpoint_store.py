"""The checkpoint library as the window sees it: a table model over ``training.library`` entries,
rename and delete as undoable commands (``QUndoStack``), and the active checkpoint.

Deleted checkpoints go to a trash folder inside the per-user data folder; Ctrl+Z brings them back
until the app closes, when the trash is emptied.
"""
from __future__ import annotations

import os
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont, QUndoCommand, QUndoStack

from training.checkpoints import CheckpointError
from training.library import (Entry, clean_debris, empty_trash, list_checkpoints, prune_trash,
                              rename_checkpoint, restore_checkpoint, trash_checkpoint)
from training.moves import NothingMoved, recover_moves
from training.paths import user_evaluations_dir

from .table_model import RowsTableModel

COLUMNS = ("Name", "Created", "Classes", "Accuracy", "Data fingerprint", "Parent", "Size")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def _classes_tip(names, shown: int = 50) -> str:
    """The class names for a tooltip: in lines a tooltip can show, the first ``shown`` of a
    checkpoint with hundreds (the details pane lists them all)."""
    more = f" … and {len(names) - shown} more" if len(names) > shown else ""
    text = f"Classes ({len(names)}): " + ", ".join(names[:shown]) + more
    return textwrap.fill(text, 80, break_long_words=False, break_on_hyphens=False)


class CheckpointTableModel(RowsTableModel):
    """One row per checkpoint; the active one is bold and marked."""

    HEADERS = COLUMNS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.entries: list[Entry] = []
        self.active: Path | None = None

    def set_entries(self, entries: list[Entry], active: Path | None) -> None:
        self.beginResetModel()
        self.entries, self.active = entries, active
        self.endResetModel()

    def rows(self) -> list:
        return self.entries

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry, column = self.entries[index.row()], index.column()
        active = self.active is not None and entry.path == self.active
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(entry, column, active)
        if role == Qt.ItemDataRole.FontRole and active:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if entry.error:
                return entry.error
            tip = str(entry.path) + ("\n(bundled with the app: read-only)" if entry.bundled else "")
            return tip + (f"\n{_classes_tip(entry.info.class_names)}" if entry.info else "")
        if role == Qt.ItemDataRole.UserRole:
            return entry
        return None

    @staticmethod
    def _text(entry: Entry, column: int, active: bool) -> str:
        info = entry.info
        if column == 0:
            return ("● " if active else "") + entry.name + (" (bundled)" if entry.bundled else "")
        if info is None:
            return "unreadable" if column == 1 else ""
        if column == 1:
            return info.created[:16].replace("T", " ") or "—"
        if column == 2:  # all of them: the view cuts what its column cannot show
            return ", ".join(info.class_names)
        if column == 3:
            acc = entry.accuracy
            return f"{acc[1]:.2%} {acc[0]}" if acc else "—"
        if column == 4:
            return info.data_fingerprint.removeprefix("sha256:")[:12] or "—"
        if column == 5:
            return info.parent or "—"
        return _size(entry.size)


class _Step(QUndoCommand):
    """A rename or delete already done when pushed (push does not redo it: errors stay in our
    hands). A step refused because a running job holds its checkpoint, or that failed (the
    folder could not be written), is not taken: the stack goes back to where it was (see
    :meth:`CheckpointStore.refused`), so Undo and Redo still offer it (once the job ends)."""

    def __init__(self, store: "CheckpointStore", text: str) -> None:
        super().__init__(text)
        self.store = store
        self.skip = True  # the next redo or undo is no step: push's redo, or the stack set back

    def redo(self) -> None:
        if self.skip:
            self.skip = False
        elif not self.store.refused(self, self.held_by_redo()):
            self.forward()

    def undo(self) -> None:
        if self.skip:
            self.skip = False
        elif not self.store.refused(self, self.held_by_undo()):
            self.backward()


class _DeleteCommand(_Step):
    def __init__(self, store: "CheckpointStore", record, was_active: bool = False) -> None:
        super().__init__(store, f"Delete {record.original.stem}")
        self.record = record
        self.was_active = was_active  # predictions used it: an undo uses it again

    def held_by_redo(self) -> Path:
        return self.record.original

    def held_by_undo(self) -> None:
        return None  # put back from the trash (under a free name if its own was taken)

    def forward(self) -> None:
        original = self.record.original
        self.was_active = original == self.store.active
        record = self.store.guard(self, lambda: trash_checkpoint(self.store.free(original),
                                                                 self.store.trash))
        self.record = record or self.record
        self.store.refresh()
        if record is not None:
            self.store.stepped.emit(f"Deleted {original.stem} again (Ctrl+Z to undo)", None)
        if record is not None and self.was_active:
            # put back and used since: as when deleted, predictions go back to the bundled one
            self.store.set_active(self.store.bundled)

    def backward(self) -> None:
        restored = self.store.guard(self, lambda: restore_checkpoint(self.record))
        if restored is not None and restored != self.record.original:
            # restored under a free name (its own was taken meanwhile): redo deletes that one
            self.record = replace(self.record, original=restored)
            self.setText(f"Delete {restored.stem}")
        self.store.refresh()
        if restored is None:
            return
        used = self.was_active and self.store.active == self.store.bundled  # (none chosen since)
        if used:  # as before the delete: predictions use it, and the next launch too
            self.store.set_active(restored)
        again = ", in use for predictions again" if used else ""
        self.store.stepped.emit(f"Restored {restored.stem}{again}", restored)


class _RenameCommand(_Step):
    def __init__(self, store: "CheckpointStore", old: Path, new: Path) -> None:
        super().__init__(store, f"Rename {old.stem} to {new.stem}")
        self.old, self.new = old, new

    def held_by_redo(self) -> Path:
        return self.old

    def held_by_undo(self) -> Path:
        return self.new

    def forward(self) -> None:
        if self.store.guard(self, lambda: rename_checkpoint(self.store.free(self.old),
                                                      self.new.stem)) is not None:
            self.store.follow(self.old, self.new)
            self.store.stepped.emit(f"Renamed {self.old.stem} to {self.new.stem} again", self.new)

    def backward(self) -> None:
        if self.store.guard(self, lambda: rename_checkpoint(self.store.free(self.new),
                                                      self.old.stem)) is not None:
            self.store.follow(self.new, self.old)
            self.store.stepped.emit(f"Renamed {self.new.stem} back to {self.old.stem}", self.old)


class CheckpointStore(QObject):
    """The bundled checkpoint, the user's checkpoints and which one is active."""

    active_changed = Signal(object)  # Path: use this checkpoint for predictions now
    error = Signal(str)  # a one-line reason an operation was refused
    moved = Signal(object, object)  # old Path, new Path: renamed (or a rename undone)
    listed = Signal()  # the list was read again (deleted, restored, renamed, trained...)
    stepped = Signal(str, object)  # what an undo or redo did, and the checkpoint to show (or None)

    def __init__(self, folder: Path, bundled: Path, trash: Path, undo_stack: QUndoStack | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.folder, self.bundled = Path(folder), Path(bundled)
        # this window's own trash: another running instance empties only its own when it closes
        self.trash = Path(trash) / f"session-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._trash_root = Path(trash)
        recover_moves(self.folder, self._trash_root)  # renames and deletes a crash cut short
        prune_trash(Path(trash))  # what crashed sessions left behind, weeks ago
        clean_debris(self.folder)  # saves and imports killed mid-way, days ago
        # the checkpoints running jobs write (a training run), read (its parent, an export) or
        # store results in (an evaluation), and the parents of unfinished runs: not renamed or
        # deleted under them. The window sets this: path -> what holds it and what to do
        self.in_use = lambda: {}
        self.overlays = user_evaluations_dir()
        self.model = CheckpointTableModel(self)
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self._set_back: tuple[_Step, int] | None = None  # a refused step, the index it left
        self.undo_stack.indexChanged.connect(self._set_back_refused)
        self.active: Path = self.bundled

    def refresh(self) -> None:
        recover_moves(self.folder, self._trash_root)  # also another window's, that crashed since
        entries = [self._with_overlay(e) for e in list_checkpoints(self.folder, self.bundled)]
        self.model.set_entries(entries, self.active)
        self.listed.emit()

    def _with_overlay(self, entry: Entry) -> Entry:
        """The evaluations of a read-only checkpoint (the bundled one, a read-only sidecar or
        folder) live in the user folder; show them with it."""
        if entry.info is None:
            return entry
        from training.evaluation_store import overlay_path, stored_evaluations
        overlay = overlay_path(entry.path, self.overlays, entry.info)
        if not entry.bundled and not overlay.is_file():
            return entry
        info = replace(entry.info, evaluations=stored_evaluations(entry.info, overlay))
        test = info.evaluations.get("CIFAR-10 test part")
        if isinstance(test, dict) and isinstance(test.get("accuracy"), (int, float)):
            # measured here beats the figure recorded at training time
            info = replace(info, metrics={**info.metrics, "test_accuracy": test["accuracy"]})
        return replace(entry, info=info)

    def entry(self, path: Path) -> Entry | None:
        return next((e for e in self.model.entries if e.path == Path(path)), None)

    def set_active(self, path: Path) -> None:
        """Make ``path`` the checkpoint predictions use (the window reloads the session)."""
        self.active = Path(path)
        self.model.set_entries(self.model.entries, self.active)
        self.active_changed.emit(self.active)

    def delete(self, path: Path) -> bool:
        """Move a user checkpoint to the trash (undoable); the bundled one is refused."""
        path = Path(path)
        if path == self.bundled:
            self.error.emit("The bundled checkpoint cannot be deleted.")
            return False
        try:
            record = trash_checkpoint(self.free(path), self.trash)
        except (CheckpointError, OSError) as exc:
            self.error.emit(f"Could not delete {path.stem}: {exc}")
            self.refresh()  # the table shows the files as they are (gone: its row goes)
            return False
        self.undo_stack.push(_DeleteCommand(self, record, path == self.active))
        self.refresh()
        if path == self.active:
            self.set_active(self.bundled)
        return True

    def rename(self, path: Path, name: str) -> Path | None:
        path = Path(path)
        if path == self.bundled:
            self.error.emit("The bundled checkpoint cannot be renamed.")
            return None
        try:
            new = rename_checkpoint(self.free(path), name)
        except (CheckpointError, OSError) as exc:
            self.error.emit(f"Could not rename {path.stem}: {exc}")
            self.refresh()  # the table shows the files as they are
            return None
        self.undo_stack.push(_RenameCommand(self, path, new))
        self.follow(path, new)
        return new

    def free(self, path: Path) -> Path:
        """``path``, unless a job holds it (then undo and redo leave it alone too)."""
        holder = self.in_use().get(Path(path))
        if holder:
            raise CheckpointError(f"{Path(path).stem} is in use by {holder}")
        return path

    def refused(self, command: _Step, path: Path | None) -> bool:
        """Whether an undo or redo of ``command`` must wait: a running job holds ``path``. Then
        it says so, and the stack, which moves on once the command returns, is set back."""
        holder = self.in_use().get(Path(path)) if path is not None else None
        if not holder:
            return False
        self.error.emit(f"Could not undo or redo: {Path(path).stem} is in use by {holder}")
        self._set_back = (command, self.undo_stack.index())  # not moved yet: it is stepping
        return True

    def _set_back_refused(self, *_) -> None:
        """The stack stepped past a refused command: back to where it was, without running it
        (the Edit menu's Undo and Redo offer the same steps as before)."""
        if self._set_back is None:
            return
        command, index = self._set_back
        self._set_back = None
        command.skip = True  # setIndex runs its other half once: that is no step
        self.undo_stack.setIndex(index)

    def guard(self, command: _Step, action):
        """Run an undo/redo step of ``command``; a failure becomes a message, not a crash, and
        None. One that may pass (the folder cannot be written, the disk is full) does not take
        the step: the stack is set back as for a refused one, so Ctrl+Z (or Ctrl+Shift+Z) can
        try it again. One that cannot (the file vanished, its name is taken) uses the step up,
        so the steps before it stay reachable (a delete among them: its trash goes on close)."""
        try:
            return action()
        except (CheckpointError, OSError) as exc:
            self.error.emit(f"Could not undo or redo: {exc}")
            if isinstance(exc, NothingMoved):  # not moved yet: it is stepping
                self._set_back = (command, self.undo_stack.index())
            return None

    def follow(self, old: Path, new: Path) -> None:
        """After a rename (or its undo): the active checkpoint keeps being the same file."""
        self.moved.emit(old, new)
        if self.active == old:
            self.active = new
            self.refresh()
            self.active_changed.emit(new)
        else:
            self.refresh()

    def close(self) -> None:
        """The app closes: what was deleted is deleted for good."""
        self.undo_stack.clear()
        recover_moves(self.folder, self._trash_root, own=True)  # a delete that failed half-way:
        empty_trash(self.trash)  # its files come back before the trash goes
