"""Accuracy, per-class precision/recall/F1 and the confusion matrix of a checkpoint on a data set,
and how results are written out (JSON, CSV); where they are kept is ``evaluation_store``."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .calibration import reliability
from .checkpoints import (CheckpointError, CheckpointInfo, atomic_write_bytes, file_sha256,
                          now_iso)
from .data import ImageSet
from .evaluation_store import store_evaluation
from .reporting import Reporter, SilentReporter, first_line


def predict_set(model, data: ImageSet, tta: str = "none", reporter: Reporter | None = None,
                batch_size: int = 500) -> np.ndarray:
    """Probabilities (N, classes) for every image of ``data``, in batches, reporting progress.

    Raises:
        InterruptedError: when the reporter says the job was cancelled.
    """
    from .predict import probabilities

    reporter = reporter or SilentReporter()
    n, out = len(data), []
    for start in range(0, n, batch_size):
        if reporter.cancelled():
            raise InterruptedError("evaluation cancelled")
        out.append(probabilities(model, data.images[start:start + batch_size], tta, batch_size))
        done = min(start + batch_size, n)
        reporter.progress(done / n, f"evaluated {done} of {n} images")
    return np.concatenate(out) if out else np.zeros((0, len(data.class_names)), np.float32)


def summarize(probs: np.ndarray, labels: np.ndarray, class_names, tta: str = "none") -> dict:
    """A JSON-friendly summary: ``accuracy``, ``per_class`` (precision, recall, f1, support),
    ``confusion_matrix`` (rows = true class, columns = predicted, in ``class_names`` order),
    ``class_names``, ``mean_confidence`` and ``images``."""
    k, n = len(class_names), len(labels)
    if n and not np.isfinite(probs).all():  # a broken model: its NaN would count as class 0
        raise ValueError("the model gives non-finite probabilities (NaN or infinity) for "
                         f"{int((~np.isfinite(probs).all(axis=1)).sum())} image(s): its weights "
                         "are broken")
    pred = probs.argmax(1) if n else np.zeros(0, int)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (np.asarray(labels), pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp, predicted, support = confusion[i, i], confusion[:, i].sum(), confusion[i].sum()
        # undefined, not 0, where nothing was predicted as the class or it has no images: a
        # class absent from the data was not "always missed"
        precision = float(tp / predicted) if predicted else None
        recall = float(tp / support) if support else None
        # F1 = 2TP / (2TP + FP + FN): 0 for a class with images the model never predicts (its
        # worst case, not "undefined"); undefined only when the class is neither there nor said
        wrong = 2 * tp + (predicted - tp) + (support - tp)
        f1 = float(2 * tp / wrong) if wrong else None
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1,
                           "support": int(support)}
    return {"accuracy": float(np.trace(confusion) / max(n, 1)), "per_class": per_class,
            "confusion_matrix": confusion.tolist(), "class_names": list(class_names),
            "mean_confidence": float(probs.max(1).mean()) if n else 0.0,
            "images": int(n), "tta": tta, "calibration": reliability(probs, labels)}


def evaluate(model, data: ImageSet, tta: str = "none", reporter: Reporter | None = None,
             batch_size: int = 500) -> dict:
    """Evaluate in batches, reporting progress and stopping early when cancelled (see
    :func:`summarize` for the result)."""
    probs = predict_set(model, data, tta, reporter, batch_size)
    return summarize(probs, data.labels, data.class_names, tta)


# -- where results are kept -------------------------------------------------------------------------

def evaluation_record(summary: dict, data: ImageSet, description: str) -> dict:
    """The summary plus what identifies the data and when it was made (what the sidecar keeps)."""
    record = {**summary, "data": description, "data_source": data.source,
              "data_fingerprint": data.fingerprint(), "created": now_iso()}
    if data.skipped:  # files left out (unreadable): said with the result, never silent
        record["skipped"] = data.files_left_out()
        record["skipped_examples"] = [list(pair) for pair in data.skipped[:10]]
    return record


def to_json(record: dict, checkpoint_name: str = "") -> str:
    """The record as JSON, headed by the checkpoint's name and its model's SHA-256 (a name can
    since belong to another model)."""
    return json.dumps({"checkpoint": checkpoint_name,
                       "model_sha256": record.get("model_sha256", ""), **record}, indent=2)


def to_csv(record: dict, checkpoint_name: str = "") -> str:
    """One row of what the result is (name, value pairs: the checkpoint, its model's SHA-256, the
    data, accuracy, images, mean confidence, expected calibration error, test-time augmentation,
    unreadable files left out), per-class rows, the confusion matrix (rows = true class), then
    the unreadable files left out (the first ten), as one CSV text."""
    out = io.StringIO()
    writer = csv.writer(out)
    ece = (record.get("calibration") or {}).get("ece")
    writer.writerow(["checkpoint", checkpoint_name, "data", record.get("data", ""),
                     "accuracy", f"{record['accuracy']:.6f}", "images", record["images"],
                     "model_sha256", record.get("model_sha256", ""),
                     "mean_confidence", f"{record.get('mean_confidence', 0.0):.6f}",
                     "expected_calibration_error", "" if ece is None else f"{ece:.6f}",
                     "tta", record.get("tta", "none"), "skipped", record.get("skipped", 0)])
    writer.writerow(["class", "precision", "recall", "f1", "support"])
    for name, row in record["per_class"].items():
        writer.writerow([name, *("" if row[k] is None else f"{row[k]:.6f}"
                                 for k in ("precision", "recall", "f1")), row["support"]])
    writer.writerow([])
    writer.writerow(["true \\ predicted", *record["class_names"]])
    for name, counts in zip(record["class_names"], record["confusion_matrix"]):
        writer.writerow([name, *counts])
    if record.get("skipped"):  # left out, as the screen and the JSON say: never silent
        writer.writerow([])
        writer.writerow(["skipped file", "reason"])
        for name, why in record.get("skipped_examples", []):
            writer.writerow([name, why])
    return out.getvalue()


REPORT_OVERWRITES = "would overwrite the checkpoint or its sidecar: choose another file name"


def report_overwrites(report: Path, checkpoint: Path) -> str:
    """Why a report must not be written at ``report``: it is one of ``checkpoint``'s own files
    (the model, its sidecar, a save's pending sidecar, its training history, the overlay its
    evaluations are kept in), or another checkpoint's beside it, or a ``.keras`` file. Returns
    the one-line reason (:data:`REPORT_OVERWRITES`), or "" when it may be written.

    Shared by ``python -m training evaluate --report`` and the Evaluate tab's Save JSON/CSV:
    written over, a sidecar would be read back as a valid one that has lost the model's
    preprocessing, test-time augmentation and hash, and its predictions would change."""
    from .checkpoints import pending_sidecar_path, sidecar_path
    from .paths import user_evaluations_dir

    report, checkpoint = Path(report), Path(checkpoint)
    stem = checkpoint.with_suffix("")
    own = [checkpoint, sidecar_path(checkpoint), pending_sidecar_path(checkpoint),
           Path(f"{stem}.history.csv"), Path(f"{stem}.history.json")]
    if any(_same_file(report, p) for p in own):
        return REPORT_OVERWRITES
    name, lower = report.name, report.name.lower()
    sibling = next((name[:-len(tail)] for tail in (".history.csv", ".history.json", ".json")
                    if lower.endswith(tail)), None)  # the model another checkpoint's file is of
    if lower.startswith(".") and lower.endswith(".json.pending"):
        sibling = name[1:-len(".json.pending")]
    if lower.endswith(".keras") or (sibling and report.with_name(f"{sibling}.keras").exists()):
        return REPORT_OVERWRITES
    if lower.endswith(".json") and _same_file(report.parent, user_evaluations_dir()):
        return REPORT_OVERWRITES  # evaluations of a read-only checkpoint are kept there
    return ""


def _same_file(a: Path, b: Path) -> bool:
    """The same path however written (``..``, a link), or the same existing file under another
    name (a hard link, another case on a case-insensitive disk)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError):  # a link loop, a folder it may not look into
        return False


