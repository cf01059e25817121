"""How far to trust a probability: reliability (confidence vs accuracy), expected calibration
error, and the low-confidence threshold that flags "maybe none of these classes".

The threshold is set on a checkpoint's validation images at training time and kept in its
sidecar: the largest maximum-probability value that still leaves ``keep`` (95 %) of the correctly
classified validation images above it. An image whose top probability falls below it is flagged:
a known class the model is unsure about, or something that is none of its classes.
"""
from __future__ import annotations

import numpy as np

KEEP = 0.95  # share of correctly classified validation images that must stay unflagged
DEFAULT_THRESHOLD = 0.5  # for checkpoints calibrated before this existed


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Confidence (max probability) against accuracy in ``bins`` equal-width bins, and the
    expected calibration error (bin-size-weighted mean |accuracy - confidence|)."""
    probs = np.asarray(probs)
    n = len(probs)
    confidence = probs.max(1) if n else np.zeros(0)
    correct = (probs.argmax(1) == np.asarray(labels)) if n else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        row = {"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
               "confidence": float(confidence[members].mean()) if count else None,
               "accuracy": float(correct[members].mean()) if count else None}
        if count:
            ece += count / n * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    return {"ece": float(ece), "bins": rows}


def calibrate(probs: np.ndarray, labels: np.ndarray, keep: float = KEEP) -> dict:
    """The low-confidence threshold and the reliability of a checkpoint on its validation images.

    Returns a JSON-friendly dict for the sidecar: ``threshold``, ``rule``, ``images``,
    ``flagged_correct`` and ``flagged_wrong`` (shares of validation images the threshold flags
    among those the model got right / wrong), ``ece`` and ``bins``.
    """
    probs, labels = np.asarray(probs), np.asarray(labels)
    if not len(probs):
        raise ValueError("calibration needs validation images")
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    pool = confidence[correct] if correct.any() else confidence
    # the largest value that keeps at least ``keep`` of them at or above it (an order
    # statistic: an interpolated quantile flagged 1 of 5 correct images on a small set)
    ordered = np.sort(pool)
    threshold = float(ordered[len(ordered) - int(np.ceil(keep * len(ordered) - 1e-9))])
    flagged = confidence < threshold
    return {"threshold": threshold, "metric": "max_probability",
            "rule": f"{keep:.0%} of correctly classified validation images are at or above it",
            "images": int(len(probs)),
            "flagged_correct": float(flagged[correct].mean()) if correct.any() else 0.0,
            "flagged_wrong": float(flagged[~correct].mean()) if (~correct).any() else 0.0,
            **reliability(probs, labels)}


def threshold_of(info) -> tuple[float, bool]:
    """The checkpoint's threshold and whether it was calibrated (else the default)."""
    value = (info.calibration or {}).get("threshold") if info is not None else None
    return (float(value), True) if isinstance(value, (int, float)) else (DEFAULT_THRESHOLD, False)
