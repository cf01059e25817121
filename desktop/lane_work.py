"""The plain work a session's lanes run, off the GUI thread: decoding and checking dropped files,
searching dropped folders, and finding where a prediction's evidence lies."""
from __future__ import annotations

import functools
import itertools
import os
import stat
import time
from dataclasses import dataclass

import numpy as np

from training.preprocessing import IMAGE_FORMATS, ImageRejected, load_image

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


def walk_folders(folders, reporter, batch: int = 256, tag=None) -> tuple[int, list, tuple]:
    """Report ``(tag, files)`` for the files below ``folders`` that get a row, in batches (at
    least every 0.1 s): image files, and the others that are pictures whatever their names say
    (see :func:`gets_a_row`). Returns how many were reported, the folders that could not be read
    (path, why), and how many other files were passed over with the first few of their names."""
    from training.predict import iter_image_files

    found, last, total, errors = [], time.monotonic(), 0, []
    passed, examples = 0, []  # other files that are not pictures: how many, the first names
    entered = set()  # one drop: a folder reached twice (an album and a link to it) listed once
    for folder in folders:
        others = []  # filled by the search as it goes: those before each image it yields
        for path in itertools.chain(iter_image_files(folder, reporter.cancelled, errors,
                                                     entered, others), [None]):
            for other in others:  # sorted in among the images, as a file manager lists them
                if reporter.cancelled():
                    break
                if gets_a_row(other):
                    found.append(other)
                elif (passed := passed + 1) <= 3:
                    examples.append(other.name)
            others.clear()
            if reporter.cancelled():
                return total, errors, (passed, examples)
            if path is not None:
                found.append(path)
            if len(found) >= batch or time.monotonic() - last > 0.1:
                total += len(found)
                reporter.partial((tag, found))
                found, last = [], time.monotonic()
    if found:
        total += len(found)
        reporter.partial((tag, found))
    return total, errors, (passed, examples)


# Picture formats the app does not read: in a folder they get a row that says so, as when
# dropped alone, rather than vanishing (phone photos, camera raw files, drawings).
PICTURE_SUFFIXES = frozenset(".heic .heif .hif .jxl .svg .svgz .psd .xcf .exr .dng .raw .cr2 "
                             ".cr3 .nef .nrw .arw .srf .sr2 .orf .rw2 .raf .pef .srw .x3f".split())


@functools.cache
def _signed_formats() -> tuple[str, ...]:
    """The formats a file is recognised as by its first bytes: those this Pillow reads, less
    TGA and IM, which have no signature (any binary file could pass for one)."""
    from PIL import Image
    Image.init()
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN and f not in ("TGA", "IM"))


def gets_a_row(path) -> bool:
    """Whether a file that a folder search passed over for its name is shown: a picture format
    the app does not read (its row says so), or an image under another name ("dog.txt" that is a
    JPEG, "scan" without a suffix), recognised from its header (nothing is decoded: thousands of
    notes and scripts take well under a second). A file the user may not read gets a row saying
    so; the rest (text, documents, pipes) is counted, not listed."""
    from PIL import Image
    if path.suffix.lower() in PICTURE_SUFFIXES:
        return True
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:  # (non-blocking: a pipe must not wait for a writer)
        stream = open(os.open(path, flags), "rb")
    except PermissionError:  # what it is cannot be told: its row says why it is not read
        return True
    except OSError:  # gone, a dangling link, a socket
        return False
    with stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            return False
        try:  # (no warnings.catch_warnings: its filters are global, and the files lane's
            # load_image, on another thread, sets its own meanwhile)
            Image.open(stream, formats=_signed_formats())
        except Image.DecompressionBombError:
            return True  # an image: its row says it is too large
        except Exception:  # unidentified, or hostile bytes: not a picture to list
            return False
    return True


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
