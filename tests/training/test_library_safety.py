"""The checkpoint library never loses a checkpoint and never crashes on one: hostile sidecars,
moves that fail half way, a save cut short before a rename, names taken while a checkpoint is
in the trash or an import runs, names a file system cannot hold."""
import json
from pathlib import Path

import pytest

from training import importing, library, moves
from training.checkpoints import (CheckpointError, CheckpointInfo, file_sha256, load_checkpoint,
                                  pending_sidecar_path, read_info, save_checkpoint, sidecar_path)
from training.importing import import_checkpoint
from training.library import (check_name, list_checkpoints, rename_checkpoint, restore_checkpoint,
                              trash_checkpoint)
from training.model import build_model


def make(folder, name, classes=("a", "b", "c"), **info):
    model = build_model(len(classes), widths=(4, 8, 8), stem=4)
    return save_checkpoint(model, CheckpointInfo(class_names=tuple(classes), **info),
                           folder / f"{name}.keras")


HOSTILE = {
    "created is null": {"created": None},
    "metrics is a list": {"metrics": []},
    "accuracy is text": {"metrics": {"test_accuracy": "high"}},
    "preprocessing is null": {"preprocessing": None},
    "preprocessing size is text": {"preprocessing": {"size": ["a", "b"]}},
    "input shape overflows": {"input_shape": [32, 32, 1e999]},
    "input of 15000 a side": {"input_shape": [15000, 15000, 3],
                              "preprocessing": {"size": [15000, 15000]}},
    "an evaluation without accuracy": {"evaluations": {"x": {}}},
    "history is a number": {"history": 3},
    "seed is text": {"seed": "one"},
    "epochs run is text": {"config": {"epochs_run": "many"}},
    "resize size is not the input size": {"preprocessing": {"size": [64, 64]}},
    "accuracy of 400 digits": {"metrics": {"test_accuracy": 10 ** 400}},
    "infinite wall time": {"config": {"wall_time_s": float("inf")}},
    "an evaluation of 400 digits": {"evaluations": {"x": {"accuracy": 10 ** 400}}},
    "an infinite loss in the history": {"history": {"loss": [1.0, float("inf")]}},
    "a 70 MB command": {"command": "x" * 70_000_000},
}


