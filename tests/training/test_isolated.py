"""A job run in a child process behaves for its caller like the same job run in-process: its
progress and partial results arrive, Stop and Pause reach it, its exception comes back as itself,
and a child that dies says so instead of hanging the caller."""
import os
import re
import signal
import threading
import time

import pytest

from training.isolated import ChildDied, ChildProcess
from training.reporting import CancelFlag, SilentReporter


class Recorder(SilentReporter):
    def __init__(self, cancel=None):
        super().__init__(cancel)
        self.messages, self.partials = [], []
        self.held, self.stepping = threading.Event(), threading.Event()
        self.sent_after_held = threading.Event()

    def progress(self, fraction, message=""):
        self.messages.append((fraction, message))

    def partial(self, payload):
        if payload == "held":  # the job says it is paused now
            self.held.set()
        else:
            if self.held.is_set():  # (all sent before "held" arrived before it: one pipe)
                self.sent_after_held.set()
            self.partials.append(payload)
            if len(self.partials) == 3:
                self.stepping.set()


class Refused(Exception):
    pass


def counting_job(n, reporter):
    for i in range(n):
        reporter.partial({"i": i, "pid": os.getpid()})
        reporter.progress((i + 1) / n, f"step {i + 1}")
    return {"sum": sum(range(n)), "pid": os.getpid()}


def job_until_cancelled(reporter):
    steps, waited = 0, 0.0
    while not reporter.cancelled():
        if reporter.paused():
            reporter.partial("held")  # what training's callback does before it waits
            waited += reporter.pause_point()
        steps += 1
        reporter.partial(steps)
        time.sleep(0.005)  # a step's work
    raise Refused(f"stopped after {steps} steps, paused {waited:.2f} s")


def failing_job(reporter):
    raise Refused("the data changed since this run started")


def unpicklable_failure(reporter):
    class Local(Exception):  # a class pickle cannot find by name
        pass
    raise Local("made inside the job")


def dying_job(reporter):
    reporter.progress(0.5, "about to die")
    os.kill(os.getpid(), signal.SIGKILL)


CHEAP = ("training.reporting",)  # what the child imports ahead of its job (not TensorFlow here)


def test_the_result_progress_and_partials_come_back_from_another_process():
    reporter = Recorder()
    result = ChildProcess(CHEAP).run(counting_job, (5,), reporter)
    assert result["sum"] == 10 and result["pid"] != os.getpid()
    assert [p["i"] for p in reporter.partials] == [0, 1, 2, 3, 4]
    assert reporter.messages[-1] == (1.0, "step 5")


def test_the_jobs_own_exception_comes_back_and_an_unpicklable_one_as_its_message():
    with pytest.raises(Refused, match="the data changed"):
        ChildProcess(CHEAP).run(failing_job, (), Recorder())
    with pytest.raises(RuntimeError, match="made inside the job"):
        ChildProcess(CHEAP).run(unpicklable_failure, (), Recorder())


def test_pause_holds_the_child_and_cancel_stops_it():
    flag = CancelFlag()
    reporter = Recorder(flag)
    outcome = {}

    def run():
        try:
            ChildProcess(CHEAP).run(job_until_cancelled, (), reporter)
        except Refused as exc:
            outcome["message"] = str(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert reporter.stepping.wait(60)  # it runs
    flag.pause()
    assert reporter.held.wait(60)  # it waits now; all it sent before that has arrived
    held = len(reporter.partials)
    # a paused job sends nothing (a step is 5 ms): only a step sent after "held" ends this wait
    quiet = not reporter.sent_after_held.wait(0.5)
    flag.set()  # cancel (also wakes a paused job)
    worker.join(60)
    assert quiet and not worker.is_alive()
    # the step the pause caught finishes once cancel wakes it; the job was held all along
    steps, waited = re.match(r"stopped after (\d+) steps, paused ([\d.]+) s",
                             outcome["message"]).groups()
    assert int(steps) in (held, held + 1) and float(waited) > 0


def test_a_child_that_dies_is_reported_not_waited_on_forever():
    reporter = Recorder()
    with pytest.raises(ChildDied, match="ended unexpectedly \\(signal 9\\)"):
        ChildProcess(CHEAP, name="training").run(dying_job, (), reporter)
    assert reporter.messages == [(0.5, "about to die")]


def test_a_prepared_child_that_gets_no_job_ends_when_closed():
    child = ChildProcess(CHEAP)
    assert child.alive()
    child.close()
    assert not child.alive()
