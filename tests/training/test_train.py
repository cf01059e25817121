"""Training through a plain reporter object, no Qt: progress arrives, cancel stops, result loads."""
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from training.checkpoints import load_checkpoint, read_info
from training.data import DataError, ImageSet, load_class_folders
from training.splits import check_data, split
from training.reporting import SilentReporter
from training.batches import augment
from training.backups import completed_epochs
from training.train import Cancelled, TrainConfig, train

TINY = TrainConfig(epochs=3, batch_size=16, lr=0.05, widths=(4, 8, 8), stem=4, val_fraction=0.25,
                   precision="float32")


def colour_set(n_per_class=16, seed=0):
    """Three classes that differ by their dominant colour channel (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        block = rng.integers(0, 60, (n_per_class, 32, 32, 3), dtype=np.uint8)
        block[..., label] += 180
        images.append(block)
        labels += [label] * n_per_class
    return ImageSet(np.concatenate(images), np.asarray(labels, np.int32), ("r", "g", "b"))


class RecordingReporter(SilentReporter):
    def __init__(self, cancel_after_batches=None):
        super().__init__()
        self.batches, self.epochs, self.fractions = [], [], []
        self.cancel_after = cancel_after_batches

    def progress(self, fraction, message=""):
        self.fractions.append(fraction)

    def partial(self, payload):
        {"batch": self.batches, "epoch": self.epochs}.get(payload["kind"], []).append(payload)
        if self.cancel_after is not None and len(self.batches) >= self.cancel_after:
            self.cancel.set()


class Crash(Exception):
    pass


class CrashingReporter(RecordingReporter):
    """Crashes after the first batch of ``epoch``, like a power cut: no clean-up code runs
    after the backup of the epoch before."""

    def __init__(self, epoch=2):
        super().__init__()
        self.crash_epoch = epoch

    def partial(self, payload):
        super().partial(payload)
        if payload["kind"] == "batch" and payload["epoch"] == self.crash_epoch:
            raise Crash


def test_training_reports_progress_and_saves_a_checkpoint_that_predicts(tmp_path):
    reporter = RecordingReporter()
    result = train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert len(reporter.epochs) == 3 and reporter.batches[0]["loss"] > 0
    assert reporter.fractions[-1] == pytest.approx(1.0)
    model, info = load_checkpoint(result.checkpoint)
    assert info.class_names == ("r", "g", "b") and info.config["epochs"] == 3
    assert len(info.history["loss"]) == 3 and info.data_fingerprint.startswith("sha256:")
    assert "val_accuracy" in info.metrics
    calibration = info.calibration  # the low-confidence threshold, set on the validation split
    assert 0 < calibration["threshold"] <= 1 and calibration["images"] == info.metrics["val_images"]
    assert 0 <= calibration["ece"] <= 1 and len(calibration["bins"]) == 10


def test_stop_takes_effect_at_the_next_batch_and_keeps_the_best_epoch(tmp_path):
    reporter = RecordingReporter(cancel_after_batches=4)  # 3 batches per epoch: stop in epoch 2
    config = TrainConfig(**{**TINY.to_dict(), "epochs": 20})
    result = train(colour_set(), config, tmp_path / "run.keras", reporter)
    assert result.stopped_early and len(reporter.batches) == 4
    assert [e["epoch"] for e in reporter.epochs] == [1]  # the cut-off epoch reports nothing
    model, info = load_checkpoint(result.checkpoint)
    assert info.metrics["best_epoch"] == 1 and info.config["stopped"] == "user"
    assert len(info.history["loss"]) == 1


def test_stop_during_the_first_epoch_saves_nothing_and_says_so(tmp_path):
    reporter = RecordingReporter(cancel_after_batches=1)
    with pytest.raises(Cancelled, match="nothing was saved"):
        train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert not (tmp_path / "run.keras").exists() and len(reporter.batches) == 1


def test_pause_holds_training_until_resumed_and_is_not_counted_as_training_time(tmp_path,
                                                                                  monkeypatch):
    """The run's recorded wall time leaves the pause out: it is what the app stores as this
    computer's speed (a lunch-long pause made every later estimate hours long). The pause is an
    hour on the clocks the run reads (a second really), which no busy computer can blur."""
    lunch = []  # an hour added to the training modules' clocks as the pause's wait begins

    def monotonic():  # (read by the wait alone: as it begins and as it ends)
        now = time.monotonic() + sum(lunch)
        if reporter.cancel.paused() and not lunch:
            lunch.append(3600.0)
            threading.Timer(1.0, reporter.cancel.resume).start()
        return now
    clock = SimpleNamespace(monotonic=monotonic,
                            perf_counter=lambda: time.perf_counter() + sum(lunch))
    for module in ("train", "callbacks", "reporting"):
        monkeypatch.setattr(f"training.{module}.time", clock)

    class Pausing(RecordingReporter):  # pauses after batch 2; notes each batch in real time
        def partial(self, payload):
            super().partial(payload)
            payload["at"] = time.monotonic()
            if payload["kind"] == "batch" and payload["step"] == 2:
                self.cancel.pause()

    reporter = Pausing()
    result = train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    second, third = reporter.batches[1:3]
    assert third["at"] - second["at"] >= 1.0 and lunch  # nothing ran while paused
    assert len(reporter.epochs) == 3  # and it carried on to the end
    assert all(epoch["seconds"] < 3600 for epoch in reporter.epochs)  # each without its pause
    assert result.info.config["wall_time_s"] < 3600  # (was the pause and more)
    after = [b for b in reporter.batches if b["step"] >= 3]  # the pause is not in the rate
    assert max(b["eta_s"] for b in after) < 3600


def test_speed_and_time_left_are_unknown_until_a_batch_after_the_first(tmp_path):
    """The first batch's one-time start-up (tracing the step) counted as training time: the
    first report said six minutes left for a 40-second run. It now says nothing until the
    second batch has run, and every later report gives both."""
    reporter = RecordingReporter()
    train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    first, *later = reporter.batches
    assert np.isnan(first["images_per_s"]) and np.isnan(first["eta_s"])
    assert all(np.isfinite(b["images_per_s"]) and b["images_per_s"] > 0 for b in later)
    assert all(np.isfinite(b["eta_s"]) and b["eta_s"] >= 0 for b in later)
    assert later[-1]["eta_s"] == 0


def test_a_crashed_run_resumes_from_its_last_completed_epoch(tmp_path):
    whole = RecordingReporter()  # the same run, never interrupted
    train(colour_set(), TINY, tmp_path / "whole.keras", whole)
    backup = tmp_path / "backup"
    with pytest.raises(Crash):
        train(colour_set(), TINY, tmp_path / "run.keras", CrashingReporter(), backup_dir=backup)
    assert completed_epochs(backup) == 1
    reporter = RecordingReporter()
    events = []
    reporter.partial = lambda p: (events.append(p), RecordingReporter.partial(reporter, p))
    result = train(colour_set(), TINY, tmp_path / "run.keras", reporter, backup_dir=backup)
    assert events[0]["kind"] == "resumed" and events[0]["epoch"] == 1
    assert reporter.batches[0]["epoch"] == 2  # epoch 1 is not trained again
    assert [e["epoch"] for e in reporter.epochs] == [2, 3]
    # the same batches in the same order from the same weights: the loss curve is the same
    losses = [b["loss"] for b in reporter.batches]
    assert losses == pytest.approx([b["loss"] for b in whole.batches if b["epoch"] >= 2], rel=1e-5)
    assert len(result.info.history["loss"]) == 3  # the whole curve, first epoch included
    assert not backup.exists()  # a finished run leaves no backup behind


def test_history_is_written_as_csv_and_json_beside_the_checkpoint(tmp_path):
    train(colour_set(), TINY, tmp_path / "run.keras")
    rows = (tmp_path / "run.history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and "val_loss" in rows[0] and len(rows) == 4
    assert len(json.loads((tmp_path / "run.history.json").read_text())["loss"]) == 3


def test_new_classes_reuse_the_parent_backbone_and_train_a_new_head(tmp_path, tiny_checkpoint):
    parent, _ = load_checkpoint(tiny_checkpoint)
    two = colour_set().subset(np.flatnonzero(colour_set().labels < 2))
    two = ImageSet(two.images, two.labels, ("warm", "cool"))
    result = train(two, TINY, tmp_path / "head.keras", parent=tiny_checkpoint, fine_tune="head")
    model, info = load_checkpoint(result.checkpoint)
    assert info.class_names == ("warm", "cool") and info.parent == "tiny"
    assert info.parent_sha256 == read_info(tiny_checkpoint).model_sha256  # which "tiny"
    assert model.get_layer("logits").get_weights()[0].shape == (8, 2)
    for name in ("stem_conv", "group3_b_conv", "group2_a_bn"):  # head-only: backbone untouched
        for ours, theirs in zip(model.get_layer(name).get_weights(),
                                parent.get_layer(name).get_weights()):
            np.testing.assert_allclose(ours, theirs)
    assert info.config["fine_tune"] == "head" and info.config["widths"] == [4, 8, 8]


def test_full_fine_tune_starts_from_the_parent_weights(tmp_path, tiny_checkpoint):
    trained = train(colour_set(), TINY, tmp_path / "a.keras").checkpoint
    first_scratch = RecordingReporter()
    train(colour_set(), replace(TINY, epochs=1), tmp_path / "b.keras", first_scratch)
    first_tuned = RecordingReporter()
    train(colour_set(), replace(TINY, epochs=1, lr=0.001), tmp_path / "c.keras", first_tuned,
          parent=trained)
    # the parent already separates the colours: its first batch loss is far below a fresh net's
    assert first_tuned.batches[0]["loss"] < first_scratch.batches[0]["loss"] - 0.1


def test_training_refuses_a_single_class():
    one = colour_set().subset(np.flatnonzero(colour_set().labels == 0))
    with pytest.raises(DataError, match="two classes"):
        train(one, TINY, "unused.keras")


def test_class_folders_are_read_and_unreadable_files_skipped(tmp_path):
    from PIL import Image
    for name, colour in (("cat", "red"), ("dog", "blue")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "bad.jpg").write_bytes(b"nope")
    data = load_class_folders(tmp_path)
    assert data.class_names == ("cat", "dog") and len(data) == 6
    assert data.skipped == (("dog/bad.jpg", "not an image in a format the app reads (JPEG, PNG, "
                                              "GIF, BMP, WebP, TIFF and others)"),)


def test_split_holds_out_a_share_of_each_class_reproducibly():
    data = colour_set(20)
    train_a, val_a = split(data, 0.25, seed=1)
    train_b, val_b = split(data, 0.25, seed=1)
    assert np.array_equal(val_a.labels, val_b.labels)
    assert all(1 <= n <= 10 for n in np.bincount(val_a.labels, minlength=3))  # each image's
    assert all(n >= 10 for n in np.bincount(train_a.labels, minlength=3))  # side is its own draw
    # a class too small for its share by chance still holds one out, and keeps one to train
    few = colour_set(3)
    _, few_val = split(few, 0.25, seed=1)
    assert np.bincount(few_val.labels, minlength=3).tolist() == [1, 1, 1]
    # older checkpoints' shuffled split, exactly stratified, is re-derived as it was
    train_c, val_c = split(data, 0.25, seed=1, by_content=False)
    assert np.bincount(val_c.labels).tolist() == [5, 5, 5] and len(train_c) == 45


def test_no_validation_image_is_a_copy_of_a_training_image():
    data = colour_set(20)
    copies = np.concatenate([data.images, data.images[:30]])  # 30 images twice, same labels
    labels = np.concatenate([data.labels, data.labels[:30]])
    twice = ImageSet(copies, labels, data.class_names)
    train_part, val_part = split(twice, 0.25, seed=1)
    trained = {image.tobytes() for image in train_part.images}
    assert val_part.images.size and not any(image.tobytes() in trained for image in val_part.images)
    assert len(train_part) + len(val_part) == 90  # moved to training, not dropped
    # the check before training counts the split training will really use
    check = check_data(twice, 0.25, seed=1)
    assert (check.train_images, check.val_images) == (len(train_part), len(val_part))


def test_augment_flips_and_shifts_without_changing_shape():
    images = np.zeros((64, 32, 32, 3), np.uint8)
    images[:, :, :4] = 255  # a bright left edge
    out = augment(images, np.random.default_rng(0), flip=True, translate=2)
    assert out.shape == images.shape
    assert (out[:, :, -4:].mean(axis=(1, 2, 3)) > 200).any()  # some were flipped to the right


def test_cutout_blanks_a_square_of_exactly_its_size():
    images = np.full((400, 32, 32, 3), 255, np.uint8)
    out = augment(images, np.random.default_rng(0), flip=False, translate=0, cutout=12)
    blanked = (out[..., 0] == 128).sum(axis=(1, 2))
    assert blanked.max() == 144  # 12 x 12 where it fits inside the image
    assert blanked.min() >= 36  # clipped at a corner, never gone: 6 x 6 at least
    rows = (out[..., 0] == 128).any(axis=2).sum(axis=1)
    assert rows.max() == 12


def test_alternating_flips_show_each_image_mirrored_in_every_other_epoch():
    from training.batches import training_batches

    images = np.zeros((40, 8, 8, 3), np.uint8)
    images[:, :, :2] = 255  # bright left edge: a flipped image has it on the right
    images[:, 0, 0, 0] = np.arange(40)  # which image it is (survives a flip only as a column)
    labels = np.arange(40) % 2
    config = TrainConfig(batch_size=40, translate=0, alternate_flip=True)
    batches = training_batches(images, labels, 2, config)
    flipped = []
    for _ in range(3):
        x = batches[0][0]
        ident = np.where(x[:, 0, 0, 2] == 255, x[:, 0, 0, 0], x[:, 0, -1, 0]).astype(int)
        right = x[:, :, -2:].mean(axis=(1, 2, 3)) > 200
        flipped.append(dict(zip(ident.tolist(), right.tolist())))
        batches.on_epoch_end()
    assert sorted(flipped[0]) == list(range(40))
    assert 5 < sum(flipped[0].values()) < 35  # random in the first epoch
    assert all(flipped[1][i] != flipped[0][i] for i in range(40))  # the other side next epoch
    assert flipped[2] == flipped[0]


def test_a_full_disk_at_save_time_stops_with_a_message_and_keeps_the_last_good_checkpoint(
        tmp_path, monkeypatch):
    import errno

    import keras
    real_save, calls = keras.Model.save, []

    def save_until_full(model, path, *args, **kwargs):
        calls.append(path)
        if len(calls) >= 2:  # the final save after the epoch's: the disk fills up half way
            Path(path).write_bytes(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save_until_full)
    with pytest.raises(OSError, match="No space left on device"):
        train(colour_set(), replace(TINY, epochs=1), tmp_path / "run.keras", RecordingReporter())
    monkeypatch.setattr(keras.Model, "save", real_save)
    model, info = load_checkpoint(tmp_path / "run.keras")  # epoch 1's checkpoint, intact
    assert info.metrics["best_epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.keras"]  # no debris


def test_stop_before_training_begins_saves_nothing_and_does_not_wait_for_fit(tmp_path):
    reporter = RecordingReporter()
    reporter.cancel.set()  # Stop pressed while TensorFlow loaded and the network was built
    with pytest.raises(Cancelled, match="before the first epoch began"):
        train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert reporter.batches == [] and not (tmp_path / "run.keras").exists()


def test_a_parents_head_is_kept_only_for_the_same_classes_in_the_datas_order():
    from training.model import build_model
    from training.model import copy_weights
    parent = build_model(3, widths=(4, 8, 8), stem=4)
    kernel, *rest = parent.get_layer("logits").get_weights()
    same = build_model(3, widths=(4, 8, 8), stem=4)
    copy_weights(parent, same, ("bird", "cat", "dog"), ("dog", "bird", "cat"))
    got = same.get_layer("logits").get_weights()
    np.testing.assert_array_equal(got[0], kernel[:, [2, 0, 1]])  # "dog" is still dog
    for ours, theirs in zip(got[1:], rest):
        np.testing.assert_array_equal(ours, theirs[..., [2, 0, 1]])
    other = build_model(3, widths=(4, 8, 8), stem=4)
    fresh = other.get_layer("logits").get_weights()[0].copy()
    copy_weights(parent, other, ("bird", "cat", "dog"), ("cat", "dog", "fox"))
    np.testing.assert_array_equal(other.get_layer("logits").get_weights()[0], fresh)  # new head
    np.testing.assert_array_equal(other.get_layer("stem_conv").get_weights()[0],
                                  parent.get_layer("stem_conv").get_weights()[0])  # backbone


def test_without_validation_images_the_last_whole_epoch_is_kept(tmp_path):
    """With nothing held out, training accuracy (on augmented images, as the weights move)
    chose the saved epoch and stalled at 100 %, keeping the first epoch that reached it: the
    latest epoch of the schedule is kept instead."""
    result = train(colour_set(), replace(TINY, val_fraction=0.0, epochs=6),
                   tmp_path / "all.keras", RecordingReporter())
    info = result.info  # (its accuracy: 0.73, 0.67, 0.63, 1.0, 1.0, 1.0; epoch 4 was kept)
    assert info.metrics["best_epoch"] == 6 and "val_accuracy" not in info.history
