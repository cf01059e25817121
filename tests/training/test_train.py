"""Training through a plain reporter object, no Qt: progress arrives, cancel stops, result loads."""
import numpy as np
import pytest

from training.checkpoints import load_checkpoint
from training.data import ImageSet, load_class_folders, split
from training.reporting import CancelFlag
from training.train import TrainConfig, augment, train

TINY = TrainConfig(epochs=3, batch_size=16, lr=0.05, widths=(4, 8, 8), stem=4, val_fraction=0.25,
                   precision="float32")


def colour_set(n_per_class=16):
    """Three classes that differ by their dominant colour channel (learnable in a few steps)."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label in range(3):
        block = rng.integers(0, 60, (n_per_class, 32, 32, 3), dtype=np.uint8)
        block[..., label] += 180
        images.append(block)
        labels += [label] * n_per_class
    return ImageSet(np.concatenate(images), np.asarray(labels, np.int32), ("r", "g", "b"))


class RecordingReporter:
    def __init__(self, cancel_after_batches=None):
        self.batches, self.epochs, self.fractions = [], [], []
        self.cancel = CancelFlag()
        self.cancel_after = cancel_after_batches

    def progress(self, fraction, message=""):
        self.fractions.append(fraction)

    def partial(self, payload):
        (self.batches if payload["kind"] == "batch" else self.epochs).append(payload)
        if self.cancel_after is not None and len(self.batches) >= self.cancel_after:
            self.cancel.set()

    def cancelled(self):
        return self.cancel.is_set()


def test_training_reports_progress_and_saves_a_checkpoint_that_predicts(tmp_path):
    reporter = RecordingReporter()
    result = train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert len(reporter.epochs) == 3 and reporter.batches[0]["loss"] > 0
    assert reporter.fractions[-1] == pytest.approx(1.0)
    model, info = load_checkpoint(result.checkpoint)
    assert info.class_names == ("r", "g", "b") and info.config["epochs"] == 3
    assert len(info.history["loss"]) == 3 and info.data_fingerprint.startswith("sha256:")
    assert "val_accuracy" in info.metrics


def test_cancel_stops_within_a_batch_and_keeps_nothing_half_written(tmp_path):
    reporter = RecordingReporter(cancel_after_batches=1)
    config = TrainConfig(**{**TINY.to_dict(), "epochs": 20})
    result = train(colour_set(), config, tmp_path / "run.keras", reporter)
    assert result.stopped_early
    assert len(reporter.batches) <= 2  # stop takes effect at the next batch boundary
    load_checkpoint(result.checkpoint)  # the best-so-far checkpoint is intact


def test_class_folders_are_read_and_unreadable_files_skipped(tmp_path):
    from PIL import Image
    for name, colour in (("cat", "red"), ("dog", "blue")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "bad.jpg").write_bytes(b"nope")
    data = load_class_folders(tmp_path)
    assert data.class_names == ("cat", "dog") and len(data) == 6
    assert data.skipped == (("dog/bad.jpg", "not an image (Pillow cannot identify this file)"),)


def test_split_is_stratified_and_reproducible():
    data = colour_set(20)
    train_a, val_a = split(data, 0.25, seed=1)
    train_b, val_b = split(data, 0.25, seed=1)
    assert np.array_equal(val_a.labels, val_b.labels)
    assert np.bincount(val_a.labels).tolist() == [5, 5, 5] and len(train_a) == 45


def test_augment_flips_and_shifts_without_changing_shape():
    images = np.zeros((64, 32, 32, 3), np.uint8)
    images[:, :, :4] = 255  # a bright left edge
    out = augment(images, np.random.default_rng(0), flip=True, translate=2)
    assert out.shape == images.shape
    assert (out[:, :, -4:].mean(axis=(1, 2, 3)) > 200).any()  # some were flipped to the right
