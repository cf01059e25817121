"""A training run's record (training.runs): a run that ends before it finishes (a full disk,
Ctrl+C, the app gone) is offered for resumption from its last epoch; one that would only fail
again is not; whether the process that ran it is still alive (a reused pid, Windows)."""
from pathlib import Path

import pytest

from training.train import Cancelled

from .test_train import TINY, RecordingReporter, colour_set


class FailInEpoch2(RecordingReporter):
    """Raises ``error`` at the first batch of epoch 2, after epoch 1's backup was written."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def partial(self, payload):
        super().partial(payload)
        if payload["kind"] == "batch" and payload["epoch"] == 2:
            raise self.error


def run_failing_in_epoch_2(tmp_path, error, name="run"):
    """A run record whose training raised ``error`` in epoch 2."""
    from training import runs
    record = runs.new_run("colours", tmp_path / f"{name}.keras", TINY.to_dict(),
                          root=tmp_path / "runs")
    with pytest.raises(type(error)):
        runs.run_training(record, colour_set(), FailInEpoch2(error))
    return record


def test_a_run_that_fails_after_an_epoch_can_be_resumed_from_it(tmp_path):
    """An error mid-run (a full disk, say) keeps the run's backup, as a crash does: the app
    offers to resume it instead of starting over."""
    from training import runs
    record = run_failing_in_epoch_2(tmp_path, OSError(28, "No space left on device"))
    [left] = runs.unfinished_runs(tmp_path / "runs")
    assert left.id == record.id and left.completed_epochs() == 1
    # failing before any epoch finished leaves nothing to resume
    early = runs.new_run("colours", tmp_path / "early.keras", TINY.to_dict(), root=tmp_path / "runs")

    class FailAtOnce(RecordingReporter):
        def partial(self, payload):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        runs.run_training(early, colour_set(), FailAtOnce())
    assert [r.id for r in runs.unfinished_runs(tmp_path / "runs")] == [record.id]


def test_a_run_that_fails_in_a_way_that_would_repeat_is_not_offered_for_resumption(tmp_path):
    from training import runs
    record = run_failing_in_epoch_2(
        tmp_path, RuntimeError("a bug, or a loss that is NaN: resuming would only repeat it"))
    assert runs.unfinished_runs(tmp_path / "runs") == []
    assert runs.read_run(Path(record.folder)).status == runs.FAILED


def test_stopping_a_resumed_run_before_it_trains_again_keeps_it_resumable(tmp_path):
    from training import runs
    record = run_failing_in_epoch_2(tmp_path, OSError(28, "No space left on device"))
    [left] = runs.unfinished_runs(tmp_path / "runs")
    stopped = RecordingReporter()
    stopped.cancel.set()  # Resume, then Stop while TensorFlow loads
    with pytest.raises(Cancelled):
        runs.run_training(runs.claim(left), colour_set(), stopped)
    [again] = runs.unfinished_runs(tmp_path / "runs")
    assert again.id == record.id and again.completed_epochs() == 1


@pytest.mark.parametrize("handle, error, wait, alive", [
    (0, 87, None, False),  # ERROR_INVALID_PARAMETER: no such process
    (0, 5, None, True),  # ERROR_ACCESS_DENIED: it runs, as another user
    (7, 0, 0x102, True),  # WAIT_TIMEOUT: still running
    (7, 0, 0, False),  # signalled: it has exited (its handle lingers while someone holds it)
])
def test_on_windows_a_run_is_alive_while_its_process_is(monkeypatch, handle, error, wait, alive):
    """The Windows branch of the liveness check, against a stand-in for kernel32 (these tests
    run on Linux): os.kill(pid, 0) there would send Ctrl+C instead of asking."""
    import ctypes
    from types import SimpleNamespace

    from training import processes
    closed = []
    kernel32 = SimpleNamespace(OpenProcess=lambda access, inherit, pid: handle,
                               GetLastError=lambda: error,
                               WaitForSingleObject=lambda h, ms: wait,
                               CloseHandle=closed.append)
    monkeypatch.setattr(ctypes, "windll", SimpleNamespace(kernel32=kernel32), raising=False)
    monkeypatch.setattr(processes.os, "name", "nt")
    assert processes.alive(4242) is alive
    assert closed == ([handle] if handle else [])  # every handle opened is closed


@pytest.mark.parametrize("handle, ok, started", [
    (7, 1, "created:133456789012345678"),  # the process's creation time (a FILETIME)
    (7, 0, ""),  # GetProcessTimes failed: unknown
    (0, None, ""),  # no such process (or not ours to ask)
])
def test_on_windows_a_process_is_known_by_its_creation_time(monkeypatch, handle, ok, started):
    """Windows reuses process numbers: a run's pid naming some other live process hid the run
    from the resume offer for as long as that process lived (only Linux recorded a start)."""
    import ctypes
    from types import SimpleNamespace

    from training import processes
    closed = []

    def times(h, created, exited, kernel, user):
        created._obj.value = 133456789012345678
        return ok

    kernel32 = SimpleNamespace(OpenProcess=lambda access, inherit, pid: handle,
                               GetProcessTimes=times, CloseHandle=closed.append)
    monkeypatch.setattr(ctypes, "windll", SimpleNamespace(kernel32=kernel32), raising=False)
    monkeypatch.setattr(processes.os, "name", "nt")
    assert processes.process_started(4242) == started
    assert closed == ([handle] if handle else [])


def test_on_macos_a_process_is_known_by_its_start_time(monkeypatch):
    """No /proc there: ``ps`` gives the start, to the second ("" for a process that is gone)."""
    import os

    from training import processes

    def no_proc(*args):
        raise OSError("no /proc")
    monkeypatch.setattr(processes, "Path", no_proc)
    monkeypatch.setattr(processes.sys, "platform", "darwin")
    mine = processes.process_started(os.getpid())
    assert mine.startswith("ps:") and mine == processes.process_started(os.getpid())
    gone = 2 ** 22 + 12345  # beyond Linux's pid range
    assert processes.process_started(gone) == ""
    monkeypatch.setenv("TZ", "EST5")  # the laptop changed time zone: still the same process
    assert processes.process_started(os.getpid()) == mine
    other = os.getppid()  # alive: the same start is that process, another is a reused number
    assert processes.same_process_alive(other, processes.process_started(other))
    assert not processes.same_process_alive(other, "ps:Mon Jan 1 00:00:00 2001")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit("the app has gone")])
def test_a_run_interrupted_after_an_epoch_stays_resumable(tmp_path, interrupt):
    """Ctrl+C in the app's terminal, or the app gone while the run was paused: the run is
    offered again at the next launch (it was marked failed and its backup deleted)."""
    from training import runs
    record = run_failing_in_epoch_2(tmp_path, interrupt)
    [left] = runs.unfinished_runs(tmp_path / "runs")
    assert left.id == record.id and left.completed_epochs() == 1


def test_a_run_whose_pid_now_names_another_process_is_offered_again(tmp_path):
    """After a power cut process numbers start again: the run's pid may name some other live
    process, which must not hide the run from the resume offer (Linux: its start is recorded)."""
    import os

    from training import runs
    record = run_failing_in_epoch_2(tmp_path, KeyboardInterrupt())
    other = os.getppid()  # alive, and not the process that ran it
    started = runs.process_started(other)
    assert started  # this test runs on Linux
    runs.update(record, pid=other, pid_started=started)  # still that process: not offered
    assert runs.unfinished_runs(tmp_path / "runs") == []
    runs.update(record, pid=other, pid_started="another boot:12345")  # the pid was reused
    assert [r.id for r in runs.unfinished_runs(tmp_path / "runs")] == [record.id]


def test_a_run_that_died_before_its_first_epoch_is_forgotten_not_kept_for_ever(tmp_path):
    """Nothing to resume from: its folder used to stay in the runs folder, never offered and
    never removed."""
    from training import runs
    record = runs.new_run("colours", tmp_path / "run.keras", {}, root=tmp_path / "runs")
    assert Path(record.folder).is_dir() and runs.unfinished_runs(tmp_path / "runs") == []
    assert Path(record.folder).is_dir()  # its process (this one) still runs: kept
    runs.update(record, pid=0, pid_started="")  # its process is gone
    assert runs.unfinished_runs(tmp_path / "runs") == []
    assert not Path(record.folder).exists()


# -- two copies of the app open on one data folder: both offer the same unfinished run ---------

def crashed(tmp_path, name="run"):
    """An unfinished run whose process is gone (what each copy of the app offers to resume)."""
    from training import runs
    record = runs.new_run("colours", tmp_path / f"{name}.keras", {}, root=tmp_path / "runs")
    return runs.update(record, pid=0, pid_started="")


CLAIMANT = """
import sys
from training import runs
record = runs.read_run(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
try:
    runs.claim(record)
    print("took it", flush=True)
except Exception as exc:
    print(f"refused: {exc}", flush=True)
sys.stdin.readline()  # alive until every copy has tried: a live process's claim holds
"""


def test_copies_of_the_app_clicking_resume_at_once_do_not_all_take_the_run(tmp_path):
    """Each read the record, found it free and wrote its own pid: every copy trained the run, into
    the same backup and checkpoint. One takes it; the others are told another window has it."""
    import subprocess
    import sys

    from training import runs
    record = crashed(tmp_path)
    root = Path(__file__).resolve().parents[2]
    copies = [subprocess.Popen([sys.executable, "-c", CLAIMANT, record.folder], cwd=root,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    try:
        assert [c.stdout.readline() for c in copies] == ["ready\n"] * 4
        for copy in copies:  # "go" to all of them, as near the same moment as can be
            copy.stdin.write("\n")
            copy.stdin.flush()
        said = sorted(c.stdout.readline().strip() for c in copies)
        owner = runs.read_run(Path(record.folder)).pid
    finally:
        for copy in copies:
            copy.communicate("\n", timeout=30)
    assert said == ["refused: this run was resumed in another Pixel Classifier window"] * 3 + \
        ["took it"]
    assert owner in [c.pid for c in copies]


def test_a_claim_waits_for_no_lock_whose_holder_died(tmp_path):
    """The lock a copy of the app holds while it takes a run refuses the others; one left by a
    process that died in those milliseconds does not keep the run from being resumed for ever."""
    import os
    import subprocess

    from training import runs
    record = crashed(tmp_path)
    lock = Path(record.folder) / ".claim.lock"
    other = os.getppid()  # alive, and not this process: another copy, taking the run now
    lock.write_text(f"{other} {runs.process_started(other)}")
    with pytest.raises(runs.RunUnavailable, match="resumed in another Pixel Classifier window"):
        runs.claim(record)
    assert runs.read_run(Path(record.folder)).pid == 0 and lock.exists()
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(f"{dead.pid} ")  # its holder is gone
    assert runs.claim(record).pid == os.getpid() == runs.read_run(Path(record.folder)).pid
    assert not lock.exists()
    runs.update(record, pid=0)
    lock.write_text("\u00b2 x")  # a damaged lock ("²" is a digit to str, not to int): a
    with pytest.raises(runs.RunUnavailable):  # fresh one is held, not a ValueError at the click
        runs.claim(record)


def test_a_run_another_copy_of_the_app_resumed_is_not_discarded_under_it(tmp_path):
    """Discard in one window deleted the backup another window was training from."""
    import os

    from training import runs
    record = crashed(tmp_path)
    other = os.getppid()
    runs.update(record, pid=other, pid_started=runs.process_started(other))  # resumed there
    with pytest.raises(runs.RunUnavailable, match="resumed in another Pixel Classifier window"):
        runs.discard_run(record)
    assert runs.read_run(Path(record.folder)).pid == other and record.backup_dir.is_dir()
    runs.update(record, pid=0, pid_started="")  # that window has gone: this one may discard it
    runs.discard_run(record)
    assert not list((tmp_path / "runs").iterdir())


def test_a_run_whose_folder_was_removed_meanwhile_still_ends_as_finished(tmp_path, monkeypatch,
                                                                         caplog):
    """Recording the end of the run raised FileNotFoundError, and a run whose checkpoint was
    saved was reported as failed."""
    import shutil
    from types import SimpleNamespace

    import training.train
    from training import runs
    record = runs.new_run("colours", tmp_path / "run.keras", {}, root=tmp_path / "runs")
    done = SimpleNamespace(stopped_early=False, checkpoint=tmp_path / "run.keras")

    def train_while_the_folder_goes(*args, **kwargs):
        shutil.rmtree(record.folder)  # by hand, or by a copy of the app older than this fix
        return done

    monkeypatch.setattr(training.train, "train", train_while_the_folder_goes)
    assert runs.run_training(record, SimpleNamespace(fingerprint=lambda: "f"), None) is done
    assert "was removed meanwhile" in caplog.text


def broken_records(root):
    """Run folders whose run.json is not a record the app wrote: damaged, cut short, edited by
    hand or by something hostile (each used to stop the app from starting, at every launch)."""
    import json
    good = {"id": "x", "data": "colours", "out": "x.keras", "config": {}, "status": "running",
            "pid": 0}
    texts = {
        "null": "null", "list": "[1, 2]", "deep": "[" * 100_000 + "]" * 100_000,
        "not-utf8": b"\xff\xfe{\x00".decode("latin-1"), "missing": '{"status": "running"}',
        "huge": json.dumps(good) + " " * (2 << 20),
        **{f"{key}-{i}": json.dumps({**good, key: value}) for i, (key, value) in enumerate([
            ("pid", "123"), ("pid", 2**70), ("pid", True), ("pid", -5), ("config", []),
            ("config", {"batch_size": "64"}), ("data", 5), ("parent", 7), ("out", "a\0b"),
            ("fine_tune", "everything"), ("created", None)])},
    }
    for name, text in texts.items():
        (root / name / "backup").mkdir(parents=True)
        (root / name / "run.json").write_bytes(text.encode("latin-1"))
    return sorted(texts)


def test_a_damaged_run_record_is_skipped_and_the_others_still_offered(tmp_path, caplog):
    """A run.json holding null, a list, a pid that is text or too large for os.kill, or JSON
    nested 100,000 deep raised from unfinished_runs: the window could not open, ever. Each is
    now skipped, left where it is and logged once; the good run beside them is offered."""
    import logging

    from training import processes, runs
    record = run_failing_in_epoch_2(tmp_path, KeyboardInterrupt())
    names = broken_records(tmp_path / "runs")
    with caplog.at_level(logging.WARNING, logger="training.runs"):
        for _ in range(2):  # (every launch and every refresh of the library reads them)
            assert [r.id for r in runs.unfinished_runs(tmp_path / "runs")] == [record.id]
            assert runs.runs_of_other_live_processes(tmp_path / "runs") == []
    warned = [r.getMessage() for r in caplog.records if "ignoring the run record" in r.message]
    assert sorted(m.split("/runs/")[1].split("/")[0] for m in warned) == names  # once each
    assert all(m.count("\n") == 0 for m in warned)
    assert all((tmp_path / "runs" / name / "run.json").is_file() for name in names)
    with pytest.raises(runs.RunUnavailable):  # a record that broke after it was offered
        runs.claim(replace_folder(record, tmp_path / "runs" / "list"))
    for pid in ("123", 2**70, -1, 2**31, None, 1.5):
        assert processes.alive(pid) is False
        assert processes.same_process_alive(pid, "") is False


def replace_folder(record, folder):
    from dataclasses import replace
    return replace(record, folder=str(folder))
