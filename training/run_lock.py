"""The lock two copies of the app, open on one data folder, take a run with: Resume and Discard
of an unfinished run both offer read its record again under it (training/runs.py)."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .processes import process_started, same_process_alive

TAKEN = "this run was resumed in another Pixel Classifier window"
GONE = "this run is no longer in the data folder (another Pixel Classifier window discarded it)"
ENDED = "this run was resumed in another Pixel Classifier window, and has ended there"


class RunUnavailable(Exception):
    """An offered run that can no longer be resumed or discarded from here (two copies of the
    app open on one data folder both offer it); the message says why, in the user's words."""


@contextlib.contextmanager
def run_lock(folder: Path):
    """Hold the lock file of the run in ``folder`` while its record is read, checked and written
    (or the run discarded): two copies of the app clicking Resume at the same moment would otherwise both
    find the run free and both take it. Creating the file with O_EXCL succeeds in one process
    only; the other is refused at once (the holder is taking the run, in milliseconds). A lock
    whose holder died meanwhile is stale and taken over."""
    lock = Path(folder) / ".claim.lock"
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileNotFoundError:
            raise RunUnavailable(GONE) from None  # the run's folder is gone
        except FileExistsError:
            if attempt or not _stale(lock):
                raise RunUnavailable(TAKEN) from None
            # (two processes taking over one stale lock could still race: that needs a crash
            # within a claim's milliseconds first)
            lock.unlink(missing_ok=True)
    try:
        os.write(fd, f"{os.getpid()} {process_started(os.getpid())}".encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _stale(lock: Path) -> bool:
    """The process that holds ``lock`` is gone (or is this one: locks are held only within one
    call on the GUI thread). Its pid is written a moment after the file is made: an empty lock
    is held, unless it has been empty for seconds (its holder died in between)."""
    try:
        text, age = lock.read_text(), time.time() - lock.stat().st_mtime
    except OSError:
        return True  # released meanwhile
    pid, _, started = text.partition(" ")
    if not (pid.isascii() and pid.isdigit()):  # ("²" is a digit that int() refuses)
        return age > 10
    return int(pid) == os.getpid() or not same_process_alive(int(pid), started)
