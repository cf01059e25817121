"""Training: a plain function over an in-memory image set, reporting through a small object.

``train`` reads top to bottom: split, build (or start from a parent), compile with one-cycle
Nesterov SGD and label smoothing, fit with small callbacks (progress and cancel, NaN stop, best
checkpoint, resumable backup), then save the best weights as a float32 checkpoint with its sidecar.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .checkpoints import CheckpointInfo, save_checkpoint
from .data import ImageSet, split
from .preprocessing import Preprocessing
from .reporting import Reporter, SilentReporter


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (units in comments)."""

    epochs: int = 10               # passes over the training split
    batch_size: int = 512          # images per optimiser step
    lr: float = 0.2                # peak learning rate (SGD, per step) of the warm-up/cosine cycle
    warmup: float = 0.15           # fraction of all steps spent warming up linearly
    momentum: float = 0.9          # Nesterov momentum
    # Keras applies weight decay decoupled (w -= lr * wd * w, outside momentum), so 5e-3 here is
    # about the usual PyTorch-style 5e-4, which momentum 0.9 amplifies tenfold.
    weight_decay: float = 5e-3     # decoupled weight decay, multiplied by the learning rate
    label_smoothing: float = 0.2   # probability mass spread over the other classes
    val_fraction: float = 0.1      # share of labelled images held out for validation
    flip: bool = True              # random horizontal flips
    translate: int = 2             # random shift of up to this many pixels (reflect padding)
    cutout: int = 0                # side of a random square set to grey, pixels; 0 = off
    widths: tuple[int, int, int] = (64, 256, 256)  # channels of the three conv groups
    stem: int = 32                 # channels of the first convolution
    residual: bool = False         # residual pair of convs in each group (ResNet-9 shape)
    seed: int = 0                  # seeds the split, the initialisation and the augmentation
    precision: str = "auto"        # "auto", "float32" or "mixed_bfloat16"
    patience: int = 0              # early stopping on validation accuracy, epochs; 0 = off
    tta: bool = True               # predict with horizontal-flip test-time augmentation

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "widths" in known:
            known["widths"] = tuple(known["widths"])
        return cls(**known)


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    info: CheckpointInfo
    stopped_early: bool


def augment(images: np.ndarray, rng: np.random.Generator, flip: bool, translate: int,
            cutout: int = 0) -> np.ndarray:
    """Random flips, shifts of up to ``translate`` px and ``cutout`` squares, vectorised."""
    out = images.copy()
    if flip:
        mask = rng.random(len(out)) < 0.5
        out[mask] = out[mask, :, ::-1]
    if translate > 0:
        t = translate
        padded = np.pad(out, ((0, 0), (t, t), (t, t), (0, 0)), mode="reflect")
        h, w = images.shape[1:3]
        dy = rng.integers(0, 2 * t + 1, len(out))
        dx = rng.integers(0, 2 * t + 1, len(out))
        for oy in range(2 * t + 1):
            for ox in range(2 * t + 1):
                sel = np.flatnonzero((dy == oy) & (dx == ox))
                if len(sel):
                    out[sel] = padded[sel, oy:oy + h, ox:ox + w]
    if cutout > 0:
        h, w = images.shape[1:3]
        cy = rng.integers(0, h, len(out))[:, None]
        cx = rng.integers(0, w, len(out))[:, None]
        rows = np.abs(np.arange(h)[None, :] - cy) <= cutout // 2
        cols = np.abs(np.arange(w)[None, :] - cx) <= cutout // 2
        out[rows[:, :, None] & cols[:, None, :]] = 128
    return out


def _batches(x, y, num_classes, config: TrainConfig, seed: int):
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        """Shuffled, freshly augmented batches each epoch; labels one-hot for label smoothing."""

        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(x) / config.batch_size)

        def on_epoch_end(self):
            order = self.rng.permutation(len(x))
            self.xs = augment(x[order], self.rng, config.flip, config.translate, config.cutout)
            self.ys = np.eye(num_classes, dtype=np.float32)[y[order]]

        def __getitem__(self, i):
            s = slice(i * config.batch_size, (i + 1) * config.batch_size)
            return self.xs[s].astype(np.float32), self.ys[s]

    return AugmentedBatches()


def _callbacks(reporter: Reporter, steps: int, config: TrainConfig, backup_dir, on_best):
    import keras

    class Progress(keras.callbacks.Callback):
        """Reports batch losses and epoch metrics; turns a cancel request into a clean stop."""

        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()
            self.seen = 0
            self.stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.te = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seen += config.batch_size
            rate = self.seen / max(time.perf_counter() - self.t0, 1e-9)
            done = (self.epoch * steps + batch + 1) / (config.epochs * steps)
            reporter.partial({"kind": "batch", "epoch": self.epoch, "batch": batch + 1,
                              "steps": steps, "loss": float(logs.get("loss", float("nan"))),
                              "images_per_s": rate})
            reporter.progress(done)
            if reporter.cancelled():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            secs = time.perf_counter() - self.te
            reporter.partial({"kind": "epoch", "epoch": epoch + 1, "seconds": secs, **logs})
            reporter.progress((epoch + 1) / config.epochs,
                              f"epoch {epoch + 1}/{config.epochs}  loss {logs.get('loss', 0):.4f}  "
                              f"val_loss {logs.get('val_loss', 0):.4f}  "
                              f"val_acc {logs.get('val_accuracy', 0):.4f}  {secs:.1f}s")

    class KeepBest(keras.callbacks.Callback):
        """Calls ``on_best`` whenever validation accuracy improves (the best-so-far checkpoint)."""

        best = -1.0

        def on_epoch_end(self, epoch, logs=None):
            acc = float((logs or {}).get("val_accuracy", -1))
            if acc > self.best and math.isfinite(float((logs or {}).get("loss", "nan"))):
                self.best = acc
                on_best(self.model, epoch + 1, acc)

    progress = Progress()
    callbacks = [progress, keras.callbacks.TerminateOnNaN(), KeepBest()]
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience,
                                                       mode="max"))
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=True))
    return callbacks, progress


