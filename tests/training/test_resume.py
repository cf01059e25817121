"""Resuming a run from its backup folder: only the run that wrote it, and counting on where it
stopped (early stopping's patience is not started again)."""
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from training.backups import completed_epochs, resumed_out
from training.callbacks import RunHistory, make_callbacks
from training.data import DataError
from training.reporting import SilentReporter
from training.train import train

from .test_train import TINY, Crash, CrashingReporter, RecordingReporter, colour_set


def test_a_backup_resumes_only_the_run_that_wrote_it(tmp_path):
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), TINY, tmp_path / "run.keras", CrashingReporter(), backup_dir=backup)
    with pytest.raises(DataError, match=r"of another run \(different seed\)"):
        train(colour_set(), replace(TINY, seed=7), tmp_path / "run.keras", backup_dir=backup)
    with pytest.raises(DataError, match=r"\(different data\)"):
        train(colour_set(20), TINY, tmp_path / "run.keras", backup_dir=backup)
    with pytest.raises(DataError, match=r"\(different output file\)"):
        train(colour_set(), TINY, tmp_path / "other.keras", backup_dir=backup)
    assert completed_epochs(backup) == 1  # refused without touching it
    reporter = RecordingReporter()
    train(colour_set(), TINY, tmp_path / "run.keras", reporter, backup_dir=backup)
    assert [e["epoch"] for e in reporter.epochs] == [2, 3]  # the same settings resume it


def test_the_command_without_an_output_file_resumes_into_the_crashed_runs_file(tmp_path):
    backup = tmp_path / "backup"
    assert resumed_out(backup) is None  # nothing to resume: a new time-stamped name
    out = tmp_path / "checkpoints" / "cifar10-2026-11-26T120000.keras"
    with pytest.raises(Crash):
        train(colour_set(), TINY, out, CrashingReporter(), backup_dir=backup)
    assert resumed_out(backup) == out.resolve()  # the same command resumes into it


def early_stopping_after(past_accuracies, patience):
    history = RunHistory(Path("unused.keras"), None, 0)
    history.data = {"val_accuracy": list(past_accuracies)}
    config = replace(TINY, patience=patience)
    callbacks, _ = make_callbacks(SilentReporter(), 3, 36, config, lambda *a: None, history, True)
    stopper = callbacks[-1]
    stopper.set_model(SimpleNamespace(stop_training=False))
    stopper.on_train_begin()
    return stopper


def test_early_stopping_counts_the_epochs_waited_before_a_resume():
    # best at epoch 2, then two epochs without improvement, then the run was resumed
    stopper = early_stopping_after([0.5, 0.9, 0.8, 0.7], patience=3)
    stopper.on_epoch_end(4, {"val_accuracy": 0.6})  # the third epoch without improvement
    assert stopper.model.stop_training  # as an uninterrupted run would have stopped here


def test_early_stopping_after_a_resume_still_sees_an_improvement():
    stopper = early_stopping_after([0.5, 0.9, None, 0.7], patience=3)
    stopper.on_epoch_end(4, {"val_accuracy": 0.95})
    assert not stopper.model.stop_training and stopper.best == 0.95 and stopper.wait == 0


@pytest.mark.parametrize("crash_in, resumes_at", [(2, 1), (3, 2)])
def test_a_backup_whose_epoch_record_was_cut_short_still_resumes(tmp_path, crash_in, resumes_at):
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), TINY, tmp_path / "run.keras", CrashingReporter(crash_in), backup_dir=backup)
    (backup / "training_metadata.json").write_text('{"epoch": ')  # a power cut mid-write
    reporter = RecordingReporter()
    train(colour_set(), TINY, tmp_path / "run.keras", reporter, backup_dir=backup)
    # from the epoch before (the previous copy) where there is one, else from the start
    assert reporter.batches[0]["epoch"] == resumes_at
    assert reporter.epochs[-1]["epoch"] == 3


def test_a_crash_between_an_epochs_weights_and_its_record_resumes_as_if_never_interrupted(tmp_path):
    whole = RecordingReporter()
    train(colour_set(), TINY, tmp_path / "whole.keras", whole)
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), TINY, tmp_path / "run.keras", CrashingReporter(3), backup_dir=backup)
    # what a crash while epoch 2 was being saved leaves: its weights, and epoch 1's record
    (backup / "training_metadata.json").write_bytes(
        (backup / "training_metadata.json.bkp").read_bytes())
    assert completed_epochs(backup) == 1  # the run is offered from where it really is
    resumed = RecordingReporter()
    train(colour_set(), TINY, tmp_path / "run.keras", resumed, backup_dir=backup)
    # epoch 2 again from epoch 1's weights (not from epoch 2's): the uninterrupted curve
    assert [e["epoch"] for e in resumed.epochs] == [2, 3]
    assert [b["loss"] for b in resumed.batches] == pytest.approx(
        [b["loss"] for b in whole.batches if b["epoch"] >= 2], rel=1e-5)


