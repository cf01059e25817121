"""One worker shape for every background job: started, progress, partial, finished, failed.

A :class:`Job` wraps a plain function ``fn(reporter)`` from ``training/``. A :class:`JobLane` runs
its jobs one after another on its own worker thread, so jobs that share a Keras model never overlap
and a job submitted while another runs (a drop while the model loads) waits its turn instead of
being lost. Jobs talk to widgets only through signals; cancellation is cooperative.
"""
from __future__ import annotations

import itertools
import logging
import time
import traceback
import queue
import threading

from PySide6.QtCore import QObject, Signal, Slot

from training.reporting import CancelFlag

log = logging.getLogger(__name__)

# What ``failed`` says for a job cancelled while it waited its turn: it never ran.
CANCELLED_BEFORE_START = "cancelled before it started"


class _SignalReporter:
    """Adapts the ``training`` reporter protocol to a job's signals (progress throttled to 10/s)."""

    def __init__(self, job: "Job") -> None:
        self.job, self._last = job, 0.0

    def progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if message or fraction >= 1.0 or now - self._last >= 0.1:
            self._last = now
            self.job.progress.emit(float(fraction), message)

    def partial(self, payload: object) -> None:
        self.job.partial.emit(payload)

    def cancelled(self) -> bool:
        return self.job.cancel_flag.is_set()

    def pause_point(self) -> float:
        return self.job.cancel_flag.wait_while_paused()

    def paused(self) -> bool:
        return self.job.cancel_flag.paused()


class Job(QObject):
    """A function run on a lane's thread, reporting through signals."""

    started = Signal()
    progress = Signal(float, str)
    partial = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, fn, name: str = "job") -> None:
        super().__init__()
        self.fn, self.name = fn, name
        self.cancel_flag = CancelFlag()

    def cancel(self) -> None:
        self.cancel_flag.set()

    def pause(self) -> None:
        self.cancel_flag.pause()

    def resume(self) -> None:
        self.cancel_flag.resume()

    @Slot()
    def run(self) -> None:
        self.started.emit()
        try:
            result = self.fn(_SignalReporter(self))
        except BaseException as exc:  # every failure becomes a one-line message, never a crash
            # (an interrupt too: a job that ended without a signal would leave its panel busy)
            log.error("job %s failed:\n%s", self.name, traceback.format_exc())
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.failed.emit(text)
        else:
            self.finished.emit(result)


class JobLane(QObject):
    """Runs submitted jobs in order on one worker thread; ``shutdown`` cancels and waits.

    The worker is a Python ``threading.Thread``, not a ``QThread``: TensorFlow segfaults when it
    re-traces a function (a new batch size) on a QThread (reproduced with TF 2.21 and PySide6
    6.12, not on Python threads). Jobs stay owned by the GUI thread; signals they emit from the
    worker reach widgets as queued calls, as with superqt's thread-pool workers.
    """

    idle = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        # (priority, order, job): an urgent job (one the user waits on) goes before the queue
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._pending: list[Job] = []  # submitted, not yet finished (read on the GUI thread)
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._work, name=f"lane-{name}", daemon=True)
        self.thread.start()

    def submit(self, job: Job, urgent: bool = False) -> Job:
        """Queue ``job``; an ``urgent`` one runs next, before jobs queued earlier (a saliency
        map the user asked for, not after a whole folder's classifications)."""
        with self._lock:
            self._pending.append(job)
        self._queue.put((0 if urgent else 1, next(self._order), job))
        return job

    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def submit_saying(self, job: Job, show, doing: str, behind: str) -> Job:
        """Queue ``job`` and ``show`` what it does; while it waits behind ``behind`` (a job
        already on this lane) say so until it starts: a queued job is never a silent wait."""
        if self.busy():
            show(f"Waiting for {behind} to finish, then {doing[:1].lower()}{doing[1:]}")
            job.started.connect(lambda: show(doing))
        else:
            show(doing)
        return self.submit(job)

    def _work(self) -> None:
        while (job := self._queue.get()[2]) is not None:
            if job.cancel_flag.is_set():  # it still ends with one of its signals
                job.failed.emit(CANCELLED_BEFORE_START)
            else:
                job.run()
            with self._lock:
                self._pending.remove(job)
                empty = not self._pending
            if empty:
                self.idle.emit()

    def cancel_all(self) -> None:
        with self._lock:
            for job in self._pending:
                job.cancel()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel everything, stop the thread and wait for it; True when it stopped in time."""
        self.cancel_all()
        self._queue.put((2, next(self._order), None))  # after the cancelled jobs' signals
        self.thread.join(timeout_s)
        if self.thread.is_alive():  # a job that never looks at its cancel flag: said in the log
            log.warning("lane %s still busy %.0f s after it was asked to stop; leaving it "
                        "(a daemon thread ends with the app)", self.name, timeout_s)
        return not self.thread.is_alive()
