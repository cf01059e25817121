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
from .splits import held_out_by, split
from .distill import teachers
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

    from .checkpoints import load_checkpoint
    from .hardware import compute_dtype
    from .model import dirac_init, whitening_kernel

    reporter = reporter or SilentReporter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fine_tune not in ("full", "head"):
        raise ValueError(f"fine_tune must be 'full' or 'head', not {fine_tune!r}")
    if not 0 <= config.distill <= 1:
        raise ValueError(f"distill must be between 0 and 1, not {config.distill}")
    if len(data.class_names) < 2 or len(np.unique(data.labels)) < 2:
        raise DataError("training needs images of at least two classes")
    def stop_here_if_asked():  # the slow steps before fit (TensorFlow, loading, tracing)
        if reporter.cancelled():
            raise Cancelled("stopped before the first epoch began: nothing was trained")

    stop_here_if_asked()
    source, parent_info = load_checkpoint(parent) if parent else (None, None)
    stop_here_if_asked()
    if parent_info is not None:
        config = replace(config, **architecture_of(source))
        preprocessing = parent_info.preprocessing
        if tuple(parent_info.input_shape) != tuple(data.images.shape[1:]):
            raise DataError("the data's image size differs from the parent checkpoint's input")
    elif fine_tune == "head":
        raise ValueError("head-only training needs a checkpoint to start from")
    keras.utils.set_random_seed(config.seed)
    fingerprint = data.fingerprint()
    split_seed, split_share = config.seed, config.val_fraction
    if parent_info is not None and parent_info.data_fingerprint == fingerprint:
        # the parent's own split (the one it really held out: a fine-tune's is its parent's):
        # images it, or its ancestors, trained on never pick or judge the child's epochs
        parents_seed, parents_share = held_out_by(parent_info)
        if parents_share > 0:  # (one trained on all of it leaves nothing clean to keep)
            split_seed, split_share = parents_seed, parents_share
    train_set, val_set = split(data, split_share, split_seed)
    n_classes = len(data.class_names)
    dtype = compute_dtype(config.precision)
    shape = tuple(data.images.shape[1:])
    model = network(config, n_classes, shape, dtype)
    teacher = teachers(config.teachers, data, preprocessing, (split_seed, split_share),
                       fingerprint) if config.teachers else None
    stop_here_if_asked()
    if config.whiten and source is None:
        model.get_layer("whiten_conv").set_weights([whitening_kernel(train_set.images, seed=config.seed)])
    if config.dirac and source is None:
        dirac_init(model)
    if source is not None:
        _copy_weights(source, model, parent_info.class_names, data.class_names)
        del source
        if fine_tune == "head":
            for layer in model.layers:
                layer.trainable = layer.name == "logits"
    steps = math.ceil(len(train_set) / config.batch_size)
    total = steps * config.epochs
    model.compile(
        optimizer=make_optimizer(config, total),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"])
    # flip TTA only for a network trained on mirrored images: with flips off (text, arrows,
    # left/right classes) a mirror image is another picture, and averaging it in would blur
    tta = "hflip" if config.tta and config.flip else "none"
    base = dict(class_names=data.class_names, input_shape=shape, preprocessing=preprocessing,
                tta=tta, data_fingerprint=fingerprint, data_source=data.source,
                config={**config.to_dict(), "precision_used": dtype, "fine_tune": fine_tune,
                        "split": {"seed": split_seed, "val_fraction": split_share,
                                  "from_parent": (split_seed, split_share)
                                  != (config.seed, config.val_fraction)}},
                seed=config.seed, parent=parent_info.name if parent_info else None,
                parent_sha256=parent_info.model_sha256 if parent_info else "", command=command)
    backup = Path(backup_dir) if backup_dir is not None else None
    if backup is not None:
        backup.mkdir(parents=True, exist_ok=True)
    first_epoch = completed_epochs(backup)
    if backup is not None:
        claim_backup(backup, first_epoch, TrainConfig, {
            "data_fingerprint": base["data_fingerprint"], "config": config.to_dict(),
            "fine_tune": fine_tune, "parent": str(Path(parent).resolve()) if parent else None,
            "out": str(out.resolve())})
        repair_backup(backup)  # only this run's backup: another run's is refused untouched
        first_epoch = completed_epochs(backup)
    history = RunHistory(out, backup, first_epoch)
    t0 = time.perf_counter()
    previous_wall = history.wall_s

    float32_copy = []  # one float32 twin for every save: each new Keras model costs memory

    def save_best(trained, epoch, val_acc):
        if not float32_copy:
            float32_copy.append(network(config, n_classes, shape, "float32"))
        clean = float32_copy[0]
        clean.set_weights(trained.get_weights())
        metrics = {"val_accuracy" if len(val_set) else "train_accuracy": val_acc, "best_epoch": epoch,
                   "train_images": len(train_set), "val_images": len(val_set)}
        info = CheckpointInfo(**{**base, "config": {
            **base["config"], "wall_time_s": previous_wall + time.perf_counter() - t0}},
            metrics=metrics, history=dict(history.data))
        save_checkpoint(clean, info, out)

    callbacks, progress = make_callbacks(reporter, steps, len(train_set), config, save_best,
                                     history, len(val_set) > 0)
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: None if progress.stopped else history.add(
            logs, previous_wall + time.perf_counter() - t0))
    # Order matters: the history entry exists before the best checkpoint is saved, and the
    # backup (weights, optimizer, epoch) is written last, once the epoch is fully accounted for.
    callbacks.insert(0, record)
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tensorboard_dir), update_freq="epoch"))
    if backup is not None:
        callbacks.append(finished_epochs_backup(backup, progress))
    if first_epoch:
        reporter.partial({"kind": "resumed", "epoch": first_epoch, "epochs": config.epochs,
                          "steps": steps, "history": dict(history.data)})
        reporter.progress(first_epoch / config.epochs,
                          f"resuming from epoch {first_epoch + 1}/{config.epochs}")
    val_x = val_set.images.astype(np.float32)
    val_y = np.eye(n_classes, dtype=np.float32)[val_set.labels]
    stop_here_if_asked()
    model.fit(training_batches(train_set.images, train_set.labels, n_classes, config, first_epoch,
                               teacher),
              epochs=config.epochs, validation_data=(val_x, val_y) if len(val_set) else None,
              batch_size=config.batch_size, callbacks=callbacks, verbose=0,
              shuffle=False)  # the batches shuffle themselves, the same way on resume
    nan_stop = history.diverged()
    if not float32_copy and (first_epoch == 0 or not out.is_file()):  # nothing of this run's
        # (a file already at ``out`` is its result only when this run resumed one that saved)
        if progress.stopped:
            raise Cancelled("stopped before the first epoch finished: nothing was saved")
        raise RuntimeError("training produced no usable epoch (the loss was NaN from the start)")
    if float32_copy:  # it holds the best epoch's weights: what was just saved
        best, info = float32_copy[0], read_info(out)
    else:  # resumed, and no epoch since beat the saved one
        best, info = load_checkpoint(out)
    wall = previous_wall + time.perf_counter() - t0
    metrics = dict(info.metrics)
    if len(val_set) and not progress.stopped:  # a user waiting on Stop does not wait for this
        from .predict import probabilities
        probs = probabilities(best, val_set.images, tta)
        metrics["val_accuracy_tta" if tta != "none" else "val_accuracy"] = float(
            np.mean(probs.argmax(1) == val_set.labels))
        info = replace(info, calibration=calibrate(probs, val_set.labels))
    epochs_run = len(history.data.get("loss", []))
    info = replace(info, metrics=metrics, history=history.data,
                   config={**info.config, "wall_time_s": wall, "epochs_run": epochs_run,
                           "stopped": "user" if progress.stopped else "nan" if nan_stop
                           else "early" if epochs_run < config.epochs else None})
    save_checkpoint(best, info, out)
    history.write()
    if backup is not None:
        import shutil
        shutil.rmtree(backup, ignore_errors=True)
    return TrainResult(out, info, progress.stopped or nan_stop)


