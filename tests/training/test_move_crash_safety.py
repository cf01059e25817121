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


@pytest.mark.parametrize("op", ["rename", "trash", "restore"])
def test_an_operation_killed_before_any_of_its_moves_leaves_one_whole_checkpoint(tmp_path, op):
    template = tmp_path / "template"
    mine = make(template / "lib", "mine", seed=0)
    digest = file_sha256(mine)
    if op == "restore":  # deleted, and its name taken meanwhile: it comes back renamed
        trashed = trash_checkpoint(mine, template / "trash" / "session-1")
        make(template / "lib", "mine", seed=1)
    outcomes = set()
    for step in range(1, 20):
        root = tmp_path / f"step{step}"
        shutil.copytree(template, root)
        lib, trash = root / "lib", root / "trash"
        if op == "rename":
            code = run_child(op, step, lib / "mine.keras", "renamed")
        elif op == "trash":
            code = run_child(op, step, lib / "mine.keras", trash / "session-2")
        else:
            folder = root / trashed.folder.relative_to(template)
            code = run_child(op, step, lib / "mine.keras", folder)
        assert code in (0, -9), (step, code)
        recover_moves(lib, trash)
        assert not list(lib.glob(JOURNAL_GLOB)), step
        names = sorted(e.name for e in list_checkpoints(lib))
        done = code == 0
        if op == "rename":  # cut short: the old name, as if never asked
            assert names == (["renamed"] if done else ["mine"]), step
            assert whole(lib, names[0], digest, seed=0), step
        elif op == "trash":  # cut short: still there
            assert names == ([] if done else ["mine"]), step
            assert done or whole(lib, "mine", digest, seed=0), step
        elif step == 1:  # killed before its journal was written: nothing has moved yet
            assert names == ["mine"] and whole(folder, "mine", digest, seed=0)
        else:  # cut short later: restored all the same, under the free name
            assert names == ["mine", "mine (restored)"], step
            assert whole(lib, "mine (restored)", digest, seed=0), step
        outcomes.add(done)
        if done:
            break
    assert outcomes == {False, True}  # killed at every step, then a run that finished


def test_a_journal_of_a_process_still_moving_files_or_naming_other_files_is_left_alone(tmp_path):
    lib = tmp_path / "lib"
    mine = make(lib, "mine", seed=0)
    moved = lib / "moved.keras"
    os.rename(mine, moved)  # part-way through a rename to "moved"
    live = {"pid": os.getpid(), "started": "", "back": True, "moves": [[str(mine), str(moved)]]}
    (lib / ".moving.live.json").write_text(json.dumps(live))  # this process: another window
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not the library's")
    foreign = {"pid": 0, "started": "", "back": True, "moves": [[str(outside), str(lib / "x")]]}
    (lib / ".moving.foreign.json").write_text(json.dumps(foreign))
    (lib / ".moving.broken.json").write_text("{")
    assert recover_moves(lib) == []
    assert moved.exists() and not mine.exists() and outside.exists()
    (lib / ".moving.live.json").write_text(json.dumps({**live, "pid": 0}))  # its process died
    assert recover_moves(lib) == [mine] and read_info(mine).name == "mine"
    assert sorted(p.name for p in lib.glob(JOURNAL_GLOB)) == [".moving.broken.json",
                                                              ".moving.foreign.json"]

