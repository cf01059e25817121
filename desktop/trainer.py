"""The training controller: reads and checks data, runs, pauses, stops and resumes training.

Everything slow happens on the "train" lane (a worker thread of its own, so drops and predictions
on the model lane keep working meanwhile); results come back as signals. Each run has a record in
the per-user data folder (``training.runs``) so that a run killed by a crash or power cut is
offered for resumption at the next launch.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from training import runs
from training.checkpoints import now_iso
from training.library import run_name
from training.paths import (cannot_write, release_checkpoint, reserve_checkpoint, user_cache_dir,
                            user_checkpoints_dir)
from training.preprocessing import Preprocessing

from .jobs import CANCELLED_BEFORE_START, Job, JobLane

log = logging.getLogger(__name__)


def load_and_check(path: str, policy: Preprocessing, val_fraction: float, seed: int, reporter,
                   more_seeds: tuple[int, ...] = ()):
    """Worker side of the data check: decode the data set once and describe it (hashing each
    image's draw under ``seed`` and ``more_seeds``, so the GUI can count any split under them)."""
    from training.data import load_labelled
    from training.splits import check_data

    data = load_labelled(path, "train", policy, reporter, cache_dir=user_cache_dir())
    return data, check_data(data, val_fraction, seed, more_seeds)


class TrainController(QObject):
    """Signals in plain terms; the panel shows them, the window decides what to do with results.

    Runs happen in a child process (``training.isolated``) so that each gives back its memory
    when it ends; ``isolate = False`` trains on the lane's thread instead (tests that patch Keras
    in this process use it).
    """

    isolate = True

    data_loading = Signal(str)
    data_checked = Signal(object, object)  # ImageSet, DataCheck
    data_failed = Signal(str)
    run_started = Signal(object)  # RunRecord
    progress = Signal(float, str)
    batch = Signal(dict)  # loss, images_per_s, eta_s, epoch, batch, steps, step
    epoch = Signal(dict)  # per-epoch logs: loss, val_loss, val_accuracy, ...
    resumed = Signal(dict)  # a resumed run's earlier history
    paused_changed = Signal(bool)
    held = Signal(dict)  # a paused run now waits (after batch "batch" of epoch "epoch")
    run_finished = Signal(object)  # TrainResult
    run_failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lane = JobLane("train", self)
        self.data = None
        self.data_path = ""
        self.data_policy: Preprocessing | None = None  # how the checked data was decoded
        self.job: Job | None = None
        self.check_job: Job | None = None
        self.record: runs.RunRecord | None = None
        self._child = None  # a training.isolated.ChildProcess, prepared during the data check
        self._fresh = False  # the run going is a new one (not a resumed one)
        self._closed = False  # shut down: a check finishing after that starts no process
        self._reserved: Path | None = None  # the default name the run going holds, till it ends

    # -- data ----------------------------------------------------------------------------------
    def check(self, path: str, policy: Preprocessing, val_fraction: float, seed: int = 0,
              more_seeds: tuple[int, ...] = ()) -> None:
        """Load ``path`` in the background and emit ``data_checked`` or ``data_failed``; the
        check can count splits under ``seed`` and ``more_seeds`` (a parent's split seed)."""
        if self.check_job is not None:
            self.check_job.cancel()
        self.data, self.data_path, self.data_policy = None, path, policy
        more = tuple(dict.fromkeys(s for s in more_seeds if s != seed))
        job = Job(lambda r: load_and_check(path, policy, val_fraction, seed, r, more),
                  "check data")
        job.progress.connect(lambda _f, text, job=job: text and job is self.check_job
                             and self.data_loading.emit(text))  # (not a replaced check's)
        job.finished.connect(lambda result, job=job: self._on_checked(job, path, result))
        job.failed.connect(lambda reason, job=job: job is self.check_job and self.data_failed.emit(reason))
        self.check_job = job
        self.data_loading.emit(f"Reading {Path(path).name}…")
        self.lane.submit(job)

    def _on_checked(self, job: Job, path: str, result) -> None:
        if job is not self.check_job or self._closed:
            return  # a newer check replaced this one, or the window closed meanwhile
        self.data, check = result
        if self.isolate and (self._child is None or not self._child.alive()):
            from training.isolated import ChildProcess  # not at launch: multiprocessing is 10 ms
            try:
                self._child = ChildProcess(name="training")  # imports TensorFlow while they look
            except OSError:  # no process to spare now: Start tries again and says why
                log.exception("could not start the training process ahead of time")
                self._child = None
        self.data_checked.emit(self.data, check)

    # -- runs ----------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.job is not None

    def start(self, config, parent: str | None, fine_tune: str = "full",
              out: Path | None = None) -> None:
        """Train on the checked data; ``config`` is a TrainConfig. The checkpoint goes to ``out``,
        by default a new file named after the data in the per-user checkpoints folder."""
        if self.data is None or self.running():
            return
        named = out is None
        if named:
            out = user_checkpoints_dir() / f"{run_name(self.data_path, now_iso())}.keras"
        if why := cannot_write(out):  # said now, not after a whole epoch was trained and lost
            self.run_failed.emit(f"cannot save the checkpoint: {why}")
            return
        try:
            if named:  # another copy of the app (or the command line) may name a run this second
                out = self._reserved = reserve_checkpoint(out)
            record = runs.new_run(self.data_path, out, config.to_dict(), parent, fine_tune)
        except OSError as exc:  # a full or read-only data folder: say so, start nothing
            self._release()
            self.run_failed.emit(f"cannot record the run in the data folder: {exc}")
            return
        self._submit(record, runs.run_training, (record, self.data))

    def claim(self, record: runs.RunRecord) -> runs.RunRecord | None:
        """Take an offered unfinished run for this window, as its run.json says now: raises
        runs.RunUnavailable when another copy of the app resumed or discarded it meanwhile;
        None (said by ``run_failed``) when the data folder cannot be written."""
        try:
            return runs.claim(record)
        except OSError as exc:
            self.run_failed.emit(f"cannot record the run in the data folder: {exc}")
            return None

    def resume(self, record: runs.RunRecord) -> None:
        """Carry on a run :meth:`claim` took from its last completed epoch (data is read
        again)."""
        if self.running():
            return
        self._submit(record, runs.resume_training, (record, user_cache_dir()))

    def _submit(self, record, fn, args: tuple) -> None:
        """Run ``fn(*args, reporter)`` on the train lane: in a child process of its own (the one
        prepared during the data check, if it is still there) unless ``isolate`` is off."""
        def work(reporter):
            if not self.isolate:
                return fn(*args, reporter=reporter)
            from training.isolated import ChildDied, ChildProcess

            reporter.progress(0.0, "Starting the training process…")
            child, self._child = self._child, None
            if child is None or not child.alive():
                child = ChildProcess(name="training")
            try:
                return child.run(fn, args, reporter)
            except ChildDied as exc:
                # The run's record still says "running", for a process that is gone: the window
                # offers to resume it from its last completed epoch, as after a crash of the app.
                current = runs.read_run(Path(record.folder))
                if current is not None and current.status == runs.RUNNING:
                    runs.update(current, pid=exc.pid or 0)
                raise

        self.record, self._fresh = record, fn is runs.run_training
        job = Job(work, "train")
        job.progress.connect(self.progress)
        job.partial.connect(self._on_partial)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        self.job = job
        self.lane.submit(job)
        self.run_started.emit(record)
        self.running_changed.emit(True)

    @Slot(object)
    def _on_partial(self, payload) -> None:
        kind = payload.get("kind")
        if kind == "batch":
            self.batch.emit(payload)
        elif kind == "epoch":
            self.epoch.emit(payload)
        elif kind == "resumed":
            self.resumed.emit(payload)
        elif kind == "held":
            self.held.emit(payload)

    def _end(self) -> None:
        self.job = None
        self._release()
        self.running_changed.emit(False)

    def _release(self) -> None:
        """Let go of the run's default name: its checkpoint holds it now, if it saved one."""
        if self._reserved is not None:
            release_checkpoint(self._reserved)
            self._reserved = None

    @Slot(object)
    def _on_finished(self, result) -> None:
        self._end()
        self.run_finished.emit(result)

    @Slot(str)
    def _on_failed(self, reason: str) -> None:
        self._end()
        if self._fresh and self.record is not None and reason == CANCELLED_BEFORE_START:
            with contextlib.suppress(runs.RunUnavailable, OSError):  # (removed by hand, say)
                runs.discard_run(self.record)  # Stop while it waited its turn: nothing trained
        if not self._fresh and self.record is not None:
            # a resumed run that failed or was stopped before it trained again (its data being
            # read again, say) is still claimed by this process: offer it again now
            current = runs.read_run(Path(self.record.folder))
            if current is not None and current.status == runs.RUNNING:
                runs.update(current, pid=0)
        if reason == CANCELLED_BEFORE_START:
            reason = "stopped before the first epoch began: nothing was trained"
        elif self.record is not None and Path(self.record.out).is_file():
            reason += f" (the best epoch so far is kept as {Path(self.record.out).stem})"
        self.run_failed.emit(reason)

    def pause(self) -> None:
        if self.job is not None:
            self.job.pause()
            self.paused_changed.emit(True)

    def unpause(self) -> None:
        if self.job is not None:
            self.job.resume()
            self.paused_changed.emit(False)

    def paused(self) -> bool:
        return self.job is not None and self.job.cancel_flag.paused()

    def stop(self) -> None:
        """Stop at the next batch; the best epoch so far is kept."""
        if self.job is not None:
            was_paused = self.job.cancel_flag.paused()
            self.job.cancel()
            if was_paused:  # cancelling ends the pause: the Pause button reads Pause again
                self.paused_changed.emit(False)

    @staticmethod
    def unfinished_runs() -> list[runs.RunRecord]:
        return runs.unfinished_runs()

    @staticmethod
    def discard(record: runs.RunRecord) -> None:
        """Forget an offered unfinished run; runs.RunUnavailable when another copy of the app
        resumed it meanwhile (it is kept) or discarded it already."""
        runs.discard_run(record)

    def shutdown(self, timeout_s: float = 60.0) -> bool:
        """Stop whatever runs (keeping the best epoch) and wait for the thread; end the prepared
        training process."""
        self._closed = True
        if self.job is not None:
            self.job.cancel()
        if self.check_job is not None:
            self.check_job.cancel()
            self.check_job = None
        stopped = self.lane.shutdown(timeout_s)
        if stopped:  # (its end is not delivered to a window that closed)
            self._release()
        child, self._child = self._child, None
        if child is not None:
            child.close()
        return stopped