class Cancelled(Exception):
    """The run was stopped before anything worth keeping existed."""


def network(config: TrainConfig, n_classes: int, shape: tuple, dtype: str):
    """The network ``config`` describes, from ``build_model``."""
    from .model import build_model

    return build_model(n_classes, config.widths, config.stem, shape, dtype, config.residual,
                       activation=config.activation, bn_momentum=config.bn_momentum,
                       bn_scale=config.bn_scale, logit_scale=config.logit_scale,
                       whiten=config.whiten, init=config.init)


def architecture_of(model) -> dict:
    """The config fields describing a network built by ``build_model`` (widths, stem, residual,
    activation, batch norm, logit scale, whitening)."""
    from .checkpoints import CheckpointError

    names = {layer.name: layer for layer in model.layers}
    try:
        bn = names["group1_a_bn"]
        return {"stem": int(names["stem_conv"].filters) if "stem_conv" in names else 0,
                "widths": tuple(int(names[f"group{i}_a_conv"].filters) for i in (1, 2, 3)),
                "residual": "group1_res1_conv" in names,
                "activation": next(n.rsplit("_", 1)[1] for n in names if n.startswith("group1_a_")
                                   and n.rsplit("_", 1)[1] in ("gelu", "relu")),
                "bn_momentum": float(bn.momentum), "bn_scale": bool(bn.scale),
                "logit_scale": float(names["logit_scale"].scale) if "logit_scale" in names else 1.0,
                "whiten": "whiten_conv" in names}
    except (KeyError, StopIteration):
        raise CheckpointError("this checkpoint's network is not one the app can fine-tune") from None


def _copy_weights(source, model, source_classes=None, classes=None) -> None:
    """Copy weights from ``source`` into ``model`` wherever layer names and shapes match. The head
    (``logits``) only where it means the same: the same classes (their columns put in the data's
    order when it differs); other classes, even as many, get a new head."""
    by_name = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        other = by_name.get(layer.name)
        if other is None or not layer.weights:
            continue
        weights = other.get_weights()
        if layer.name == "logits" and source_classes is not None and classes is not None:
            if sorted(source_classes) != sorted(classes) or len(set(classes)) != len(classes):
                continue  # other classes: a new head, trained from scratch
            order = [list(source_classes).index(name) for name in classes]
            weights = [w[..., order] for w in weights]  # one column per class, the data's order
        if [w.shape for w in weights] == [tuple(v.shape) for v in layer.weights]:
            layer.set_weights(weights)
