"""Training: a plain function over an in-memory image set, reporting through a small object.

``train`` reads top to bottom: split, build (or start from a parent), compile with Nesterov SGD
(``optim.py``) and label smoothing, fit with small callbacks (progress and cancel, NaN stop, best
checkpoint, resumable backup), then save the best weights as a float32 checkpoint with its sidecar.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .batches import training_batches
from .calibration import calibrate
from .backups import claim_backup, completed_epochs, finished_epochs_backup, repair_backup
from .callbacks import RunHistory, make_callbacks
from .checkpoints import CheckpointInfo, read_info, save_checkpoint
from .data import DataError, ImageSet
from .lineage import split_record, split_rule_for
from .splits import split
from .distill import teachers
from .model import architecture_of, copy_weights, network
from .optim import make_optimizer
from .preprocessing import Preprocessing
from .recipes import TrainConfig
from .reporting import Reporter, SilentReporter


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    info: CheckpointInfo
    stopped_early: bool


def train(data: ImageSet, config: TrainConfig, out: str | Path, reporter: Reporter | None = None,
          parent: str | Path | None = None, backup_dir: str | Path | None = None,
          command: str = "", preprocessing: Preprocessing = Preprocessing(),
          fine_tune: str = "full", tensorboard_dir: str | Path | None = None) -> TrainResult:
    """Train a classifier on ``data`` and save the best epoch as checkpoint ``out`` (.keras).

    Args:
        parent: checkpoint to start from, or None to train from scratch. The architecture comes
            from the parent; its weights are reused wherever shapes match, so with other classes
            the backbone is kept and a new head is trained (transfer learning).
        backup_dir: folder for Keras ``BackupAndRestore``: a killed run resumes from its last
            completed epoch when called again with the same folder and data.
        fine_tune: "full" trains every layer; "head" freezes the parent's backbone (batch norm
            included) and trains only the final layer.
        tensorboard_dir: also write TensorBoard logs there.

    A cancel through ``reporter`` stops at the next batch; the best epoch so far is kept. Loss
    that becomes NaN stops the run the same way, keeping the last good checkpoint. A fine-tune
    on its parent's data (same fingerprint) uses the parent's train/validation split. Flip TTA
    is recorded only for a network trained with flips.
    """
    import keras

    from .hardware import compute_dtype

    reporter = reporter or SilentReporter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_arguments(data, config, fine_tune)

    def stop_here_if_asked():  # the slow steps before fit (TensorFlow, loading, tracing)
        if reporter.cancelled():
            raise Cancelled("stopped before the first epoch began: nothing was trained")

    stop_here_if_asked()
    source, parent_info, config, preprocessing = _start(parent, data, config, preprocessing,
                                                        fine_tune)
    stop_here_if_asked()
    keras.utils.set_random_seed(config.seed)
    fingerprint = data.fingerprint()
    rule = split_rule_for(config, parent_info, fingerprint, backup_dir, config.teachers)
    train_set, val_set = split(data, **rule)
    if rule["fraction"] != config.val_fraction:  # said, not silently another share
        reporter.progress(0.0, f"validation share {rule['fraction']:g}, not {config.val_fraction:g}: "
                               "the share the checkpoint it starts from (or its teacher) held out, "
                               "so no image they trained on judges this run")
    dtype = compute_dtype(config.precision)
    model = _built(config, data.class_names, train_set, source, parent_info, fine_tune, dtype)
    del source
    teacher = teachers(config.teachers, data, preprocessing, val_set,
                       fingerprint) if config.teachers else None
    stop_here_if_asked()
    steps = math.ceil(len(train_set) / config.batch_size)
    model.compile(
        optimizer=make_optimizer(config, steps * config.epochs),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"])
    # flip TTA only for a network trained on mirrored images: with flips off (text, arrows,
    # left/right classes) a mirror image is another picture, and averaging it in would blur
    tta = "hflip" if config.tta and config.flip else "none"
    base = dict(class_names=data.class_names, input_shape=tuple(data.images.shape[1:]),
                preprocessing=preprocessing, tta=tta, data_fingerprint=fingerprint,
                data_source=data.source,
                config={**config.to_dict(), "precision_used": dtype,
                        "fine_tune": fine_tune,
                        "split": split_record(rule, config, parent_info, fingerprint,
                                               train_set)},
                # the parent's file name, as the library lists it (its sidecar may say an older)
                seed=config.seed, parent=Path(parent).stem if parent_info else None,
                parent_sha256=parent_info.model_sha256 if parent_info else "", command=command)
    backup, first_epoch = _open_backup(backup_dir, base, config, fine_tune, parent, out)
    history = RunHistory(out, backup, first_epoch)
    keeper = _BestKeeper(config, base, out, history, (len(train_set), len(val_set)))
    callbacks, progress = make_callbacks(reporter, steps, len(train_set), config, keeper.save,
                                         history, len(val_set) > 0)
    keeper.progress = progress
    # Order matters: the history entry exists before the best checkpoint is saved, and the
    # backup (weights, optimizer, epoch) is written last, once the epoch is fully accounted for.
    callbacks.insert(0, keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: None if progress.stopped else history.add(
            logs, keeper.wall_s())))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tensorboard_dir), update_freq="epoch"))
    if backup is not None:
        callbacks.append(finished_epochs_backup(backup, progress))
    if first_epoch:
        reporter.partial({"kind": "resumed", "epoch": first_epoch, "epochs": config.epochs,
                          "steps": steps, "history": dict(history.data)})
        reporter.progress(first_epoch / config.epochs,
                          f"resuming from epoch {first_epoch + 1}/{config.epochs}")
    n_classes = len(data.class_names)
    val_y = np.eye(n_classes, dtype=np.float32)[val_set.labels]
    stop_here_if_asked()
    model.fit(training_batches(train_set.images, train_set.labels, n_classes, config, first_epoch,
                               teacher),
              epochs=config.epochs,
              validation_data=(val_set.images.astype(np.float32), val_y) if len(val_set) else None,
              batch_size=config.batch_size, callbacks=callbacks, verbose=0,
              shuffle=False)  # the batches shuffle themselves, the same way on resume
    info = _finished(keeper, val_set, progress.stopped, first_epoch, reporter)
    stopped = info.config["stopped"] == "user"  # (a Stop after the last epoch's fit too)
    if backup is not None and not stopped:  # a stopped run may be resumed from it
        import shutil
        shutil.rmtree(backup, ignore_errors=True)
    return TrainResult(out, info, stopped or history.diverged())


def _check_arguments(data: ImageSet, config: TrainConfig, fine_tune: str) -> None:
    if fine_tune not in ("full", "head"):
        raise ValueError(f"fine_tune must be 'full' or 'head', not {fine_tune!r}")
    if not 0 <= config.distill <= 1:
        raise ValueError(f"distill must be between 0 and 1, not {config.distill}")
    if len(data.class_names) < 2 or len(np.unique(data.labels)) < 2:
        raise DataError("training needs images of at least two classes")
    if len(set(data.class_names)) != len(data.class_names):  # (its sidecar would be refused)
        raise DataError("two classes have the same name")


def _start(parent, data: ImageSet, config: TrainConfig, preprocessing: Preprocessing,
           fine_tune: str):
    """The parent's network and sidecar (None, None from scratch), and the config and
    preprocessing the run uses: a fine-tune keeps its parent's architecture and preparation."""
    from .checkpoints import load_checkpoint

    if not parent:
        if fine_tune == "head":
            raise ValueError("head-only training needs a checkpoint to start from")
        return None, None, config, preprocessing
    source, parent_info = load_checkpoint(parent)
    if tuple(parent_info.input_shape) != tuple(data.images.shape[1:]):
        raise DataError("the data's image size differs from the parent checkpoint's input")
    return (source, parent_info, replace(config, **architecture_of(source)),
            parent_info.preprocessing)


