"""Connects the image list to `training/`: reads and checks files on one lane, classifies on another.

Files are decoded through the one preprocessing path on the "files" lane, so their input check
shows even while the model still loads; classification jobs queue on the "model" lane behind the
model-loading job, so nothing dropped early is lost. Loading the model: :mod:`desktop.model_loading`.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal, Slot

from training.predict import is_folder

from .items import ImageItem, ImageListModel, row_icon, to_qimage
from .jobs import CANCELLED_BEFORE_START, Job, JobLane
from .lane_work import find_evidence, read_sources, walk_folders
from .model_loading import ModelLoading

log = logging.getLogger(__name__)


class ClassifierSession(ModelLoading):
    """The dropped images, the active checkpoint (:class:`ModelLoading`) and the jobs between
    them."""

    busy_changed = Signal(bool)
    explained = Signal(object)  # Explanation: a saliency map for one item and class
    explain_failed = Signal(int, str)  # item id, why no map could be made
    notice = Signal(str)  # a one-line note for the status bar (a folder without images)
    drop_arrived = Signal(object)  # ImageItem: the latest drop's first row, to be shown

    def __init__(self, checkpoint: Path, parent=None) -> None:
        super().__init__(checkpoint, parent)
        self.items = ImageListModel(self)
        self.files = JobLane("files", self)  # decoding and checking images, in order
        self.walker = JobLane("walk", self)  # searching dropped folders, so rows come at once
        self._lanes = (self.walker, self.files, self.model_lane, self.loader)
        self.strict = False
        self._done = self._total = 0  # images finished / asked for since the lanes were last idle
        self._epoch = 0  # counts re-checks; a batch read for an older one is dropped
        self._stops = 0  # counts stop_classifying calls; folder walks started before one are dropped
        self._drops = self._shown_drop = 0  # drops so far; the last one whose first row arrived
        self._explaining: Job | None = None  # the latest saliency request; older ones are cancelled
        for lane in self._lanes:
            lane.idle.connect(self._emit_busy)

    # -- images ------------------------------------------------------------------------------
    def _recheck_all(self) -> None:
        self._epoch += 1  # batches still being read for the old check are dropped
        self.files.cancel_all()  # and their reading stops: every item is read again below
        self._done = self._total = 0  # so counted once: "n of m" starts again
        for item in self.items.items:
            item.state, item.error, item.probabilities = "waiting", "", None
        self.items.touch_all()
        self._read(list(self.items.items))

    def _give_up_all(self, reason: str) -> None:
        self._give_up([item.id for item in self.items.items], reason)

    def _give_up(self, ids, reason: str) -> None:
        """Rows that were read but cannot be classified: not classified, and why."""
        changed = 0
        for item_id in ids:
            item = self.items.get(item_id)
            if item is not None and item.state in ("waiting", "checked", "classified"):
                item.state, item.error, item.probabilities = "stopped", reason, None
                changed += 1
        if changed:
            self.items.touch_all()  # one signal for the table, not one per row

    def add_paths(self, paths) -> list[ImageItem]:
        """Add files now and check them; folders are walked on the files lane (never the GUI
        thread), their image files joining the list in batches as they are found.

        Returns the items added now (the directly named files).
        """
        paths = [Path(p) for p in paths]
        folders = [p for p in paths if is_folder(p)]
        items = [ImageItem(source=p, name=p.name) for p in paths if p not in folders]
        self._drops += 1
        drop = self._drops
        self._add(items, drop, urgent=True)  # a few files: before a folder's backlog
        if folders:
            stops, roots = self._stops, tuple(folders)  # a found file is named inside its root
            names = ", ".join(f.name or str(f) for f in folders)
            job = Job(lambda reporter: (stops, names, walk_folders(folders, reporter,
                                                                   tag=(stops, roots, drop))),
                      "find images")
            job.partial.connect(self._on_found)
            job.finished.connect(self._on_walked)
            self.walker.submit(job)
            self.busy_changed.emit(True)
        return items

    @Slot(object)
    def _on_walked(self, result) -> None:
        stops, names, (count, errors, (passed, examples)) = result
        if stops != self._stops:
            return  # stopped meanwhile
        said = []
        if errors:  # a folder (or some below it) that could not be read: said, not skipped
            where, why = errors[0]
            more = f" and {len(errors) - 1} more folder(s)" if len(errors) > 1 else ""
            said.append(f"Cannot read {where}{more}: {why}.")
        if count == 0:  # said, not silently nothing
            said.append(f"No image files found in {names}.")
        if passed:  # notes, documents: counted in one line, not a failed row each
            said.append(f"{passed:,} other file(s) not read (not images: "
                        f"{'e.g. ' if passed > len(examples) else ''}{', '.join(examples)}).")
        if said:
            self.notice.emit(" ".join(said))

    @Slot(object)
    def _on_found(self, found) -> None:
        (stops, roots, drop), files = found
        if stops != self._stops:
            return  # found before the user pressed Stop, delivered after
        self._add([ImageItem(source=f, name=_name_in(f, roots)) for f in files], drop)

    def add_bytes(self, data: bytes, name: str = "pasted image", origin: str = "") -> ImageItem:
        item = ImageItem(source=data, name=name, origin=origin)
        self._drops += 1
        self._add([item], self._drops, urgent=True)
        return item

    def set_strict(self, strict: bool) -> None:
        """Switch the strict 32x32 check and re-check every image."""
        if strict == self.strict:
            return
        self.strict = strict
        self._recheck_all()

    def _add(self, items: list[ImageItem], drop: int = 0, urgent: bool = False) -> None:
        self.items.add(items)
        if items and drop == self._drops != self._shown_drop:  # an older drop's folder rows
            self._shown_drop = drop  # arriving later take no selection from a newer drop's
            self.drop_arrived.emit(items[0])
        self._read(items, urgent)

    def _read(self, items: list[ImageItem], urgent: bool = False) -> None:
        """Decode and check ``items`` on the files lane; each decoded batch goes from there
        straight to the model lane, so a dropped image reaches the model without waiting for
        the GUI thread (busy painting the new row meanwhile), and to the GUI for its row."""
        if not items or self._closed:
            return
        if self.info is None:  # no model: its sidecar could not be read (else still loading)
            if self._load_error:
                self._give_up([item.id for item in items], self._load_error)
            return
        self._total += len(items)
        entries = [(item.id, item.source) for item in items]
        policy, strict, epoch = self.info.preprocessing, self.strict, self._epoch
        generation, ready = self._generation, self._classifier_ready

        def read(reporter):
            def deliver(batch):
                reporter.partial((epoch, batch))
                ok = [(item_id, result.array) for item_id, result, _ in batch
                      if not isinstance(result, str)]
                if not ok or reporter.cancelled() or self._closed or epoch != self._epoch:
                    return  # stopped, closing, or re-checked since: the GUI drops this batch
                job = self._classify(generation, ready, ok, urgent)
                if reporter.cancelled() or self._closed:
                    job.cancel()  # Stop came between the check above and the submit
            read_sources(entries, policy, strict, reporter, deliver=deliver)

        job = Job(read, "read images")
        job.partial.connect(self._on_read)
        self.files.submit(job, urgent=urgent)
        self.busy_changed.emit(True)

    @Slot(object)
    def _on_read(self, delivered) -> None:
        epoch, batch = delivered
        if epoch != self._epoch:
            return  # read before a re-check (another model, strict on or off); read again since
        for item_id, result, thumb in batch:
            item = self.items.get(item_id)
            if item is None or item.state != "waiting":
                continue  # removed, or stopped while its batch was on the way
            if isinstance(result, str):
                self._done += 1
                item.state, item.error, item.report = "failed", result, None
            else:
                item.state, item.report = "checked", result
                item.thumbnail = row_icon(to_qimage(thumb))
            self.items.touch(item_id)

    def _classify(self, generation: int, ready: threading.Event, batch, urgent=False) -> Job:
        """Queue ``(item_id, array)`` pairs on the model lane. Called on the files lane's thread:
        the job is handed to the GUI thread (as if made there) before it is queued, and its
        result reaches the GUI after the batch's own ``_on_read``, which was posted first."""
        ids = [item_id for item_id, _ in batch]
        arrays = np.stack([array for _, array in batch])

        def classify(reporter):
            while not ready.wait(0.05):  # numpy could not read this network: wait for Keras
                if reporter.cancelled() or generation != self._generation:
                    return None  # stopped, or another model was asked for meanwhile
            if generation != self._generation:
                return None  # its model was replaced; the items are read again for the new one
            classifier = self.classifier
            if classifier is None:  # the checkpoint could not be loaded
                return generation, ids, None
            try:
                return generation, ids, classifier.classify(arrays)
            except Exception as exc:  # out of memory, a runtime error: the rows say so
                # (returned, not raised: nothing keeps this job alive for a failed signal's
                # queued call, which Qt drops with the job; a bound finished slot is kept)
                log.exception("classifying a batch of %d images failed", len(ids))
                return generation, ids, str(exc).strip().splitlines()[0] if str(exc).strip() \
                    else type(exc).__name__

        job = Job(classify, "classify")
        job.finished.connect(self._on_classified)
        job.moveToThread(self.thread())
        # urgent: before a folder's queued batches, but never before numpy's read of the model
        # (it would wait for the slower Keras load on the lane that numpy's read needs)
        return self.model_lane.submit(job, urgent=urgent and ready.is_set())

    @Slot(object)
    def _on_classified(self, result) -> None:
        if result is None:
            return  # cancelled while waiting for a model
        generation, ids, probs = result
        if generation != self._generation:
            return  # made by a model that has since been replaced
        if probs is None:  # no model: each row says why instead of waiting for ever
            self._give_up(ids, self._load_error or "the model could not be loaded")
            return
        if isinstance(probs, str):  # the model failed on this batch: why
            self._give_up(ids, probs)
            return
        for item_id, row in zip(ids, probs):
            item = self.items.get(item_id)
            if item is not None and item.state == "checked":
                item.probabilities, item.state = row, "classified"
                self._done += 1
                self.items.touch(item_id)

    def explain(self, item: ImageItem, class_index: int, method: str = "occlusion") -> Job | None:
        """Compute where the evidence for ``class_index`` lies in ``item``'s model input, on the
        model lane; ``explained`` delivers it. A newer request cancels one still queued.

        Grad-CAM needs the Keras model (gradients); until it has loaded, occlusion is used,
        which needs predictions only (numpy's first-prediction engine gives them too). When
        occlusion is asked for and Keras is there, a Grad-CAM preview comes first (``final``
        False): a map within ~15 ms, the clearer one ~0.2 s later.
        """
        if item.report is None or self.classifier is None or self._closed:
            return None
        if self._explaining is not None:
            self._explaining.cancel()
        array, generation, classifier = item.report.array, self._generation, self.classifier
        job = Job(lambda reporter: find_evidence(classifier, array, generation, item.id,
                                                 class_index, method, reporter), "explain")
        job.partial.connect(self._on_explained)
        job.finished.connect(self._on_explained)
        job.failed.connect(lambda reason: None if reason == CANCELLED_BEFORE_START or
                           generation != self._generation else
                           self.explain_failed.emit(item.id, reason))
        self._explaining = job
        self.model_lane.submit(job, urgent=True)  # not behind a whole folder's classifications
        return job

    @Slot(object)
    def _on_explained(self, result) -> None:
        if result is not None and result.generation == self._generation:
            self.explained.emit(result)

    def progress(self) -> tuple[int, int]:
        """Images finished (classified or refused) and images asked for, since the last idle."""
        return min(self._done, self._total), self._total

    def stop_classifying(self) -> int:
        """Stop reading and classifying (a big folder, say): every image not yet classified
        is marked stopped, and a folder still being searched adds nothing more. Returns how
        many were stopped. The model still loads: the Keras load is never cancelled (a quick numpy
        read still queued is, and Keras then answers first)."""
        self._stops += 1
        self._done = self._total = 0  # the progress bar goes, even while a model still loads
        self.walker.cancel_all()
        self.files.cancel_all()
        self.model_lane.cancel_all()
        stopped = 0
        for item in self.items.items:
            if item.state in ("waiting", "checked"):
                item.state = "stopped"
                stopped += 1
        if stopped:
            self.items.touch_all()  # one signal for the table, not one per row
        return stopped

    def clear(self) -> None:
        """Empty the list: what is still being searched, read or classified for it stops."""
        self.stop_classifying()
        self.items.clear()

    @Slot()
    def _emit_busy(self) -> None:
        busy = any(lane.busy() for lane in self._lanes)
        if not busy:
            self._done = self._total = 0
        self.busy_changed.emit(busy)

    def shutdown(self) -> None:
        """Cancel queued work and wait for every lane's thread (called when the window closes)."""
        self._closed = True
        for lane in self._lanes:  # all at once: a lane still working while another is waited
            lane.cancel_all()  # for would work off its queue meanwhile
        for lane in self._lanes:
            lane.shutdown()


def _name_in(file: Path, roots) -> str:
    """A found file's path inside the dropped folder it was found in ("cat/0000.jpg"): files of
    the same name in class folders are told apart."""
    inside = [root for root in roots if root in file.parents]
    return file.relative_to(min(inside, key=lambda r: len(r.parts))).as_posix() if inside \
        else file.name
