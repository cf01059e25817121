"""Run one long job in a child process, reporting through the caller's reporter as if in-process.

Why: every Keras training run leaves memory behind in the process that ran it (about 31 MB per
run of our recipe with TF 2.21 / Keras 3.15, measured over 20 runs; ``gc`` and
``keras.backend.clear_session`` do not return it). A run in its own process gives all of it back
when the process ends, and a crash inside TensorFlow ends that process, not the app. It also
frees the caller's interpreter lock: the window keeps its whole share of the CPU's attention.

A :class:`ChildProcess` is spawned when it is made, ahead of its job: it imports TensorFlow while
the user is still looking at their data, then waits for its one job. ``run`` blocks the calling
(worker) thread, forwards progress and partial results to the reporter, mirrors the reporter's
cancel and pause state into the child, and returns the job's result or raises its exception.
"""
from __future__ import annotations

import logging
import multiprocessing
import traceback

from .reporting import CancelFlag, SilentReporter, first_line

log = logging.getLogger(__name__)


class ChildDied(RuntimeError):
    """The child process ended without a result (killed, out of memory, a crash in native code)."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class _PipeReporter(SilentReporter):
    """The child's reporter: sends progress and partials to the parent; cancel and pause come
    from the flag the parent shares with it."""

    def __init__(self, conn, cancel: CancelFlag) -> None:
        super().__init__(cancel)
        self.conn = conn

    def progress(self, fraction: float, message: str = "") -> None:
        self.conn.send(("progress", float(fraction), message))

    def partial(self, payload: object) -> None:
        self.conn.send(("partial", payload))


def _child_main(conn, flag: CancelFlag, warm_imports: tuple[str, ...]) -> None:
    """The child: import what the job needs, then wait for the job, run it and send its outcome."""
    import importlib
    import signal

    # Ctrl+C in the app's terminal is the app's to handle: the run stops through the app (its
    # Stop, or its closing), never half way through a write in here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in warm_imports:
        importlib.import_module(name)
    try:
        fn, args = conn.recv()
    except EOFError:  # the parent went away or closed us before giving a job
        return
    try:
        result = fn(*args, reporter=_PipeReporter(conn, flag))
    except BaseException as exc:  # everything goes back to the parent, which decides
        text = traceback.format_exc()
        try:
            conn.send(("error", exc, text))
        except Exception:  # an exception that does not pickle still reaches the parent as text
            conn.send(("error", RuntimeError(first_line(exc)), text))
    else:
        conn.send(("result", result))
    conn.close()


class ChildProcess:
    """One spawned process, started now, that runs one job later (see the module docstring)."""

    def __init__(self, warm_imports: tuple[str, ...] = ("training.train", "keras"),
                 name: str = "job") -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._flag = CancelFlag(ctx.Event)
        self.process = ctx.Process(target=_child_main, args=(child_conn, self._flag, warm_imports),
                                   name=f"pixelclassifier-{name}", daemon=True)
        self.process.start()
        child_conn.close()
        self._used = False

    def alive(self) -> bool:
        return self.process.is_alive()

    def run(self, fn, args: tuple, reporter):
        """Run ``fn(*args, reporter=...)`` in the child; block until it ends; return or raise.

        ``fn`` must be importable by name (a module-level function) and ``args`` picklable.
        """
        if self._used:
            raise RuntimeError("a ChildProcess runs one job")
        self._used = True
        try:
            self._conn.send((fn, args))
        except (BrokenPipeError, OSError) as exc:
            raise ChildDied(self._death_message(), self.process.pid) from exc
        try:
            while True:
                if reporter.cancelled():
                    self._flag.set()
                elif reporter.paused():
                    self._flag.pause()
                else:
                    self._flag.resume()
                if not self._conn.poll(0.05):
                    if not self.process.is_alive() and not self._conn.poll(0):
                        raise ChildDied(self._death_message(), self.process.pid)
                    continue
                try:
                    message = self._conn.recv()
                except EOFError:
                    raise ChildDied(self._death_message(), self.process.pid) from None
                kind = message[0]
                if kind == "progress":
                    reporter.progress(message[1], message[2])
                elif kind == "partial":
                    reporter.partial(message[1])
                elif kind == "result":
                    return message[1]
                elif kind == "error":
                    log.error("job in child process %s failed:\n%s", self.process.pid, message[2])
                    error = message[1]
                    if not isinstance(error, Exception):  # an interrupt there is a failure here,
                        error = RuntimeError(first_line(error) or type(error).__name__)
                    raise error  # not one that ends this thread without a word
        finally:
            self.close()

    def _death_message(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        how = f"exit code {code}" if code is None or code >= 0 else f"signal {-code}"
        return f"the {self.process.name.split('-', 1)[-1]} process ended unexpectedly ({how})"

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the child end once it has sent its outcome; one that never got a job holds
        nothing worth keeping and is ended at once (it may still be importing TensorFlow)."""
        self._conn.close()
        if self._used:
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