def _built(config: TrainConfig, class_names, train_set: ImageSet, source, parent_info,
           fine_tune: str, dtype: str):
    """The network to train: from scratch (whitening set from the training images, identity-
    started convolutions where asked) or with the parent's weights (its backbone frozen for a
    head-only fine-tune)."""
    from .model import dirac_init, whitening_kernel

    model = network(config, len(class_names), tuple(train_set.images.shape[1:]), dtype)
    if source is None:
        if config.whiten:
            model.get_layer("whiten_conv").set_weights(
                [whitening_kernel(train_set.images, seed=config.seed)])
        if config.dirac:
            dirac_init(model)
        return model
    copy_weights(source, model, parent_info.class_names, class_names)
    if fine_tune == "head":
        for layer in model.layers:
            layer.trainable = layer.name == "logits"
    return model


def _open_backup(backup_dir, base: dict, config: TrainConfig, fine_tune: str, parent, out: Path):
    """The run's backup folder (None without one) and the epochs it already holds: claimed by
    this run (another run's is refused untouched), then repaired where a crash left it split."""
    if backup_dir is None:
        return None, 0
    backup = Path(backup_dir)
    backup.mkdir(parents=True, exist_ok=True)
    claim_backup(backup, completed_epochs(backup), TrainConfig, {
        "data_fingerprint": base["data_fingerprint"], "config": config.to_dict(),
        "fine_tune": fine_tune, "parent": str(Path(parent).resolve()) if parent else None,
        "out": str(out.resolve()), "split_by": base["config"]["split"]["by"]})
    repair_backup(backup)
    return backup, completed_epochs(backup)