@pytest.mark.parametrize("damage", ["weights cut short", "weights gone"])
def test_a_backup_whose_weights_were_lost_resumes_from_the_epoch_before(tmp_path, damage):
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), TINY, tmp_path / "run.keras", CrashingReporter(3), backup_dir=backup)
    weights = backup / "latest.weights.h5"
    if damage == "weights gone":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:1000])
    assert completed_epochs(backup) == 1
    resumed = RecordingReporter()
    train(colour_set(), TINY, tmp_path / "run.keras", resumed, backup_dir=backup)
    assert [e["epoch"] for e in resumed.epochs] == [2, 3]


def test_a_resumed_run_with_lookahead_ends_with_the_weights_of_one_never_interrupted(tmp_path):
    # a sync every 2 of the 3 steps an epoch has: the backup's epoch ends between two syncs, so
    # a new average started from the restored weights would pull later weights elsewhere
    config = replace(TINY, lookahead=2, lookahead_decay=0.9)
    whole = RecordingReporter()
    train(colour_set(), config, tmp_path / "whole.keras", whole)
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), config, tmp_path / "run.keras", CrashingReporter(), backup_dir=backup)
    assert (backup / "lookahead.npz").is_file()
    resumed = RecordingReporter()
    train(colour_set(), config, tmp_path / "run.keras", resumed, backup_dir=backup)
    # the same batches from the same weights and the same average: the same loss curve
    assert len(resumed.epochs) == 2
    assert [b["loss"] for b in resumed.batches] == pytest.approx(
        [b["loss"] for b in whole.batches if b["epoch"] >= 2], rel=1e-5)


def test_a_run_interrupted_before_splits_by_content_resumes_with_its_shuffled_split(tmp_path):
    import json
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), TINY, tmp_path / "run.keras", CrashingReporter(), backup_dir=backup)
    claim = json.loads((backup / "run.json").read_text())
    assert claim.pop("split_by") == "content"
    (backup / "run.json").write_text(json.dumps(claim))  # as that version wrote it
    result = train(colour_set(), TINY, tmp_path / "run.keras", RecordingReporter(),
                   backup_dir=backup)  # not refused, and validates on what it began with
    assert result.info.config["split"]["by"] == "shuffle"


def test_a_stopped_run_with_lookahead_resumes_as_if_never_interrupted(tmp_path):
    config = replace(TINY, lookahead=2, lookahead_decay=0.9)
    whole = RecordingReporter()
    train(colour_set(), config, tmp_path / "whole.keras", whole)
    backup = tmp_path / "backup"
    stopped = RecordingReporter(cancel_after_batches=4)  # Stop in epoch 2, after its 1st batch
    assert train(colour_set(), config, tmp_path / "run.keras", stopped, backup_dir=backup).stopped_early
    resumed = RecordingReporter()  # the average the cut-short epoch moved is not the one kept
    train(colour_set(), config, tmp_path / "run.keras", resumed, backup_dir=backup)
    assert [b["loss"] for b in resumed.batches] == pytest.approx(
        [b["loss"] for b in whole.batches if b["epoch"] >= 2], rel=1e-5)


def test_a_resumed_run_whose_checkpoint_went_meanwhile_saves_a_new_one(tmp_path):
    from training.checkpoints import sidecar_path
    backup, out = tmp_path / "backup", tmp_path / "run.keras"
    with pytest.raises(Crash):
        train(colour_set(), TINY, out, CrashingReporter(3), backup_dir=backup)
    out.unlink()  # renamed or deleted in the library since
    sidecar_path(out).unlink()
    result = train(colour_set(), TINY, out, RecordingReporter(), backup_dir=backup)
    assert result.checkpoint.is_file()  # (it failed: "the loss was NaN from the start")
    assert result.info.metrics["best_epoch"] == 3


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 cut short"])
def test_a_damaged_lookahead_average_starts_anew_and_the_run_still_resumes(tmp_path, damage):
    config = replace(TINY, lookahead=2, lookahead_decay=0.9)
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), config, tmp_path / "run.keras", CrashingReporter(), backup_dir=backup)
    (backup / "lookahead.npz").write_bytes(damage)
    resumed = RecordingReporter()
    result = train(colour_set(), config, tmp_path / "run.keras", resumed, backup_dir=backup)
    assert [e["epoch"] for e in resumed.epochs] == [2, 3] and result.checkpoint.is_file()