@pytest.mark.parametrize("change", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_sidecar_is_listed_with_a_reason_not_a_crash(tmp_path, change):
    make(tmp_path, "good", created="2026-01-01T00:00:00+00:00")
    bad = make(tmp_path, "bad")
    data = json.loads(sidecar_path(bad).read_text())
    data.update(change)
    sidecar_path(bad).write_text(json.dumps(data))
    entries = {e.name: e for e in list_checkpoints(tmp_path)}
    assert entries["good"].info is not None
    assert entries["bad"].info is None and entries["bad"].error.startswith("invalid sidecar")
    assert "\n" not in entries["bad"].error
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_a_diverged_epoch_in_the_history_is_kept(tmp_path):
    """A NaN loss is a run's own record of an epoch that diverged: still a readable sidecar."""
    make(tmp_path, "diverged", history={"loss": [1.0, float("nan")]})
    [entry] = list_checkpoints(tmp_path)
    assert entry.info is not None and entry.info.history["loss"][0] == 1.0


def test_a_deeply_nested_sidecar_is_refused_in_one_line(tmp_path):
    bad = make(tmp_path, "deep")
    sidecar_path(bad).write_text('{"class_names": ["a", "b"], "config": ' + "[" * 100_000
                                 + "]" * 100_000 + "}")
    [entry] = list_checkpoints(tmp_path)
    assert entry.info is None and entry.error.startswith("invalid sidecar")


def test_a_delete_that_fails_half_way_moves_everything_back(tmp_path, monkeypatch):
    path = make(tmp_path / "user", "mine")
    history = tmp_path / "user" / "mine.history.csv"
    history.write_text("epoch,loss\n1,2.0\n")
    before = {p.name: p.read_bytes() for p in (tmp_path / "user").iterdir()}
    real_rename = moves.os.rename

    def locked(source, target):  # e.g. the history open in a spreadsheet on Windows
        if str(source).endswith(".history.csv"):
            raise PermissionError(13, "The process cannot access the file", str(source))
        return real_rename(source, target)

    monkeypatch.setattr(moves.os, "rename", locked)
    with pytest.raises(CheckpointError, match="nothing was moved"):
        trash_checkpoint(path, tmp_path / "trash")
    assert {p.name: p.read_bytes() for p in (tmp_path / "user").iterdir()} == before
    with pytest.raises(CheckpointError):
        rename_checkpoint(path, "renamed")
    assert {p.name: p.read_bytes() for p in (tmp_path / "user").iterdir()} == before
    load_checkpoint(path)


def test_renaming_a_checkpoint_whose_save_was_cut_short_keeps_it_loadable(tmp_path):
    path = make(tmp_path, "run", metrics={"val_accuracy": 0.5})
    stale = read_info(path)
    # killed between save_checkpoint's two renames: new model, old sidecar, pending sidecar
    model = build_model(3, widths=(4, 8, 8), stem=4)
    model.save(tmp_path / "new.keras")
    (tmp_path / "new.keras").replace(path)
    newer = CheckpointInfo(class_names=("a", "b", "c"), metrics={"val_accuracy": 0.7},
                           model_sha256=file_sha256(path))
    pending_sidecar_path(path).write_text(newer.to_json())
    assert stale.model_sha256 != newer.model_sha256
    renamed = rename_checkpoint(path, "kept")
    assert load_checkpoint(renamed)[1].metrics["val_accuracy"] == 0.7
    assert not pending_sidecar_path(path).exists() and not pending_sidecar_path(renamed).exists()
    # and through the trash: the pending sidecar travels with the model
    again = make(tmp_path, "again")
    model.save(tmp_path / "newer.keras")
    (tmp_path / "newer.keras").replace(again)
    pending_sidecar_path(again).write_text(
        CheckpointInfo(class_names=("a", "b", "c"), model_sha256=file_sha256(again)).to_json())
    restored = restore_checkpoint(trash_checkpoint(again, tmp_path / "trash"))
    load_checkpoint(restored)


def test_restoring_when_the_name_was_taken_meanwhile_uses_a_free_name(tmp_path):
    path = make(tmp_path / "user", "model", metrics={"val_accuracy": 0.6})
    record = trash_checkpoint(path, tmp_path / "trash")
    newcomer = make(tmp_path / "user", "model", metrics={"val_accuracy": 0.9})
    newcomer_bytes = newcomer.read_bytes()
    restored = restore_checkpoint(record)
    assert restored.name == "model (restored).keras"
    model, info = load_checkpoint(restored)
    assert info.metrics["val_accuracy"] == 0.6 and info.name == "model (restored)"
    assert newcomer.read_bytes() == newcomer_bytes
    assert read_info(newcomer).metrics["val_accuracy"] == 0.9
    record = trash_checkpoint(restored, tmp_path / "trash")
    (tmp_path / "user" / "model (restored).history.csv").write_text("someone else's history")
    again = restore_checkpoint(record)  # a name whose history is there is taken
    assert again.name == "model (restored) (restored).keras"


def test_names_a_file_system_cannot_hold_or_that_clash_with_history_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="too long"):
        check_name("猫" * 80)  # 80 characters, 240 bytes
    assert check_name("猫" * 50) == "猫" * 50
    with pytest.raises(CheckpointError, match="history"):
        check_name("x.history")
    path = make(tmp_path, "y")
    renamed = rename_checkpoint(path, "猫" * 50)
    load_checkpoint(renamed)


def test_an_import_never_replaces_a_checkpoint_that_appears_meanwhile(tmp_path, monkeypatch):
    source = make(tmp_path / "elsewhere", "theirs", classes=("x", "y"))
    lib = tmp_path / "lib"
    lib.mkdir()
    real_free = importing.free_name
    appeared = {}

    def race(folder, name, first=" (2)"):
        chosen = real_free(folder, name, first)
        if not appeared:  # another instance saves a checkpoint of that name just now
            appeared["path"] = make(lib, chosen, classes=("p", "q"))
            appeared["bytes"] = appeared["path"].read_bytes()
        return chosen

    monkeypatch.setattr(importing, "free_name", race)
    imported = import_checkpoint(source, lib)
    assert imported.name == "theirs (2).keras"
    assert appeared["path"].read_bytes() == appeared["bytes"]
    assert read_info(appeared["path"]).class_names == ("p", "q")
    assert load_checkpoint(imported)[1].class_names == ("x", "y")
    assert read_info(imported).name == "theirs (2)"