class _BestKeeper:
    """Saves the best epoch so far as the run's checkpoint (float32, with its sidecar), through
    one float32 twin of the network: each new Keras model costs memory."""

    def __init__(self, config: TrainConfig, base: dict, out: Path, history: RunHistory,
                 sizes: tuple[int, int]):
        self.config, self.base, self.out, self.history, self.sizes = config, base, out, history, sizes
        self.twin = None  # holds the best epoch's weights once one was saved
        self.t0, self.previous_wall = time.perf_counter(), history.wall_s
        self.progress = None  # the progress callback: what it held for Pause is not training

    def wall_s(self) -> float:
        """The run's training time, the epochs before a resume included, time paused left out
        (a lunch-long pause made the stored speed, and every later estimate, hours off)."""
        paused = self.progress.paused_s if self.progress is not None else 0.0
        return self.previous_wall + time.perf_counter() - self.t0 - paused

    def save(self, trained, epoch: int, val_acc: float) -> None:
        if self.twin is None:
            self.twin = network(self.config, len(self.base["class_names"]),
                                self.base["input_shape"], "float32")
        self.twin.set_weights(trained.get_weights())
        n_train, n_val = self.sizes
        metrics = {"val_accuracy" if n_val else "train_accuracy": val_acc, "best_epoch": epoch,
                   "train_images": n_train, "val_images": n_val}
        info = CheckpointInfo(**{**self.base, "config": {
            **self.base["config"], "wall_time_s": self.wall_s()}},
            metrics=metrics, history=dict(self.history.data))
        save_checkpoint(self.twin, info, self.out)


def _finished(keeper: _BestKeeper, val_set: ImageSet, stopped: bool, first_epoch: int,
              reporter: Reporter):
    """The run's checkpoint completed: its best epoch's accuracy with test-time augmentation,
    its calibration, whole history, wall time and how it ended. A Stop that comes after the
    last epoch's fit (the window closing as it ends, say) skips the first two, as one during
    the fit does, and is recorded the same way: stopped by the user."""
    from .checkpoints import load_checkpoint

    out, history = keeper.out, keeper.history
    if keeper.twin is None and (first_epoch == 0 or not out.is_file()):  # nothing of this run's
        # (a file already at ``out`` is its result only when this run resumed one that saved)
        if stopped:
            raise Cancelled("stopped before the first epoch finished: nothing was saved")
        raise RuntimeError("training produced no usable epoch (the loss was NaN from the start)")
    if keeper.twin is not None:  # it holds the best epoch's weights: what was just saved
        best, info = keeper.twin, read_info(out)
    else:  # resumed, and no epoch since beat the saved one
        best, info = load_checkpoint(out)
    wall = keeper.wall_s()
    metrics = dict(info.metrics)
    tta = keeper.base["tta"]
    if len(val_set) and not stopped:  # a user waiting on Stop does not wait for this
        probs = _stoppable_probabilities(best, val_set.images, tta, reporter)
        stopped = probs is None  # nor for the rest of it when Stop comes now
    if len(val_set) and not stopped:
        metrics["val_accuracy_tta" if tta != "none" else "val_accuracy"] = float(
            np.mean(probs.argmax(1) == val_set.labels))
        info = replace(info, calibration=calibrate(probs, val_set.labels))
    epochs_run = len(history.data.get("loss", []))
    info = replace(info, metrics=metrics, history=history.data,
                   config={**info.config, "wall_time_s": wall, "epochs_run": epochs_run,
                           "stopped": "user" if stopped else "nan" if history.diverged()
                           else "early" if epochs_run < keeper.config.epochs else None})
    save_checkpoint(best, info, out)
    history.write()
    return info


CALIBRATION_SLICE = 512  # images per look at Stop during the calibration pass (about a second)


def _stoppable_probabilities(model, images: np.ndarray, tta: str, reporter: Reporter):
    """``predict.probabilities`` of ``images`` a slice at a time; None once Stop is asked for.
    Over a large validation split the whole pass takes many seconds (11 s for 5,000 CIFAR
    images with flip TTA), during which a closing window used to wait, frozen."""
    from .predict import probabilities

    out = []
    for start in range(0, len(images), CALIBRATION_SLICE):
        if reporter.cancelled():
            return None
        out.append(probabilities(model, images[start:start + CALIBRATION_SLICE], tta))
    return np.concatenate(out)


class Cancelled(Exception):
    """The run was stopped before anything worth keeping existed."""
