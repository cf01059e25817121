"""Shared fixtures: offscreen Qt, a private user folder, generated images and a tiny checkpoint.

A test fails when it leaves a QThread running or a QTimer active (napari's habit).
"""
from __future__ import annotations

import os
import sys
import weakref

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"  # what the app ships, whatever the shell says

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch):
    """User data, cache and settings go to a temporary folder, never the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PIXELCLASSIFIER_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_dangling_qt(request):
    """Fail a test that leaves a QThread, job-lane thread or child process running, a timer
    active, or a ``QTimer.singleShot`` still to fire (it would fire in a later test)."""
    try:
        from PySide6.QtCore import QObject, QThread, QTimer
    except ImportError:  # pure training tests in an environment without Qt
        yield
        return
    threads, timers = weakref.WeakSet(), weakref.WeakSet()
    thread_start, timer_start = QThread.start, QTimer.start
    single_shot, pending = QTimer.__dict__["singleShot"], {}

    def tracked_single_shot(msec, *args):
        *head, functor = args
        if not callable(functor):  # (receiver, "slot") by name: not tracked
            return single_shot(msec, *args)
        owner = getattr(functor, "__self__", None)
        if not head and isinstance(owner, QObject):  # a QObject's method: cancelled with it,
            head = [owner]  # as PySide does for the method itself
        token, caller = object(), sys._getframe(1)
        context = next((a for a in head if isinstance(a, QObject)), None)
        pending[token] = (f"singleShot({msec}) from {caller.f_code.co_filename}:{caller.f_lineno}",
                          None if context is None else weakref.ref(context))

        def fire():
            pending.pop(token, None)
            functor()
        return single_shot(msec, *head, fire)

    def start_thread(self, *args):
        threads.add(self)
        return thread_start(self, *args)

    def start_timer(self, *args):
        timers.add(self)
        return timer_start(self, *args)

    QThread.start, QTimer.start = start_thread, start_timer
    QTimer.singleShot = staticmethod(tracked_single_shot)
    try:
        yield
    finally:
        QThread.start, QTimer.start = thread_start, timer_start
        QTimer.singleShot = single_shot
    import multiprocessing
    import threading
    running = [t.objectName() or repr(t) for t in list(threads) if _alive(t, "isRunning")]
    running += [t.name for t in threading.enumerate() if t.name.startswith("lane-")]
    running += [p.name for p in multiprocessing.active_children()]
    active = [repr(t) for t in list(timers) if _alive(t, "isActive")]
    # a single-shot whose context object is deleted is cancelled with it
    active += [where for where, context in pending.values()
               if context is None or _exists(context())]
    assert not running, f"test left threads or processes running: {running}"
    assert not active, f"test left QTimers active: {active}"


def _exists(obj) -> bool:
    """Whether a Qt object from a weak reference is still there: not collected, not deleted."""
    import shiboken6
    return obj is not None and shiboken6.isValid(obj)


def _alive(obj, method) -> bool:
    try:
        return getattr(obj, method)()
    except RuntimeError:  # the C++ object is already deleted
        return False


def solid(color, size=(32, 32), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


@pytest.fixture
def image_dir(tmp_path):
    """A folder of small generated images, one of them broken, in nested subfolders."""
    folder = tmp_path / "pictures"
    (folder / "nested").mkdir(parents=True)
    solid((200, 30, 30)).save(folder / "red.png")
    solid((30, 200, 30), (64, 48)).save(folder / "green.jpg")
    solid((30, 30, 200)).save(folder / "nested" / "blue.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (folder / "notes.txt").write_text("not an image, and not picked up from folders")
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A small untrained 3-class checkpoint with a sidecar: loads in well under a second."""
    from training.checkpoints import CheckpointInfo, save_checkpoint
    from training.model import build_model

    import keras
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.keras"
    model = build_model(3, widths=(4, 8, 8), stem=4)
    save_checkpoint(model, CheckpointInfo(class_names=("red", "green", "blue")), path)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def copy_of_tiny(tiny_checkpoint, tmp_path):
    """``copy_of_tiny(name)``: a writable copy of the tiny checkpoint (model and sidecar) in the
    test's folder, for tests that store evaluations or rename (the original is shared)."""
    import shutil
    from training.checkpoints import sidecar_path

    def copy(name: str = "copy"):
        path = tmp_path / f"{name}.keras"
        shutil.copy(tiny_checkpoint, path)
        shutil.copy(sidecar_path(tiny_checkpoint), sidecar_path(path))
        return path
    return copy