def test_an_imported_file_with_a_long_name_gets_a_name_that_fits(tmp_path):
    source = make(tmp_path / "elsewhere", "犬" * 70, classes=("x", "y"))
    imported = import_checkpoint(source, tmp_path / "lib")
    assert len(imported.stem.encode()) <= library.NAME_MAX_BYTES
    load_checkpoint(imported)


def test_an_evaluation_whose_checkpoint_vanished_meanwhile_still_returns_its_result(
        tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    import training.evaluate as evaluate
    data = tmp_path / "data"
    for label, name in enumerate(("blue", "green", "red")):
        (data / name).mkdir(parents=True)
        for i in range(4):
            pixels = np.zeros((32, 32, 3), np.uint8)
            pixels[..., 2 - label] = 200
            Image.fromarray(pixels).save(data / name / f"{i}.png")
    path = make(tmp_path / "ck", "m", classes=("blue", "green", "red"))
    real_store = evaluate.store_evaluation

    def renamed_meanwhile(checkpoint, record, overlay=None, model_sha256=""):
        sidecar_path(checkpoint).unlink()  # e.g. renamed on the Checkpoints tab while it ran
        return real_store(checkpoint, record, overlay, model_sha256)

    monkeypatch.setattr(evaluate, "store_evaluation", renamed_meanwhile)
    record, probs, _ = evaluate.evaluate_checkpoint(path, data)
    assert record["images"] == 12 and probs.shape == (12, 3)
    assert record["not_stored"] and "\n" not in record["not_stored"]


def test_a_rename_goes_through_whatever_the_other_sidecars_hold(tmp_path, monkeypatch):
    """A Latin-1 sidecar of another file in the folder, or a child's sidecar that cannot be
    rewritten (a full disk), does not turn a rename that has moved the files into an error."""
    parent = make(tmp_path, "A")
    child = make(tmp_path, "kid", parent="A")
    (tmp_path / "notes.json").write_bytes("{\"name\": \"caf\xe9\"}".encode("latin-1"))
    write = library.atomic_write_bytes

    def disk_full_for_the_child(path, data):
        if Path(path).name == "kid.json":
            raise OSError(28, "No space left on device")
        return write(path, data)

    monkeypatch.setattr(library, "atomic_write_bytes", disk_full_for_the_child)
    renamed = rename_checkpoint(parent, "A2")
    assert renamed == tmp_path / "A2.keras" and load_checkpoint(renamed)[1].name == "A2"
    assert read_info(child).parent == "A"  # left as it was, the rename still done


def test_an_imported_model_never_appears_without_its_sidecar(tmp_path, monkeypatch):
    source = make(tmp_path / "elsewhere", "theirs", classes=("x", "y"))
    lib = tmp_path / "lib"
    lib.mkdir()
    link, seen = importing.os.link, []

    def watching(src, dst):
        if str(dst).endswith(".keras"):  # the model joins: its sidecar is there already
            seen.append(sidecar_path(Path(dst)).exists())
        return link(src, dst)

    monkeypatch.setattr(importing.os, "link", watching)
    imported = import_checkpoint(source, lib)
    assert seen == [True] and read_info(imported).class_names == ("x", "y")


def test_what_killed_saves_and_imports_left_days_ago_is_cleaned_up(tmp_path):
    import os
    import time

    from training.library import clean_debris
    kept = make(tmp_path, "mine")
    staging = tmp_path / ".import.abc123"
    staging.mkdir()
    (staging / "theirs.keras").write_bytes(b"a copy")
    debris = [tmp_path / ".mine.x1y2.keras", tmp_path / ".mine.json.q9.tmp"]
    for path in debris:
        path.write_bytes(b"half")
    fresh = tmp_path / ".mine.z3.keras"  # a save under way right now: not touched
    fresh.write_bytes(b"writing")
    pending = pending_sidecar_path(kept)
    pending.write_text("{}")
    week_ago = time.time() - 7 * 86400
    for path in (staging, *debris, pending):
        os.utime(path, (week_ago, week_ago))
    removed = clean_debris(tmp_path)
    assert sorted(p.name for p in removed) == sorted([staging.name] + [p.name for p in debris])
    assert fresh.exists() and pending.exists() and load_checkpoint(kept)
