"""Stop (or the window closing) just after the last epoch: the run ends at once, not after a
whole calibration pass over the validation images, and says it was stopped by the user."""
import numpy as np

import training.predict
import training.train
from training.checkpoints import load_checkpoint
from training.train import train

from .test_train import TINY, RecordingReporter, colour_set


class StopAfterLastEpoch(RecordingReporter):
    """Stop pressed when the last epoch's numbers arrive: its fit is over, nothing is left but
    the pass that measures flip TTA and calibrates the low-confidence threshold."""

    def partial(self, payload):
        super().partial(payload)
        if payload["kind"] == "epoch" and payload["epoch"] == payload["epochs"]:
            self.cancel.set()


def counting_probabilities(monkeypatch, then=None):
    calls = []
    real = training.predict.probabilities

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        if then is not None:
            then()
        return real(*args, **kwargs)

    monkeypatch.setattr(training.predict, "probabilities", counted)
    return calls


def test_stop_after_the_last_epoch_skips_calibration_and_keeps_the_best_epoch(tmp_path,
                                                                              monkeypatch):
    calls = counting_probabilities(monkeypatch)
    reporter = StopAfterLastEpoch()
    result = train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert calls == []  # no pass over the validation images after Stop
    assert result.stopped_early
    model, info = load_checkpoint(result.checkpoint)  # the best epoch, whole and loadable
    assert info.config["stopped"] == "user" and info.config["epochs_run"] == TINY.epochs
    assert 1 <= info.metrics["best_epoch"] <= TINY.epochs
    assert "val_accuracy" in info.metrics and "val_accuracy_tta" not in info.metrics
    assert info.calibration == {}  # no low-confidence threshold measured
    assert model.predict(colour_set(2).images.astype(np.float32), verbose=0).shape == (6, 3)


def test_stop_during_the_calibration_pass_ends_it_at_the_next_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(training.train, "CALIBRATION_SLICE", 2)
    reporter = RecordingReporter()
    calls = counting_probabilities(monkeypatch, then=reporter.cancel.set)  # Stop in the pass
    result = train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert len(calls) == 1 and len(reporter.epochs) == TINY.epochs
    _, info = load_checkpoint(result.checkpoint)
    assert result.stopped_early and info.config["stopped"] == "user"
    assert info.calibration == {}


def test_without_stop_the_run_is_calibrated_on_all_its_validation_images(tmp_path, monkeypatch):
    monkeypatch.setattr(training.train, "CALIBRATION_SLICE", 5)
    calls = counting_probabilities(monkeypatch)
    result = train(colour_set(), TINY, tmp_path / "run.keras", RecordingReporter())
    _, info = load_checkpoint(result.checkpoint)
    assert not result.stopped_early and info.config["stopped"] is None
    assert sum(calls) == info.metrics["val_images"] == info.calibration["images"]
    assert "val_accuracy_tta" in info.metrics  # (TINY trains with flips: TTA is measured)
