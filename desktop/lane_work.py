"""The plain work a session's lanes run, off the GUI thread: decoding and checking dropped files,
searching dropped folders, and finding where a prediction's evidence lies."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from training.preprocessing import ImageRejected, load_image

PREVIEW_SIZE = 240  # px, longest side of the original kept for the detail view
THUMB_SIZE = 48  # px
RAW_PREVIEW_PIXELS = 64 * 64  # up to this size a preview stays raw pixels (crisp when enlarged)


class CompressedPreview:
    """A row's preview of its original, kept as JPEG bytes (quality 95, no chroma subsampling):
    about 20 kB instead of 130-170 kB of pixels for a 240 px photo, so 10,000 dropped photos
    hold ~0.2 GB rather than ~1.5 GB. Decoded (about a millisecond) only for the selected row;
    offers what the input check uses of a Pillow image: ``size`` and ``convert``."""

    def __init__(self, image) -> None:
        import io
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=95, subsampling=0)
        self.data, self.size = buffer.getvalue(), image.size

    def convert(self, mode: str):
        import io

        from PIL import Image
        with Image.open(io.BytesIO(self.data)) as image:
            return image.convert(mode)


def keep_preview(report):
    """Shrink ``report.original`` to the preview a row keeps; return the row's thumbnail."""
    preview = report.original.copy()
    preview.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    thumb = preview.copy()
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
    small = preview.size[0] * preview.size[1] <= RAW_PREVIEW_PIXELS
    report.original = preview if small else CompressedPreview(preview)
    return np.asarray(thumb.convert("RGB"))


def read_sources(entries, policy, strict: bool, reporter, batch: int = 32, deliver=None):
    """Decode ``(item_id, source)`` pairs; hand batches of (id, report or error, thumbnail) to
    ``deliver`` (default: ``reporter.partial``) at least every 0.1 s."""
    deliver = deliver or reporter.partial
    out, last = [], time.monotonic()
    for n, (item_id, source) in enumerate(entries, start=1):
        if reporter.cancelled():
            return
        try:
            report = load_image(source, policy, strict=strict)
            out.append((item_id, report, keep_preview(report)))
        except ImageRejected as exc:
            out.append((item_id, str(exc), None))
        except Exception as exc:  # anything unexpected still becomes a reason, never a crash
            out.append((item_id, f"unexpected error: {type(exc).__name__}: {exc}"[:200], None))
        if len(out) >= batch or time.monotonic() - last > 0.1:
            deliver(out)
            out, last = [], time.monotonic()
        reporter.progress(n / max(len(entries), 1))
    if out:
        deliver(out)


def walk_folders(folders, reporter, batch: int = 256, tag=None) -> tuple[int, list]:
    """Report ``(tag, files)`` for the image files below ``folders``, in batches (at least every
    0.1 s). Returns how many were found and the folders that could not be read (path, why)."""
    from training.predict import iter_image_files

    found, last, total, errors = [], time.monotonic(), 0, []
    entered = set()  # one drop: a folder reached twice (an album and a link to it) listed once
    for folder in folders:
        for path in iter_image_files(folder, reporter.cancelled, errors, entered):
            if reporter.cancelled():
                return total, errors
            found.append(path)
            total += 1
            if len(found) >= batch or time.monotonic() - last > 0.1:
                reporter.partial((tag, found))
                found, last = [], time.monotonic()
    if found:
        reporter.partial((tag, found))
    return total, errors


@dataclass(frozen=True)
class Explanation:
    """A saliency map (model-input sized, 0-1) for one item and class, and what it cost."""

    generation: int
    item_id: int
    class_index: int
    method: str
    heat: np.ndarray
    seconds: float
    final: bool = True  # False: a fast Grad-CAM preview, the occlusion map follows


def find_evidence(classifier, array: np.ndarray, generation: int, item_id: int,
                  class_index: int, method: str, reporter):
    """Where the evidence for ``class_index`` lies in the model input ``array``: Grad-CAM when
    ``classifier`` has a Keras model (about 15 ms; with ``method`` "occlusion" it is reported
    as a preview first), then occlusion, which needs predictions only. None when cancelled."""
    from training import saliency

    if reporter.cancelled():
        return None
    t0 = time.perf_counter()
    model = getattr(classifier, "model", None)
    try:  # a network without the conv blocks Grad-CAM looks for (an imported one): occlusion
        heat = saliency.grad_cam(model, array, class_index, tta=classifier.info.tta) \
            if model is not None else None
    except ValueError:
        heat = None
    if heat is not None:
        quick = Explanation(generation, item_id, class_index, "grad-cam", heat,
                            time.perf_counter() - t0, final=method == "grad-cam")
        if quick.final:
            return quick
        reporter.partial(quick)
        if reporter.cancelled():
            return None
    t0 = time.perf_counter()
    heat = saliency.occlusion(classifier.classify, array, class_index)
    return Explanation(generation, item_id, class_index, "occlusion", heat,
                       time.perf_counter() - t0)
