"""The callbacks a training run uses, its per-epoch history, and where a backup left off."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .checkpoints import atomic_write_bytes
from .reporting import Reporter


def make_callbacks(reporter: Reporter, steps: int, n_train: int, config, on_best,
                   history: "RunHistory", has_val: bool):
    """Progress/pause/cancel, NaN stop, best-so-far checkpoint (``on_best``) and early stopping.

    Returns the callbacks and the progress callback, whose ``stopped`` says the user stopped."""
    import keras

    class Progress(keras.callbacks.Callback):
        """Reports batch losses and epoch metrics, pauses when asked, and turns a cancel request
        into a clean stop at the next batch boundary (validation included)."""

        def on_train_begin(self, logs=None):
            self.t0 = None  # the rate's clock: from the end of the run's first batch, whose
            self.paused_s = 0.0  # one-time start-up (tracing) would inflate every estimate
            self.seen = 0
            self.done_at_t0 = 0.0
            self.stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.te = time.perf_counter()
            self.epoch_paused = 0.0

        def on_train_batch_end(self, batch, logs=None):
            done = (self.epoch * steps + batch + 1) / (config.epochs * steps)
            rate = eta = float("nan")  # "estimating" until a batch after the first has run
            if self.t0 is None:
                self.t0, self.done_at_t0 = time.perf_counter(), done
            else:
                self.seen += min(config.batch_size, n_train - batch * config.batch_size)
                # (nothing is paused before t0: it is set before the first batch's pause point)
                active = max(time.perf_counter() - self.t0 - self.paused_s, 1e-9)
                rate = self.seen / active
                eta = active * (1 - done) / (done - self.done_at_t0)
            reporter.partial({"kind": "batch", "epoch": self.epoch + 1, "epochs": config.epochs,
                              "batch": batch + 1, "steps": steps, "step": self.epoch * steps + batch + 1,
                              "loss": float(logs.get("loss", float("nan"))),
                              "images_per_s": rate, "eta_s": eta})
            reporter.progress(done)
            if reporter.paused():  # held here, after this batch's report: "held" says so
                reporter.partial({"kind": "held", "epoch": self.epoch + 1, "batch": batch + 1})
                waited = reporter.pause_point()  # returns at once when cancelled
                self.paused_s += waited
                self.epoch_paused += waited
            if reporter.cancelled():
                self.stopped = True
                self.model.stop_training = True

        def finished(self, logs) -> bool:
            """Whether the epoch ending with ``logs`` finished whole: not cut short by Stop,
            its loss finite. Only such an epoch is saved, backed up or averaged."""
            loss = (logs or {}).get("loss")
            return not self.stopped and loss is not None and math.isfinite(float(loss))

        def on_test_batch_end(self, batch, logs=None):
            if reporter.cancelled():
                self.stopped = True
                self.model.stop_evaluating = True
                self.model.stop_training = True  # else the next epoch trains a batch first

        def on_epoch_end(self, epoch, logs=None):
            if self.stopped:
                return  # a partial epoch: its numbers would mislead
            logs = {k: float(v) for k, v in (logs or {}).items()}
            secs = time.perf_counter() - self.te - self.epoch_paused
            reporter.partial({"kind": "epoch", "epoch": epoch + 1, "epochs": config.epochs,
                              "step": (epoch + 1) * steps, "seconds": secs, **logs})
            judged = (f"val_loss {logs['val_loss']:.4f}  val_acc {logs.get('val_accuracy', 0):.4f}"
                      if "val_loss" in logs else  # (0.0000 read as a model always wrong)
                      f"train_acc {logs.get('accuracy', 0):.4f}, no validation images")
            reporter.progress((epoch + 1) / config.epochs,
                              f"epoch {epoch + 1}/{config.epochs}  loss {logs.get('loss', 0):.4f}  "
                              f"{judged}  {secs:.1f}s")

    class KeepBest(keras.callbacks.Callback):
        """Calls ``on_best`` whenever validation accuracy improves (the best-so-far checkpoint);
        with no validation images, after every whole epoch: the schedule's latest is the one
        to keep (training accuracy is measured on augmented images while the weights move, and
        it stalls at 100 % on small data, which kept the first epoch that reached it)."""

        def __init__(self):
            super().__init__()
            # a resumed run whose checkpoint is gone (renamed, deleted) saves its next epoch
            self.best = (history.best("val_accuracy" if has_val else "accuracy")
                         if history.out.is_file() else -1.0)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            acc = float(logs.get("val_accuracy", logs.get("accuracy", -1)))
            if (acc > self.best or not has_val) and progress.finished(logs):
                self.best = acc
                on_best(self.model, epoch + 1, acc)

    class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
        """Keras's early stopping, counting on across a resume: its best epoch and the epochs
        waited since come from the run's history instead of starting again."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            past = history.data.get(self.monitor, [])
            seen = [(value, -i) for i, value in enumerate(past) if value is not None]
            if seen:
                self.best, first = max(seen)
                self.best_epoch, self.wait = -first, len(past) - 1 + first

    progress = Progress()
    callbacks = [progress, keras.callbacks.TerminateOnNaN(), KeepBest()]
    if config.lookahead:
        state = history.backup / "lookahead.npz" if history.backup is not None else None
        callbacks.insert(0, Lookahead(config.lookahead, config.lookahead_decay, progress,
                                      steps * config.epochs, state))
    if config.patience and has_val:
        callbacks.append(ResumedEarlyStopping("val_accuracy", patience=config.patience,
                                              mode="max"))
    return callbacks, progress