def write_report(record: dict, path: Path, checkpoint_name: str = "", kind: str = "") -> Path:
    """Write ``record`` as ``kind`` ("json" or "csv"; by default chosen by the file's suffix)."""
    path = Path(path)
    kind = kind or ("csv" if path.suffix.lower() == ".csv" else "json")
    text = to_csv(record, checkpoint_name) if kind == "csv" else to_json(record, checkpoint_name)
    try:  # a file name that is not valid UTF-8 (Linux allows any bytes) as its own bytes
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "backslashreplace")
    atomic_write_bytes(path, data)
    return path


def validation_part(data: ImageSet, info: CheckpointInfo) -> ImageSet:
    """The checkpoint's own held-out validation images, re-derived from its training data.

    Raises:
        ValueError: when ``data`` is not the data the checkpoint was trained on (fingerprint), or
        the checkpoint kept no validation images.
    """
    from .splits import split, split_rule

    if info.data_fingerprint and data.fingerprint() != info.data_fingerprint:
        raise ValueError("this is not the data the checkpoint was trained on (fingerprint differs)")
    _, val = split(data, **split_rule(info))  # (a fine-tune on its parent's data: the parent's)
    if not len(val):
        raise ValueError("the checkpoint kept no validation images")
    return val


def describe_data(path: Path, data: ImageSet) -> str:
    """The name an evaluation is stored under: the same data always gets the same name."""
    from .cifar_batches import is_cifar10_batches
    from .data import CIFAR10_CLASSES

    path = Path(path)
    if tuple(data.class_names) == tuple(CIFAR10_CLASSES):
        if path.is_file():  # the JPEG archive: the test accuracy every figure here refers to
            return "CIFAR-10 test part"
        if is_cifar10_batches(path):  # other pixels (not JPEG-compressed): kept apart
            return "CIFAR-10 test part (python batches)"
    # ("." has no name; the absolute path's does, without following a link to another name)
    return f"class folders {path.name or Path(os.path.abspath(path)).name or os.path.abspath(path)}"


