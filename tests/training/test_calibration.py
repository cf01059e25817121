"""Calibration: reliability bins, expected calibration error and the low-confidence threshold."""
import numpy as np
import pytest

from training.calibration import DEFAULT_THRESHOLD, calibrate, reliability, threshold_of
from training.checkpoints import CheckpointInfo


def test_reliability_bins_and_ece_by_hand():
    # Two images at 0.95 (one right, one wrong) and two at 0.55 (both right).
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 1, 0, 0])
    result = reliability(probs, labels)
    high, mid = result["bins"][9], result["bins"][5]
    assert high["count"] == 2 and high["accuracy"] == 0.5 and high["confidence"] == pytest.approx(0.95)
    assert mid["count"] == 2 and mid["accuracy"] == 1.0
    # ECE = 2/4 * |0.5 - 0.95| + 2/4 * |1.0 - 0.55| = 0.45
    assert result["ece"] == pytest.approx(0.45)
    assert sum(b["count"] for b in result["bins"]) == 4


def test_threshold_keeps_95_percent_of_correct_validation_images_unflagged():
    rng = np.random.default_rng(0)
    top = rng.uniform(0.5, 1.0, 1000)  # class 0 is always the prediction
    probs = np.stack([top, 1 - top], axis=1)
    labels = (rng.random(1000) < 0.2).astype(int)  # about 20 % wrong (label 1, predicted 0)
    result = calibrate(probs, labels)
    correct = labels == 0
    assert np.mean(top[correct] >= result["threshold"]) == pytest.approx(0.95, abs=0.005)
    assert result["flagged_correct"] == pytest.approx(0.05, abs=0.005)
    assert result["images"] == 1000


def test_uncalibrated_checkpoints_get_the_default():
    assert threshold_of(CheckpointInfo(class_names=("a", "b"))) == (DEFAULT_THRESHOLD, False)
    calibrated = CheckpointInfo(class_names=("a", "b"), calibration={"threshold": 0.42})
    assert threshold_of(calibrated) == (0.42, True)


def test_the_threshold_keeps_its_rule_on_a_small_validation_set():
    import numpy as np

    from training.calibration import calibrate
    confidence = np.array([0.6, 0.7, 0.8, 0.9, 0.95])
    probs = np.stack([confidence, 1 - confidence], axis=1)
    result = calibrate(probs, np.zeros(5, int))  # all five right
    assert result["flagged_correct"] == 0.0  # 95 % of 5 is all 5: none flagged
    assert result["threshold"] == 0.6
