"""Class probabilities for prepared images, and the top-k view of them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checkpoints import CheckpointInfo


MAX_BATCH_VALUES = 512 * 64 * 64 * 3  # pixel values per model call: 25 MB of float32 input


@dataclass(frozen=True)
class Guess:
    label: str
    probability: float


def probabilities(model, images: np.ndarray, tta: str = "none", batch_size: int = 512) -> np.ndarray:
    """Probabilities (N, classes) for uint8 images (N, H, W, 3), with optional flip TTA.

    Batches of at most ``batch_size`` go through ``predict_on_batch`` (one compiled function, no
    per-call retracing as with ``predict``). With flip TTA each batch holds the images and their
    mirror images together: one model call instead of two, which matters most for one image.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    # a bigger input (an imported 224x224 network, say) goes in fewer images at a time: the
    # batch's memory is what grows with it (512 CIFAR images is 6 MB; 512 at 1024x1024, 6 GB)
    batch_size = max(2, min(batch_size, MAX_BATCH_VALUES // int(np.prod(images.shape[1:]))))
    step = batch_size // 2 if tta == "hflip" else batch_size
    out = []
    for start in range(0, len(images), step):
        chunk = images[start:start + step].astype(np.float32)
        if tta == "hflip":
            both = np.concatenate([chunk, chunk[:, :, ::-1, :]])
            probs = np.asarray(model.predict_on_batch(both), dtype=np.float32)
            probs = 0.5 * (probs[:len(chunk)] + probs[len(chunk):])
        else:
            probs = np.asarray(model.predict_on_batch(chunk), dtype=np.float32)
        out.append(probs)
    return np.concatenate(out)


def top_k(probs: np.ndarray, class_names, k: int = 5) -> list[Guess]:
    """The ``k`` most probable classes of one probability vector, most probable first."""
    order = np.argsort(-probs, kind="stable")[: max(1, min(k, len(class_names)))]
    return [Guess(class_names[i], float(probs[i])) for i in order]


class Classifier:
    """A loaded checkpoint ready to classify prepared images."""

    def __init__(self, model, info: CheckpointInfo, path: str = "") -> None:
        self.model, self.info, self.path = model, info, path

    @classmethod
    def load(cls, path) -> "Classifier":
        from .checkpoints import load_checkpoint
        model, info = load_checkpoint(path)
        classifier = cls(model, info, str(path))
        classifier.warm_up()
        return classifier

    def warm_up(self) -> None:
        """Build the compiled predict function once so the first real prediction is fast."""
        h, w, c = self.info.input_shape
        self.classify(np.zeros((1, h, w, c), np.uint8))

    def classify(self, images: np.ndarray) -> np.ndarray:
        return probabilities(self.model, images, self.info.tta)


def iter_image_files(folder, cancelled=None, errors: list | None = None,
                     entered: set | None = None, others: list | None = None):
    """Image files below ``folder``, recursively, in sorted order per folder.

    Symbolic links to folders are followed (a folder of linked albums is searched as a file
    manager shows it), each real folder entered once, so a link loop cannot trap the walk nor
    list a file twice, and never a link back up to ``folder`` or above it (dropping a folder
    does not search its parent). Give the folders of one drop a shared ``entered`` set: an
    album dropped beside a folder that links to it is listed once. macOS's "._NAME" companion
    files (resource forks on USB sticks and in zips) are not images.
    ``cancelled()`` is asked at every folder (a huge tree with few images stops at once);
    folders that cannot be read are added to ``errors`` as ``(path, reason)``, and files of
    other types (HEIC photos, notes) to ``others``.
    """
    import os
    from pathlib import Path

    from .preprocessing import is_image_path

    def unreadable(exc: OSError) -> None:
        if errors is not None:
            errors.append((exc.filename, exc.strerror or str(exc)))

    entered = set() if entered is None else entered
    above = _folder_and_above(folder)
    first = True
    for root, dirs, names in os.walk(folder, onerror=unreadable, followlinks=True):
        if cancelled is not None and cancelled():
            return
        try:
            real = os.stat(root)
        except OSError:  # gone since it was listed
            dirs[:] = []
            continue
        key = (real.st_dev, real.st_ino)
        if key in entered or (not first and key in above):  # reached again, or a link back up
            dirs[:] = []
            continue
        entered.add(key)
        first = False
        dirs.sort()
        for name in sorted(names):
            if name.startswith("._"):
                continue  # macOS companions
            if is_image_path(Path(name)):
                yield Path(root) / name
            elif others is not None and not name.startswith("."):  # (.DS_Store: not news)
                others.append(Path(root) / name)


def _folder_and_above(folder) -> set:
    """The (device, inode) of ``folder`` and of every folder above it, links resolved."""
    import os
    found, path = set(), os.path.realpath(folder)
    while True:
        try:
            real = os.stat(path)
        except OSError:
            return found
        found.add((real.st_dev, real.st_ino))
        parent = os.path.dirname(path)
        if parent == path:
            return found
        path = parent


def expand_paths(paths) -> list:
    """Files named directly, plus image files found recursively in named folders. A pattern
    the shell left as it was (Windows: ``photos\\*.jpg``) is expanded here."""
    import glob
    from pathlib import Path

    files, entered = [], set()  # (a folder reached twice, through a link: listed once)
    for raw in paths:
        path = Path(raw)
        if not path.exists() and glob.has_magic(str(raw)):
            files.extend(expand_paths(sorted(glob.glob(str(raw)))) or [path])
        else:
            files.extend(iter_image_files(path, entered=entered) if is_folder(path) else [path])
    return files


def is_folder(path) -> bool:
    """``path.is_dir()``, False where it cannot be told (a parent without search permission
    raises there): the path is then read as a file, and its row says why it cannot be."""
    try:
        return path.is_dir()
    except OSError:
        return False


def classify_files(classifier: Classifier, files, k: int = 5, strict: bool = False,
                   reporter=None, chunk: int = 256):
    """Yield one JSON-friendly result per file, in order: a top-k result or a one-line reason.

    Files are decoded through the one preprocessing path and classified ``chunk`` at a time.
    """
    from .preprocessing import ImageRejected, load_image

    files = list(files)
    policy = classifier.info.preprocessing
    for start in range(0, len(files), chunk):
        if reporter is not None and reporter.cancelled():
            return
        results, arrays, slots = [], [], []
        for path in files[start:start + chunk]:
            try:
                report = load_image(path, policy, strict=strict)
            except ImageRejected as exc:
                results.append({"path": str(path), "ok": False, "error": str(exc)})
                continue
            except Exception as exc:  # a bug on one file must not end the run for the others
                reason = f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0][:200]
                results.append({"path": str(path), "ok": False, "error": reason})
                continue
            slots.append(len(results))
            arrays.append(report.array)
            results.append({"path": str(path), "ok": True, "input": report.summary()})
        if arrays:
            probs = classifier.classify(np.stack(arrays))
            for slot, row in zip(slots, probs):
                results[slot]["top"] = [{"label": g.label, "probability": round(g.probability, 6)}
                                        for g in top_k(row, classifier.info.class_names, k)]
        yield from results
        if reporter is not None:
            reporter.progress(min(start + chunk, len(files)) / max(len(files), 1))
