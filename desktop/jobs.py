"""One worker shape for every background job: started, progress, partial, finished, failed.

A :class:`Job` wraps a plain function ``fn(reporter)`` from ``training/``. A :class:`JobLane` runs
its jobs one after another on its own ``QThread``, so jobs that share a Keras model never overlap
and a job submitted while another runs (a drop while the model loads) waits its turn instead of
being lost. Jobs talk to widgets only through signals; cancellation is cooperative.
"""
from __future__ import annotations

import logging
import time
import traceback
from collections import deque

from PySide6.QtCore import QObject, QThread, Signal, Slot

from training.reporting import CancelFlag

log = logging.getLogger(__name__)


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


class Job(QObject):
    """A function run on a lane's thread, reporting through signals."""

    started = Signal()
    progress = Signal(float, str)
    partial = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    done = Signal()  # after finished or failed, for the lane

    def __init__(self, fn, name: str = "job") -> None:
        super().__init__()
        self.fn, self.name = fn, name
        self.cancel_flag = CancelFlag()

    def cancel(self) -> None:
        self.cancel_flag.set()

    @Slot()
    def run(self) -> None:
        self.started.emit()
        try:
            result = self.fn(_SignalReporter(self))
        except Exception as exc:  # every failure becomes a one-line message, never a crash
            log.error("job %s failed:\n%s", self.name, traceback.format_exc())
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.failed.emit(text)
        else:
            self.finished.emit(result)
        self.done.emit()


class JobLane(QObject):
    """Runs submitted jobs in order on one thread; ``shutdown`` cancels and waits."""

    _start = Signal(QObject)
    idle = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.queue: deque[Job] = deque()
        self.current: Job | None = None
        self.thread.start()

    def submit(self, job: Job) -> Job:
        job.moveToThread(self.thread)
        job.done.connect(self._on_done)
        self.queue.append(job)
        self._next()
        return job

    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    def _next(self) -> None:
        if self.current is None and self.queue:
            self.current = self.queue.popleft()
            # A queued single-shot call into the job's thread starts it there.
            from PySide6.QtCore import QMetaObject, Qt
            QMetaObject.invokeMethod(self.current, "run", Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _on_done(self) -> None:
        finished, self.current = self.current, None
        if finished is not None:
            finished.deleteLater()
        if self.queue:
            self._next()
        else:
            self.idle.emit()

    def cancel_all(self) -> None:
        for job in self.queue:
            job.cancel()
            job.deleteLater()
        self.queue.clear()
        if self.current is not None:
            self.current.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything, stop the thread and wait for it; True when it stopped in time."""
        self.cancel_all()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
