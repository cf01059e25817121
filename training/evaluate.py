"""Accuracy, per-class precision/recall/F1 and the confusion matrix of a checkpoint on a data set."""
from __future__ import annotations

import numpy as np

from .data import ImageSet
from .reporting import Reporter, SilentReporter


def evaluate(model, data: ImageSet, tta: str = "none", reporter: Reporter | None = None,
             batch_size: int = 500) -> dict:
    """Evaluate in batches, reporting progress and stopping early when cancelled.

    Returns a JSON-friendly dict: ``accuracy``, ``per_class`` (precision, recall, f1, support),
    ``confusion_matrix`` (rows = true class, columns = predicted, in ``class_names`` order),
    ``class_names``, ``mean_confidence`` and ``images``.
    """
    from .predict import probabilities

    reporter = reporter or SilentReporter()
    n, k = len(data), len(data.class_names)
    preds, confs = [], []
    for start in range(0, n, batch_size):
        if reporter.cancelled():
            raise InterruptedError("evaluation cancelled")
        probs = probabilities(model, data.images[start:start + batch_size], tta, batch_size)
        preds.append(probs.argmax(1))
        confs.append(probs.max(1))
        reporter.progress(min(start + batch_size, n) / n)
    pred = np.concatenate(preds) if preds else np.zeros(0, int)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (data.labels, pred), 1)
    per_class = {}
    for i, name in enumerate(data.class_names):
        tp = confusion[i, i]
        precision = tp / max(confusion[:, i].sum(), 1)
        recall = tp / max(confusion[i].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[name] = {"precision": float(precision), "recall": float(recall),
                           "f1": float(f1), "support": int(confusion[i].sum())}
    return {"accuracy": float(np.trace(confusion) / max(n, 1)), "per_class": per_class,
            "confusion_matrix": confusion.tolist(), "class_names": list(data.class_names),
            "mean_confidence": float(np.concatenate(confs).mean()) if confs else 0.0,
            "images": int(n), "tta": tta}