def train(data: ImageSet, config: TrainConfig, out: str | Path, reporter: Reporter | None = None,
          parent: str | Path | None = None, backup_dir: str | Path | None = None,
          command: str = "", preprocessing: Preprocessing = Preprocessing()) -> TrainResult:
    """Train a classifier on ``data`` and save the best epoch as checkpoint ``out`` (.keras).

    Args:
        parent: checkpoint to start from (its backbone is reused; its head too when the classes
            are the same), or None to train from scratch.
        backup_dir: folder for Keras ``BackupAndRestore``: a killed run resumes from its last
            completed epoch when called again with the same folder.
    """
    import keras

    from .hardware import compute_dtype
    from .model import build_model

    reporter = reporter or SilentReporter()
    keras.utils.set_random_seed(config.seed)
    train_set, val_set = split(data, config.val_fraction, config.seed)
    n_classes = len(data.class_names)
    dtype = compute_dtype(config.precision)
    model = build_model(n_classes, config.widths, config.stem, data.images.shape[1:], dtype,
                        config.residual)
    parent_info = _start_from(model, parent) if parent else None
    steps = math.ceil(len(train_set) / config.batch_size)
    total = steps * config.epochs
    warm = max(1, int(total * config.warmup))
    schedule = keras.optimizers.schedules.CosineDecay(
        config.lr * 0.1, max(total - warm, 1), alpha=0.0, warmup_target=config.lr, warmup_steps=warm)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True,
                                       weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"])
    tta = "hflip" if config.tta else "none"
    base = dict(class_names=data.class_names, input_shape=tuple(data.images.shape[1:]),
                preprocessing=preprocessing, tta=tta, data_fingerprint=data.fingerprint(),
                config={**config.to_dict(), "precision_used": dtype}, seed=config.seed,
                parent=str(parent) if parent else None, command=command)
    history: dict[str, list] = {}
    t0 = time.perf_counter()

    def save_best(trained, epoch, val_acc):
        clean = build_model(n_classes, config.widths, config.stem, data.images.shape[1:], "float32",
                            config.residual)
        clean.set_weights(trained.get_weights())
        metrics = {"val_accuracy": val_acc, "best_epoch": epoch,
                   "train_images": len(train_set), "val_images": len(val_set)}
        info = CheckpointInfo(**{**base, "config": {**base["config"],
                                                    "wall_time_s": time.perf_counter() - t0}},
                              metrics=metrics, history=dict(history))
        save_checkpoint(clean, info, out)

    callbacks, progress = _callbacks(reporter, steps, config, backup_dir, save_best)
    callbacks.insert(0, keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: [
        history.setdefault(k, []).append(float(v)) for k, v in (logs or {}).items()]))
    val_x = val_set.images.astype(np.float32)
    val_y = np.eye(n_classes, dtype=np.float32)[val_set.labels]
    model.fit(_batches(train_set.images, train_set.labels, n_classes, config, config.seed),
              epochs=config.epochs, validation_data=(val_x, val_y) if len(val_set) else None,
              batch_size=config.batch_size, callbacks=callbacks, verbose=0)
    from .checkpoints import load_checkpoint
    if not Path(out).is_file():
        raise RuntimeError("training produced no usable epoch (loss was NaN from the start?)")
    best, info = load_checkpoint(out)
    from .predict import probabilities
    wall = time.perf_counter() - t0
    metrics = dict(info.metrics)
    if len(val_set):
        probs = probabilities(best, val_set.images, tta)
        metrics["val_accuracy_tta" if config.tta else "val_accuracy"] = float(
            np.mean(probs.argmax(1) == val_set.labels))
    info = replace(info, metrics=metrics, history=history,
                   config={**info.config, "wall_time_s": wall, "epochs_run": len(history.get("loss", []))},
                   parent=parent_info.name if parent_info else info.parent)
    save_checkpoint(best, info, out)
    return TrainResult(Path(out), info, progress.stopped)


def _start_from(model, parent):
    """Copy weights from ``parent`` into ``model`` where layer names and shapes match."""
    from .checkpoints import load_checkpoint

    source, info = load_checkpoint(parent)
    by_name = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        other = by_name.get(layer.name)
        if other is None:
            continue
        weights = other.get_weights()
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
    return info
