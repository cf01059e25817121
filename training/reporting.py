"""The small object long jobs report through, and a cancel flag they check between steps."""
from __future__ import annotations

import threading
import time
from typing import Protocol


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one line for the user: its message's first line, else its type.

    A first line that ends in ":" only announces the reason on the lines below (Keras: "A total
    of 1 objects could not be loaded. Example error message for object <Conv2D ...>:"); the next
    line joins it, and when both are too long the announcement is shortened, not the reason."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__[:limit]
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        reason = lines[1][:limit]
        room = limit - len(reason) - 1  # (the space between them)
        if len(text) > room:
            text = text[:room - 1] + "…" if room > 1 else ""
        text = f"{text} {reason}".strip()
    return text[:limit]


class Reporter(Protocol):
    """What a long job (training, evaluation, batch prediction) tells its caller.

    ``progress`` receives a fraction in [0, 1] and a short message; ``partial`` receives a job
    specific payload (a prediction result, a batch loss); ``cancelled`` is polled between steps;
    ``pause_point`` is called between steps too and blocks while the owner has paused the job;
    ``paused`` says whether it is paused now (``training.isolated`` passes that on to a child).
    """

    def progress(self, fraction: float, message: str = "") -> None: ...

    def partial(self, payload: object) -> None: ...

    def cancelled(self) -> bool: ...

    def pause_point(self) -> float: ...

    def paused(self) -> bool: ...


class CancelFlag:
    """A thread-safe cancel flag and pause switch that a job polls and its owner sets.

    ``event`` makes its two events: ``threading.Event`` by default, a multiprocessing context's
    ``Event`` to share the flag with a child process (``training.isolated``)."""

    def __init__(self, event=threading.Event) -> None:
        self._event = event()
        self._running = event()
        self._running.set()

    def set(self) -> None:
        self._event.set()
        self._running.set()  # a paused job wakes up to notice it was cancelled

    def is_set(self) -> bool:
        return self._event.is_set()

    def pause(self) -> None:
        if not self._event.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> float:
        """Block while paused (until resumed or cancelled); return the seconds spent waiting."""
        if self._running.is_set():
            return 0.0
        import multiprocessing
        t0 = time.monotonic()
        parent = multiprocessing.parent_process()  # set in a spawned training process
        while not self._running.wait(1.0):
            if parent is not None and not parent.is_alive():
                raise SystemExit("the app that paused this run has gone")  # not an orphan
        return time.monotonic() - t0


class SharedFlag(CancelFlag):
    """The cancel flag and pause switch shared with a child process, without a lock: one byte
    of shared memory that only the parent writes (run, paused, cancelled) and the child reads.
    A multiprocessing Event takes a semaphore for every look, and a process killed while it
    held one left the other side waiting for ever (an orphaned run, or a window stuck on
    "training"); here nothing is ever held."""

    RUN, PAUSED, CANCELLED = 0, 1, 2

    def __init__(self, ctx) -> None:  # (a multiprocessing context)
        self._state = ctx.RawValue("b", self.RUN)

    def set(self) -> None:
        self._state.value = self.CANCELLED  # a paused job wakes up to notice it

    def is_set(self) -> bool:
        return self._state.value == self.CANCELLED

    def pause(self) -> None:
        if self._state.value == self.RUN:
            self._state.value = self.PAUSED

    def resume(self) -> None:
        if self._state.value == self.PAUSED:
            self._state.value = self.RUN

    def paused(self) -> bool:
        return self._state.value == self.PAUSED

    def wait_while_paused(self) -> float:
        if self._state.value != self.PAUSED:
            return 0.0
        import multiprocessing
        t0 = time.monotonic()
        parent = multiprocessing.parent_process()
        while self._state.value == self.PAUSED:
            time.sleep(0.05)
            if parent is not None and not parent.is_alive():
                raise SystemExit("the app that paused this run has gone")  # not an orphan
        return time.monotonic() - t0


class SilentReporter:
    """A reporter that drops progress and reads an optional cancel flag."""

    def __init__(self, cancel: CancelFlag | None = None) -> None:
        self.cancel = cancel or CancelFlag()

    def progress(self, fraction: float, message: str = "") -> None:
        pass

    def partial(self, payload: object) -> None:
        pass

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def pause_point(self) -> float:
        return self.cancel.wait_while_paused()

    def paused(self) -> bool:
        return self.cancel.paused()


class PrintReporter(SilentReporter):
    """A reporter for the command line: prints messages it is given, one line each."""

    def __init__(self, stream=None, cancel: CancelFlag | None = None) -> None:
        super().__init__(cancel)
        import sys
        self.stream = stream or sys.stdout

    def progress(self, fraction: float, message: str = "") -> None:
        if message:
            print(message, file=self.stream, flush=True)
