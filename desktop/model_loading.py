"""The active checkpoint and the two engines that load it: numpy's quick read and TensorFlow's
Keras model (:meth:`ModelLoading.load_model` says how they race). The classifier they install is
shared with the worker threads that classify; :class:`desktop.session.ClassifierSession` builds
the image list on top of it.
"""
from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from training.checkpoints import CheckpointError, CheckpointInfo, file_sha256, read_info

from .jobs import CANCELLED_BEFORE_START, Job, JobLane


class ModelLoading(QObject):
    """Which checkpoint is in use, which classifier answers for it, and which load is current
    (``_generation``): results queued for a replaced model are dropped by their receivers."""

    model_loading = Signal(str)  # checkpoint name
    model_ready = Signal(object)  # CheckpointInfo; once per load, from whichever engine is first
    info_changed = Signal(object)  # CheckpointInfo: the model in use, renamed or evaluated
    keras_ready = Signal()  # the TensorFlow model took over (numpy's answers until then)
    model_failed = Signal(str)
    model_refused = Signal(object, str)  # Path, why: not loaded; the model used before answers

    def __init__(self, checkpoint: Path, parent=None) -> None:
        super().__init__(parent)
        self.model_lane = JobLane("model", self)  # numpy's read, then every classification
        self.loader = JobLane("loader", self)  # imports TensorFlow, loads Keras models
        self.classifier = None
        # absolute: "--checkpoint checkpoints/mine.keras" is the library's mine.keras (in use,
        # marked so, not deleted under the app); not resolved: the library's folder is not either
        self.checkpoint = Path(os.path.abspath(Path(checkpoint).expanduser()))
        self.info: CheckpointInfo | None = None
        self._generation = 0  # counts model loads; a classification carries the one it ran for
        self._ready = False  # model_ready emitted for the current generation
        self._keras = False  # the current classifier is the Keras one (numpy's never replaces it)
        self._lock = threading.Lock()  # generation and classifier, set from several threads
        self._classifier_ready = threading.Event()
        self._failed_generation = -1  # the load the Keras lane last refused
        self._load_error = ""  # why it refused, for the rows it could not classify
        # the model in use before a switch, until Keras's verdict on the new one: (path, info,
        # its Keras classifier, or None where it was still loading: then it is loaded again)
        self._fallback = None
        self._closed = False  # set by shutdown: results still queued for the GUI start nothing

    def _recheck_all(self) -> None:
        """Read every image again for the model just asked for (the image list does it)."""
        raise NotImplementedError

    def _give_up_all(self, reason: str) -> None:
        """Every image says ``reason`` instead of waiting for a model (the image list does it)."""
        raise NotImplementedError

    def load_model(self, checkpoint: Path | None = None) -> str:
        """Read the sidecar now (cheap), load the network in the background.

        Two loads race: numpy reads the network in about 0.1 s (``training.numpy_net``, on the
        model lane) and classifies while TensorFlow is imported and the Keras model is loaded and
        traced on the loader lane (about 2 s); the Keras classifier then takes over for every
        later classification. Images that arrive before either is ready wait for the first. A
        network numpy does not understand simply waits for Keras, which also has the last word
        on whether the checkpoint is valid (``safe_mode``, sidecar checks).

        Returns "" or why the sidecar or model file cannot be used: then a model already in use
        stays in use (nothing changes); with none, every image says why it is not classified.
        Refused later by Keras, the checkpoint gives way to the model used before (if it was
        loaded): ``model_refused`` says so.
        """
        path = Path(checkpoint or self.checkpoint)
        try:
            info = read_info(path)
            # its model file, gone (moved in a file manager) or cut short, is refused before
            # the model in use is given up: the Keras load would only say so later
            if not path.is_file():
                raise CheckpointError(f"checkpoint not found: {path}")
            if not zipfile.is_zipfile(path):
                raise CheckpointError(f"{path.name} is not a whole .keras file (damaged or cut "
                                      "short)")
            # replaced by another model: said now, not by the Keras load (numpy's read does not
            # check, and would answer meanwhile); about 20 ms for the bundled 8 MB
            if self.info is not None and info.model_sha256 and \
                    file_sha256(path) != info.model_sha256:
                raise CheckpointError(f"{path.name} is not the model its sidecar was written "
                                      "for (SHA-256 differs)")
        except Exception as exc:  # noqa: BLE001 - an untrusted file: any failure is a reason
            reason = str(exc)
            if self.info is None:  # nothing to go on predicting with
                self.checkpoint, self._load_error = path, f"the model could not be loaded: {reason}"
                self._give_up_all(self._load_error)
                self.model_failed.emit(reason)
            return reason
        with self._lock:
            if self._keras and self.classifier is not None:  # loaded and checked: kept until
                self._fallback = (self.checkpoint, self.info, self.classifier)  # this one is
            elif self._fallback is None and self.info is not None and not self._keras:
                self._fallback = (self.checkpoint, self.info, None)  # its Keras load still runs
            self.checkpoint, self.info, self._load_error = path, info, ""
            self.classifier = None
            self._generation += 1  # results of the previous model still queued are dropped
            self._ready = self._keras = False
            self._classifier_ready = ready = threading.Event()
        self.items.class_names = info.class_names
        generation, path = self._generation, self.checkpoint
        self.model_loading.emit(path.stem)

        def read_with_numpy(reporter):
            from training.numpy_net import NumpyNet
            if generation != self._generation:
                return None  # another model was asked for before this one's turn came
            try:
                net = NumpyNet.load(path)
            except Exception:  # not understood or unreadable: the Keras load gives the verdict
                return None
            self._install(generation, net, ready, keras=False)
            return generation, net.info, "numpy"

        def load_with_keras(reporter):
            from training.predict import Classifier
            if generation != self._generation:  # a newer switch: loading this would only
                return None  # delay the model the user chose last
            try:
                classifier = Classifier.load(path)  # traced here: the model lane never waits
            except BaseException:
                self._install(generation, None, ready, keras=True)  # waiting jobs give up
                self._failed_generation = generation
                raise
            self._install(generation, classifier, ready, keras=True)
            return generation, classifier.info, "keras"

        # Bound slots: with lambdas here model_ready was sometimes never delivered (a test caught it).
        quick = Job(read_with_numpy, "read model with numpy")
        quick.finished.connect(self._on_model_loaded)
        self.model_lane.submit(quick)
        full = Job(load_with_keras, "load model")
        full.finished.connect(self._on_model_loaded)
        full.failed.connect(self._on_load_failed)
        self.loader.submit(full)
        self._recheck_all()  # the new model may read images differently; its jobs queue behind
        return ""

    def reread_info(self, path: Path) -> bool:
        """``path`` holds the model in use (it was renamed there, or evaluated and its sidecar
        rewritten): take its sidecar's name and metrics without loading or classifying again
        (a rename re-classified every image, stopped ones too). False if it is another model."""
        # (not while its Keras load still runs: that load reads the old name, and fails)
        if self.info is None or not self._keras or self.classifier is None \
                or not self.info.model_sha256:
            return False
        try:
            info = read_info(path)
        except Exception:  # noqa: BLE001 - unreadable: a load says why
            return False
        if info.model_sha256 != self.info.model_sha256 or (
                Path(path) != self.checkpoint and self.checkpoint.exists()):
            return False  # another model, or a copy beside the one in use (a switch)
        self.checkpoint, self.info = Path(path), info
        self.info_changed.emit(info)  # (not model_ready: the threshold the user set stays)
        return True

    def _install(self, generation: int, classifier, ready: threading.Event, keras: bool) -> None:
        """From a worker: make ``classifier`` the one later classifications use, unless a newer
        checkpoint was asked for meanwhile. Keras's (or its refusal, None) replaces numpy's;
        numpy's never replaces Keras's."""
        with self._lock:
            if generation == self._generation and (keras or not self._keras):
                self.classifier, self._keras = classifier, keras
                ready.set()

    @Slot(str)
    def _on_load_failed(self, reason: str) -> None:
        if self._failed_generation != self._generation or reason == CANCELLED_BEFORE_START:
            return  # an older load, or the app closing before the load began
        back, self._fallback = self._fallback, None
        if self._closed:  # refused as the window closed: nothing to go back to (a load started
            return  # now would run after the lanes were shut down)
        if back is not None and back[0].is_file() and self._go_back(back, reason):
            return
        with self._lock:
            self._generation += 1  # numpy's results for a checkpoint Keras refuses are dropped
            self.classifier = None
        self._load_error = f"the model could not be loaded: {reason}"
        # numpy's results came from the refused file: they go, and no row waits for ever
        self._give_up_all(self._load_error)
        self.model_failed.emit(reason)

    def _go_back(self, back, reason: str) -> bool:
        """The model switched to was refused by Keras: the one used before answers again (the
        images are classified by it again) and ``model_refused`` says why. False if it cannot
        (it was still loading, and now its sidecar cannot be read)."""
        refused = self.checkpoint
        if back[2] is None:  # its load was given up for the switch: loaded again
            if self.load_model(back[0]):
                return False
            self.model_refused.emit(refused, reason)
            return True
        with self._lock:
            self._generation += 1  # numpy's results for the refused checkpoint are dropped
            self.checkpoint, self.info, self.classifier = back
            self._keras, self._ready, self._load_error = True, True, ""
            self._classifier_ready = ready = threading.Event()
            ready.set()
        self.items.class_names = self.info.class_names
        self.model_refused.emit(refused, reason)
        self.model_ready.emit(self.info)  # its classes, threshold and status line again
        self._recheck_all()
        return True

    @Slot(object)
    def _on_model_loaded(self, result) -> None:
        if result is None:
            return  # numpy could not read it; the Keras load decides
        generation, info, engine = result
        if generation != self._generation:
            return
        if engine == "keras":
            self._fallback = None  # this one is checked: the one before is let go
            self.keras_ready.emit()
        if self._ready:
            return
        self._ready = True
        self.info = info
        self.model_ready.emit(info)