def align_classes(data: ImageSet, class_names) -> ImageSet:
    """Relabel ``data`` into ``class_names``' order (class folders sort by name). Data of some
    of the checkpoint's classes (cat and dog folders for a CIFAR-10 model) is fine: the other
    classes have no images, and a picture taken for one of them still counts as wrong.

    Names match as the same text (a folder name from macOS, in decomposed Unicode, matches),
    else ignoring case where that is unambiguous ("Cat" folders for a "cat" class).

    Raises:
        ValueError: when the data has classes the checkpoint does not know.
    """
    import unicodedata

    if tuple(data.class_names) == tuple(class_names):
        return data
    text = [unicodedata.normalize("NFC", n) for n in class_names]
    folded = [n.casefold() for n in text]
    order, unknown = [], []
    present = set(np.unique(data.labels).tolist())
    for index, name in enumerate(data.class_names):
        name = unicodedata.normalize("NFC", name)
        if name in text:
            order.append(text.index(name))
        elif folded.count(name.casefold()) == 1:
            order.append(folded.index(name.casefold()))
        elif index not in present:  # an empty folder (macOS's __MACOSX): changes no number
            order.append(0)
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"the data has classes the checkpoint does not know "
                         f"({', '.join(unknown)}; it knows {', '.join(class_names)})")
    order = np.array(order)
    return ImageSet(data.images, order[data.labels].astype(np.int32), tuple(class_names),
                    data.source, data.skipped, data.files, data.left_out, data.other_formats)


def evaluate_checkpoint(checkpoint: Path, data_path: Path, part: str = "test",
                        reporter: Reporter | None = None, cache_dir: Path | None = None,
                        overlay: Path | None = None) -> tuple[dict, np.ndarray, ImageSet]:
    """Load a checkpoint, evaluate it on labelled data and store the result with it.

    ``part`` is "test" (the test part of CIFAR-10, or all of a class-folder set) or
    "validation" (the checkpoint's own held-out split of ``data_path``, its training data).
    Returns (record, probabilities, data) so a caller can show which images were confused.
    """
    from .checkpoints import load_checkpoint
    from .data import load_labelled

    reporter = reporter or SilentReporter()
    reporter.progress(0.0, "loading the checkpoint")
    model, info = load_checkpoint(checkpoint)
    reporter.progress(0.0, "reading the data")
    source = "train" if part == "validation" else "test"
    data = load_labelled(data_path, source, info.preprocessing, reporter, cache_dir=cache_dir,
                         evaluation=part != "validation")
    if part == "validation":
        data = validation_part(data, info)
        description = "validation split"
    else:
        description = describe_data(data_path, data)
        data = align_classes(data, info.class_names)
    probs = predict_set(model, data, info.tta, reporter)
    record = evaluation_record(summarize(probs, data.labels, info.class_names, info.tta), data,
                               description)
    # which network it was: a report names it by its hash, as a name can pass to another model
    record["model_sha256"] = info.model_sha256 or file_sha256(Path(checkpoint))
    try:
        record = store_evaluation(checkpoint, record, overlay, info.model_sha256)
    except (OSError, CheckpointError) as exc:  # renamed, deleted or read-only meanwhile: the
        record = {**record, "not_stored": first_line(exc)}  # result is still shown
    return record, probs, data
