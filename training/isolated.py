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
import os
import time
import traceback

from .reporting import SharedFlag, SilentReporter, first_line

log = logging.getLogger(__name__)

CHILD_LOG = "training-child.log"  # in the per-user log folder: what a child says and why it died
STOP_GRACE_S = 90.0  # after Stop, a child that sends nothing for this long is ended by force


class ChildDied(RuntimeError):
    """The child process ended without a result (killed, out of memory, a crash in native code)."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class _PipeReporter(SilentReporter):
    """The child's reporter: sends progress and partials to the parent; cancel and pause come
    from the flag the parent shares with it."""

    def __init__(self, conn, cancel: SharedFlag) -> None:
        super().__init__(cancel)
        self.conn = conn

    def progress(self, fraction: float, message: str = "") -> None:
        self.conn.send(("progress", float(fraction), message))

    def partial(self, payload: object) -> None:
        self.conn.send(("partial", payload))


def _child_main(conn, flag: SharedFlag, warm_imports: tuple[str, ...]) -> None:
    """The child: import what the job needs, then wait for the job, run it and send its outcome."""
    import importlib
    import signal

    _end_with_parent()
    _log_to_file()
    # Ctrl+C in the app's terminal is the app's to handle: the run stops through the app (its
    # Stop, or its closing), never half way through a write in here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    failed = None
    try:
        for name in warm_imports:
            importlib.import_module(name)
    except BaseException as exc:  # a bundle missing a module, a broken TensorFlow: said below
        log.exception("the training process could not import %s", name)
        failed = exc
    try:
        fn, args = conn.recv()
    except (EOFError, OSError):  # the parent went away or closed us before giving a job
        return
    try:
        if failed is not None:
            raise failed
        result = fn(*args, reporter=_PipeReporter(conn, flag))
    except BaseException as exc:  # everything goes back to the parent, which decides
        text = traceback.format_exc()
        log.error("job failed:\n%s", text)
        try:
            conn.send(("error", exc, text))
        except Exception:  # an exception that does not pickle still reaches the parent as text
            conn.send(("error", RuntimeError(first_line(exc)), text))
    else:
        conn.send(("result", result))
    conn.close()


def _end_with_parent() -> None:
    """A thread that ends this process the moment the app's process is gone (killed, crashed):
    never an orphan training on for nobody, nor one that writes over the run a later launch
    resumed. (The pipe only tells when something is sent; a validation pass sends nothing.)"""
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(70)  # saves are atomic: whatever was being written stays as it was

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _log_to_file() -> None:
    """The child's log records, warnings, tracebacks and native crashes (faulthandler) go to
    ``CHILD_LOG``: a child started from a desktop entry has no terminal to print to."""
    import faulthandler

    from .paths import user_log_dir
    try:
        folder = user_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CHILD_LOG
        if path.is_file() and path.stat().st_size > 2_000_000:
            os.replace(path, path.with_name(CHILD_LOG + ".1"))
        stream = open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
    except OSError:
        return  # no log folder: the job still runs
    stream.write(f"--- training process {os.getpid()} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    logging.captureWarnings(True)
    faulthandler.enable(stream)
    try:
        os.dup2(stream.fileno(), 2)  # TensorFlow's own messages and aborts land there too
    except OSError:
        pass


class ChildProcess:
    """One spawned process, started now, that runs one job later (see the module docstring)."""

    def __init__(self, warm_imports: tuple[str, ...] = ("training.train", "keras"),
                 name: str = "job") -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._flag = SharedFlag(ctx)
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
        stopped_at = None  # when Stop came: a child silent for STOP_GRACE_S after it is ended
        try:
            while True:
                if reporter.cancelled():
                    self._flag.set()
                    stopped_at = stopped_at or time.monotonic()
                elif reporter.paused():
                    self._flag.pause()
                else:
                    self._flag.resume()
                try:
                    waiting = not self._conn.poll(0.05)
                    if waiting and not self.process.is_alive() and not self._conn.poll(0):
                        raise ChildDied(self._death_message(), self.process.pid)
                    message = None if waiting else self._conn.recv()
                except (EOFError, OSError):  # (a child dead before reading its job: a reset)
                    raise ChildDied(self._death_message(), self.process.pid) from None
                if message is None:
                    if stopped_at and time.monotonic() - stopped_at > STOP_GRACE_S:
                        self.process.kill()  # hung (native code, a stuck import): Stop wins
                        raise ChildDied(f"the {self._job_name()} process did not answer Stop "
                                        f"within {STOP_GRACE_S:.0f} s and was ended (what it "
                                        "had saved is kept)", self.process.pid)
                    continue
                stopped_at = stopped_at and time.monotonic()  # it still talks: more grace
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

    def _job_name(self) -> str:
        return self.process.name.split('-', 1)[-1]

    def _death_message(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        how = f"exit code {code}" if code is None or code >= 0 else f"signal {-code}"
        return (f"the {self._job_name()} process ended unexpectedly ({how})"
                f"{_last_words(self.process.pid)}")

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the child end once it has sent its outcome; one that never got a job holds
        nothing worth keeping and is ended at once (it may still be importing TensorFlow)."""
        self._conn.close()
        if self._used:
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def _last_words(pid: int | None = None) -> str:
    """The end of the child's log, for a death message: what it said before it died."""
    from .paths import user_log_dir
    try:
        path = user_log_dir() / CHILD_LOG
        with open(path, "rb") as handle:
            handle.seek(max(path.stat().st_size - 4000, 0))
            lines = [ln.strip() for ln in handle.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    mine, own = [], pid is None
    for line in lines:  # other children (another window's) write to the same file
        if line.startswith("--- training process "):
            own = pid is None or line.split()[3] == str(pid)
        elif line and own:
            mine.append(line)
    return f"; its log ({path}) ends: {mine[-1][:200]}" if mine else ""
