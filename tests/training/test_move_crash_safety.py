"""A rename, a delete or a restore killed (SIGKILL) before any of its file moves leaves, once the
next start has settled its journal, one whole checkpoint under one name: model, sidecar naming
it, history, nothing lost and nothing left half here and half there."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.checkpoints import CheckpointInfo, file_sha256, read_info, save_checkpoint
from training.library import list_checkpoints, trash_checkpoint
from training.model import build_model
from training.moves import JOURNAL_GLOB, recover_moves

ROOT = Path(__file__).resolve().parents[2]

# The child kills itself just before its N-th os.rename, os.replace or os.unlink (a journal
# write is one os.replace, its removal one os.unlink), in the middle of one library operation.
CHILD = r"""
import os, signal, sys
from pathlib import Path
from training import library
op, step, a, b = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
count = [0]
def killing(real):
    def call(*args, **kwargs):
        count[0] += 1
        if count[0] == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
os.rename, os.replace, os.unlink = killing(os.rename), killing(os.replace), killing(os.unlink)
if op == "rename":
    library.rename_checkpoint(a, b)
elif op == "trash":
    library.trash_checkpoint(a, Path(b))
else:
    library.restore_checkpoint(library.Trashed(a, Path(b)))
"""


def make(folder, name, seed):
    import keras
    keras.utils.set_random_seed(seed)
    path = save_checkpoint(build_model(3, widths=(4, 8, 8), stem=4),
                           CheckpointInfo(class_names=("a", "b", "c"), seed=seed),
                           folder / f"{name}.keras")
    Path(f"{folder / name}.history.csv").write_text(f"epoch,loss\n0,{seed}\n")
    return path


def run_child(op, step, a, b):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, op, str(step), str(a), str(b)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120).returncode


def whole(lib, name, digest, seed):
    """``lib`` holds checkpoint ``name`` whole: the model, a sidecar that names it, its history."""
    model = lib / f"{name}.keras"
    info = read_info(model)
    return (file_sha256(model) == digest and info.model_sha256 == digest and info.name == name
            and (lib / f"{name}.history.csv").read_text() == f"epoch,loss\n0,{seed}\n")


def visible(folder):
    return sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith("."))


def files_of(*names):
    return sorted(f"{name}{suffix}" for name in names for suffix in (".history.csv", ".json",
                                                                     ".keras"))


@pytest.mark.parametrize("op", ["rename", "rename pending", "trash", "restore"])
def test_an_operation_killed_before_any_of_its_file_steps_leaves_one_whole_checkpoint(tmp_path,
                                                                                        op):
    """Killed before each os.rename/replace/unlink in turn, until one run finishes; after the
    next start's recovery the folders hold exactly one whole checkpoint (and no journal)."""
    template = tmp_path / "template"
    mine = make(template / "lib", "mine", seed=0)
    digest = file_sha256(mine)
    if op == "rename pending":  # a first save cut short between its renames: no mine.json yet
        os.rename(template / "lib" / "mine.json", template / "lib" / ".mine.json.pending")
    if op == "restore":  # deleted, and its name taken meanwhile: it comes back renamed
        trashed = trash_checkpoint(mine, template / "trash" / "session-1")
        make(template / "lib", "mine", seed=1)
    outcomes = set()
    for step in range(1, 20):
        root = tmp_path / f"step{step}"
        shutil.copytree(template, root)
        lib, trash = root / "lib", root / "trash"
        if op.startswith("rename"):
            code = run_child("rename", step, lib / "mine.keras", "renamed")
        elif op == "trash":
            code = run_child(op, step, lib / "mine.keras", trash / "session-2")
        else:
            folder = root / trashed.folder.relative_to(template)
            code = run_child(op, step, lib / "mine.keras", folder)
        assert code in (0, -9), (step, code)
        back = any(lib.glob("mine.*"))  # a file not moved yet: a rename or delete goes back
        recover_moves(lib, trash)
        assert not list(lib.glob(JOURNAL_GLOB)), step
        names = [e.name for e in list_checkpoints(lib)]
        if op.startswith("rename"):  # the old name, as if never asked, or (all moved) the new
            expected = files_of(*names)
            if (lib / ".mine.json.pending").exists():  # (killed before it became mine.json)
                expected.remove("mine.json")
            assert names == (["mine"] if back else ["renamed"]) and visible(lib) == expected, step
            assert whole(lib, names[0], digest, seed=0), step
        elif op == "trash":  # still there, or (all moved) deleted whole
            [where] = [lib] if names else list(trash.glob("session-2/deleted.*"))
            assert names == (["mine"] if back else []) and visible(where) == files_of("mine"), step
            assert whole(where, "mine", digest, seed=0), step
        elif step == 1:  # killed before its journal was written: nothing has moved yet
            assert names == ["mine"] and whole(folder, "mine", digest, seed=0)
        else:  # cut short later: restored all the same, under the free name
            assert visible(lib) == files_of("mine", "mine (restored)"), step
            assert whole(lib, "mine (restored)", digest, seed=0), step
        outcomes.add(code)
        if code == 0:
            break
    assert outcomes == {-9, 0}  # killed at every step, then a run that finished


