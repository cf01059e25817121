"""The small object long jobs report through, and a cancel flag they check between steps."""
from __future__ import annotations

import threading
from typing import Protocol


class Reporter(Protocol):
    """What a long job (training, evaluation, batch prediction) tells its caller.

    ``progress`` receives a fraction in [0, 1] and a short message; ``partial`` receives a job
    specific payload (a prediction result, a batch loss); ``cancelled`` is polled between steps.
    """

    def progress(self, fraction: float, message: str = "") -> None: ...

    def partial(self, payload: object) -> None: ...

    def cancelled(self) -> bool: ...


class CancelFlag:
    """A thread-safe flag that a job polls and its owner sets."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


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


class PrintReporter(SilentReporter):
    """A reporter for the command line: prints messages it is given, one line each."""

    def __init__(self, stream=None, cancel: CancelFlag | None = None) -> None:
        super().__init__(cancel)
        import sys
        self.stream = stream or sys.stdout

    def progress(self, fraction: float, message: str = "") -> None:
        if message:
            print(message, file=self.stream, flush=True)
