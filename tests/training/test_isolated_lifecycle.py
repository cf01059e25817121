"""The training process's life around the app's: it ends with the app (killed mid-run, even
where the run sends nothing), a child gone before its job or hung after Stop is said and ended
instead of hanging the window, and what it says before it dies is kept in its log."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training import isolated
from training.isolated import CHILD_LOG, ChildDied, ChildProcess
from training.paths import user_log_dir
from training.reporting import CancelFlag

from .test_isolated import CHEAP, Recorder

ROOT = Path(__file__).resolve().parents[2]


def silent_job(seconds, reporter):
    """A stretch that sends nothing (a validation pass, tracing the first batch)."""
    reporter.partial({"pid": os.getpid()})
    time.sleep(seconds)
    return "done"


def aborting_job(reporter):
    reporter.progress(0.1, "about to crash in native code")
    os.abort()


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


APP = r"""
import sys
from training.isolated import ChildProcess
from tests.training.test_isolated import Recorder
from tests.training.test_isolated_lifecycle import silent_job

class Says(Recorder):
    def partial(self, payload):
        print(payload["pid"], flush=True)

ChildProcess(("training.reporting",)).run(silent_job, (300,), Says())
"""


def test_a_run_ends_with_the_app_killed_even_while_it_sends_nothing(tmp_path):
    """The app killed (a crash, a logout) during a stretch the run sends nothing: the child
    used to train on for nobody and could write over a run the next launch resumed."""
    app = subprocess.Popen([sys.executable, "-c", APP], cwd=ROOT, stdout=subprocess.PIPE,
                           text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    child = int(app.stdout.readline())
    app.send_signal(signal.SIGKILL)
    app.wait()
    deadline = time.monotonic() + 20
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not gone(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the training process outlived the app")


def test_a_child_gone_before_its_job_is_said_as_such():
    """Killed (out of memory, say) while importing: the socket reset was reported as
    "[Errno 104] Connection reset by peer" instead of the process having ended."""
    import threading
    child = ChildProcess(("keras",), name="training")  # seconds of importing: the job waits
    threading.Timer(0.5, child.process.kill).start()  # killed after the job was sent to it
    with pytest.raises(ChildDied, match="training process ended unexpectedly"):
        child.run(silent_job, (0,), Recorder())


def test_a_child_that_does_not_stop_after_stop_is_ended(monkeypatch):
    monkeypatch.setattr(isolated, "STOP_GRACE_S", 1.0)
    flag = CancelFlag()
    reporter = Recorder(flag)
    flag.set()  # Stop, and the job never looks (hung in native code, say)
    started = time.monotonic()
    with pytest.raises(ChildDied, match="did not answer Stop within 1 s"):
        ChildProcess(CHEAP, name="training").run(silent_job, (300,), reporter)
    assert time.monotonic() - started < 150  # ended at Stop, not after the job's 300 s (a bound
    # that only waiting the job out reaches: starting a child takes seconds on a busy machine)


def test_what_a_child_says_before_it_dies_is_in_its_log_and_its_death_message():
    with pytest.raises(ChildDied, match="signal 6.*its log .* ends: .*(Fatal Python error|"
                                        "Current thread|File)"):
        ChildProcess(CHEAP, name="training").run(aborting_job, (), Recorder())
    text = (user_log_dir() / CHILD_LOG).read_text(errors="replace")
    assert "Fatal Python error: Aborted" in text and "aborting_job" in text