def Lookahead(every: int, decay: float, progress, total_steps: int, state: Path | None = None):
    """airbench's lookahead, as a Keras callback: every ``every`` steps the weights (batch norm
    statistics included) move into an exponential average of themselves and are replaced by it.
    The average's decay per sync is ``decay ** every`` times the run's progress cubed, so early
    training is not held back and late training is smoothed; the last step leaves the average.

    With ``state`` (a file in the run's backup folder) the average is kept at every epoch's end,
    and a resumed run goes on with it: the same weights as a run never interrupted. It starts
    at the first batch, after a backup's weights and step count are restored."""
    import io

    import keras
    import numpy as np

    class _Lookahead(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.average = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.average is None:
                self.variables = [v for v in self.model.weights if "float" in str(v.dtype)]
                self.step = int(self.model.optimizer.iterations.numpy())
                self.average = self._stored() or [np.array(v.numpy()) for v in self.variables]

        def _stored(self):
            """The average this run kept at the epoch its backup resumes from, if it did."""
            if state is None or not self.step:
                return None
            try:
                # read whole first: np.load leaves the file open when it is no zip archive
                with np.load(io.BytesIO(state.read_bytes()), allow_pickle=False) as saved:
                    average = [saved[f"a{i}"] for i in range(len(self.variables))]
                    if int(saved["step"]) != self.step:
                        return None  # kept for another epoch than the backup's
            except Exception:  # noqa: BLE001 - damaged on disk (EOFError, BadZipFile...): start anew
                return None
            shapes = [tuple(v.shape) for v in self.variables]
            return average if [a.shape for a in average] == shapes else None

        def on_epoch_end(self, epoch, logs=None):
            if not progress.finished(logs):
                return  # an epoch the backup does not keep: nor its average
            if state is not None and self.average is not None:
                buffer = io.BytesIO()
                np.savez(buffer, step=self.step,
                         **{f"a{i}": a for i, a in enumerate(self.average)})
                atomic_write_bytes(state, buffer.getvalue())

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.step % every and self.step < total_steps:
                return
            d = decay ** every * min(self.step / total_steps, 1.0) ** 3
            for v, avg in zip(self.variables, self.average):
                avg *= d
                avg += (1 - d) * v.numpy()
                v.assign(avg)

    return _Lookahead()


class RunHistory:
    """Per-epoch metrics, kept in the backup folder (so a resumed run has its whole curve and
    wall time) and written next to the checkpoint as ``NAME.history.json`` and ``.history.csv``.
    Non-finite values (a diverged loss) are stored as None, keeping the files valid JSON."""

    def __init__(self, out: Path, backup_dir: Path | None, first_epoch: int):
        self.out, self.backup = out, backup_dir
        self.data: dict[str, list] = {}
        self.wall_s = 0.0  # wall time of the epochs before a resume
        if backup_dir is not None and first_epoch:
            try:
                stored = json.loads((backup_dir / "history.json").read_text())
                self.data = {k: list(v)[:first_epoch] for k, v in stored["history"].items()}
                self.wall_s = float(stored["wall_time_s"])
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.data, self.wall_s = {}, 0.0

    def add(self, logs: dict, wall_s: float) -> None:
        if not logs or "loss" not in logs:
            return
        for key, value in logs.items():
            value = float(value)
            self.data.setdefault(key, []).append(value if math.isfinite(value) else None)
        if self.backup is not None:
            atomic_write_bytes(self.backup / "history.json",
                               json.dumps({"history": self.data, "wall_time_s": wall_s}).encode())

    def best(self, key: str) -> float:
        return max((v for v in self.data.get(key, []) if v is not None), default=-1.0)

    def diverged(self) -> bool:
        return bool(self.data.get("loss")) and self.data["loss"][-1] is None

    def write(self) -> None:
        keys = sorted(self.data)
        rows = ["epoch," + ",".join(keys)]
        for i in range(max((len(v) for v in self.data.values()), default=0)):
            cells = [self.data[k][i] if i < len(self.data[k]) else None for k in keys]
            rows.append(",".join([str(i + 1)] + ["" if c is None else repr(c) for c in cells]))
        stem = self.out.with_suffix("")
        atomic_write_bytes(Path(f"{stem}.history.json"), json.dumps(self.data, indent=1).encode())
        atomic_write_bytes(Path(f"{stem}.history.csv"), ("\n".join(rows) + "\n").encode())