def test_a_restore_cut_short_whose_name_another_checkpoint_took_since_gets_a_free_one(tmp_path):
    lib, trash = tmp_path / "lib", tmp_path / "trash"
    mine = make(lib, "mine", seed=0)
    digest = file_sha256(mine)
    trashed = trash_checkpoint(mine, trash / "session-1")
    make(lib, "mine", seed=1)  # its name taken: the restore goes to "mine (restored)"
    assert run_child("restore", 3, mine, trashed.folder) == -9  # journal, history, killed
    for file in lib.glob("mine (restored).*"):  # then another window's restore takes the name
        file.unlink()
    make(lib, "mine (restored)", seed=2)
    assert recover_moves(lib, trash) == [lib / "mine (restored) (2).keras"]
    assert visible(lib) == files_of("mine", "mine (restored)", "mine (restored) (2)")
    assert whole(lib, "mine (restored) (2)", digest, seed=0)
    assert whole(lib, "mine (restored)", file_sha256(lib / "mine (restored).keras"), seed=2)


def test_a_rename_cut_short_is_never_settled_over_a_checkpoint_made_since(tmp_path, caplog):
    lib = tmp_path / "lib"
    mine = make(lib, "mine", seed=0)
    assert run_child("rename", 3, mine, "renamed") == -9  # journal, model moved, then killed
    (lib / "mine.keras").write_bytes(b"a model saved under the old name since")
    before = {p.name: p.read_bytes() for p in lib.iterdir()}
    assert recover_moves(lib) == []
    assert {p.name: p.read_bytes() for p in lib.iterdir()} == before  # nothing moved, journal kept
    assert "belongs to another checkpoint" in caplog.text


def test_a_journal_of_a_process_still_moving_files_is_left_alone_until_it_is_gone(tmp_path):
    """Another window (a live process), or this process itself, is moving these files now;
    a pid that names another process since (a reboot) does not count."""
    from training import moves
    from training.processes import process_started
    lib = tmp_path / "lib"
    mine = make(lib, "mine", seed=0)
    moved = lib / "moved.keras"
    os.rename(mine, moved)  # part-way through a rename to "moved"
    journal = lib / ".moving.other.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        started = process_started(other.pid)
        assert started  # these tests run on Linux
        record = {"back": True, "token": "theirs", "moves": [[str(mine), str(moved)], [
            str(lib / "mine.json"), str(lib / "moved.json")]]}  # the sidecar not moved yet
        for pid, when in ((other.pid, started), (os.getpid(), process_started(os.getpid()))):
            token = moves._TOKEN if pid == os.getpid() else "theirs"
            journal.write_text(json.dumps({**record, "pid": pid, "started": when, "token": token}))
            assert recover_moves(lib) == [] and moved.exists() and not mine.exists()
        journal.write_text(json.dumps({**record, "pid": other.pid, "started": "other boot:1"}))
        assert recover_moves(lib) == [mine]  # that pid is another process now
    finally:
        other.kill()
        other.wait()
    assert read_info(mine).name == "mine" and not journal.exists()


@pytest.mark.parametrize("journal", [
    '{',
    '{"pid": 1e999, "started": "", "back": true, "moves": []}',
    '{"pid": 18446744073709551616, "started": "", "back": true, "moves": []}',
    '[' * 100_000 + ']' * 100_000,
    '{"pid": 0, "started": "", "back": true, "moves": [["OUTSIDE", "LIB/x.keras"]]}',
    '{"pid": 0, "started": "", "back": false, "moves": [["TRASH/link/secret.txt", "LIB/x.txt"]]}',
])
def test_a_hostile_or_broken_journal_moves_nothing_and_never_raises(tmp_path, journal):
    lib, trash, outside = tmp_path / "lib", tmp_path / "trash", tmp_path / "outside"
    for folder in (lib, trash, outside):
        folder.mkdir()
    (outside / "secret.txt").write_text("not the library's")
    (trash / "link").symlink_to(outside)  # inside the trash by name only
    journal = journal.replace("OUTSIDE", str(outside / "secret.txt")).replace(
        "TRASH", str(trash)).replace("LIB", str(lib))
    (lib / ".moving.crafted.json").write_text(journal)
    assert recover_moves(lib, trash) == []
    assert (outside / "secret.txt").exists() and visible(lib) == []


def test_a_rename_whose_journal_cannot_be_removed_stands_and_is_not_undone_later(tmp_path,
                                                                                  monkeypatch):
    """A journal held open by a virus scanner (Windows) after every move was made: the rename
    succeeds, and the next start keeps it."""
    from training.library import rename_checkpoint
    lib = tmp_path / "lib"
    mine = make(lib, "mine", seed=0)
    digest = file_sha256(mine)
    real_unlink = Path.unlink

    def held(path, missing_ok=False):
        if path.name.startswith(".moving."):
            raise PermissionError(13, "The process cannot access the file", str(path))
        return real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", held)
    assert rename_checkpoint(mine, "renamed") == lib / "renamed.keras"
    monkeypatch.setattr(Path, "unlink", real_unlink)
    [journal] = lib.glob(JOURNAL_GLOB)
    journal.write_text(journal.read_text().replace('"token"', '"was"'))  # its process is gone
    recover_moves(lib)
    assert visible(lib) == files_of("renamed") and whole(lib, "renamed", digest, seed=0)
    assert not journal.exists()


def test_a_journal_another_process_holds_is_not_settled_under_it(tmp_path):
    """A second window settling the same dead journal (both started at once) waits its turn:
    the lock, not the pid, says someone is at it."""
    lib = tmp_path / "lib"
    mine = make(lib, "mine", seed=0)
    os.rename(mine, lib / "moved.keras")
    journal = lib / ".moving.dead.json"
    journal.write_text(json.dumps({"pid": 0, "started": "", "back": True, "moves": [
        [str(mine), str(lib / "moved.keras")], [str(lib / "mine.json"), str(lib / "moved.json")]]}))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\n"
                               "time.sleep(120)", str(journal)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert recover_moves(lib) == [] and journal.exists()
        assert visible(lib) == ["mine.history.csv", "mine.json", "moved.keras"]
    finally:
        holder.kill()
        holder.wait()
    assert recover_moves(lib) == [mine] and visible(lib) == files_of("mine")


def failing_renames(monkeypatch, fail):
    """os.rename fails (a file held open on Windows) for the calls ``fail(n, source)`` picks."""
    from training import moves
    real, calls = moves.os.rename, []

    def rename(source, target):
        calls.append(source)
        if fail(len(calls), Path(source)):
            raise PermissionError(13, "The process cannot access the file", str(source))
        return real(source, target)

    monkeypatch.setattr(moves.os, "rename", rename)


def test_a_delete_that_can_neither_finish_nor_go_back_is_settled_and_loses_nothing(
        tmp_path, monkeypatch):
    from training.moves import MoveIncomplete
    lib, trash = tmp_path / "lib", tmp_path / "trash"
    mine = make(lib, "mine", seed=0)
    digest = file_sha256(mine)
    failing_renames(monkeypatch, lambda n, source: n >= 2)  # the 2nd move and the way back
    with pytest.raises(MoveIncomplete, match="could not be moved back"):
        trash_checkpoint(mine, trash / "session-1")
    monkeypatch.undo()
    assert not mine.exists()  # the model is in the trash, its sidecar is not
    assert recover_moves(lib, trash) == []  # this process's own journal: not while it runs
    assert recover_moves(lib, trash, own=True) == [mine]  # what the window does when it closes
    assert visible(lib) == files_of("mine") and whole(lib, "mine", digest, seed=0)


def test_a_rename_whose_sidecar_cannot_be_written_and_cannot_go_back_says_so(tmp_path,
                                                                              monkeypatch):
    from training import library
    from training.moves import MoveIncomplete
    lib = tmp_path / "lib"
    mine = make(lib, "mine", seed=0)
    digest = file_sha256(mine)

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(library, "atomic_write_bytes", disk_full)
    failing_renames(monkeypatch, lambda n, source: source.name.startswith("renamed"))
    with pytest.raises(MoveIncomplete, match="renamed, but its sidecar could not be rewritten "
                                             r"\(\[Errno 28\] No space left on device\)"):
        library.rename_checkpoint(mine, "renamed")
    monkeypatch.undo()
    assert recover_moves(lib, own=True) == [lib / "renamed.keras"]  # every move was made
    assert visible(lib) == files_of("renamed") and whole(lib, "renamed", digest, seed=0)
