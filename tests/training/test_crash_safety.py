"""A checkpoint save killed (SIGKILL) at any moment leaves a checkpoint that loads, with the
sidecar that belongs to its model; a read-only folder or a diverging run loses nothing."""
import errno
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.checkpoints import CheckpointInfo, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]

# The child saves model B (seed 1, classes x/y/z) over model A (seed 0, classes a/b/c), or
# alternates them forever, and is killed: by itself just before its N-th os.replace, in the
# middle of writing the model file, or by the parent at a random moment.
CHILD = r"""
import os, signal, sys
import keras
from training.checkpoints import CheckpointInfo, save_checkpoint
from training.model import build_model
keras.utils.set_random_seed(0)
a = build_model(3, widths=(4, 8, 8), stem=4)
b = build_model(3, widths=(4, 8, 8), stem=4)
b.set_weights([w + 1.0 for w in a.get_weights()])
path, mode = sys.argv[1], sys.argv[2]
if mode.startswith("replace"):
    real, count = os.replace, [0]
    def replace(src, dst):
        count[0] += 1
        if count[0] == int(mode[len("replace"):]):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst)
    os.replace = replace
elif mode == "mid-write":
    real_save = keras.Model.save
    def save(model, file, *args, **kwargs):
        real_save(model, file, *args, **kwargs)
        with open(file, "r+b") as handle:
            handle.truncate(os.path.getsize(file) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    keras.Model.save = save
print("ready", flush=True)
i = 1
while True:
    model, seed = (a, 0) if i % 2 == 0 else (b, 1)
    save_checkpoint(model, CheckpointInfo(class_names=("a", "b", "c") if seed == 0 else
                                          ("x", "y", "z"), seed=seed), path)
    i += 1
    if mode != "loop":
        break
"""


def model_a():
    import keras
    from training.model import build_model
    keras.utils.set_random_seed(0)
    return build_model(3, widths=(4, 8, 8), stem=4)


def assert_consistent(path, first_weights):
    """The checkpoint loads and its sidecar describes the model in the file (A or B)."""
    model, info = load_checkpoint(path)
    offset = float(np.mean(model.get_weights()[1] - first_weights))
    assert info.seed in (0, 1) and offset == pytest.approx(float(info.seed), abs=1e-5)
    assert info.class_names == (("a", "b", "c") if info.seed == 0 else ("x", "y", "z"))
    return info.seed


@pytest.mark.slow
def test_a_save_killed_at_any_moment_leaves_a_loadable_consistent_checkpoint(tmp_path):
    a = model_a()
    first_weights = a.get_weights()[1]
    path = tmp_path / "ckpt.keras"
    seen = []
    modes = ["replace1", "replace2", "replace3", "mid-write", "replace99"] + ["loop"] * 6
    for n, mode in enumerate(modes):
        save_checkpoint(a, CheckpointInfo(class_names=("a", "b", "c"), seed=0), path)
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout.readline().strip() == "ready"
        if mode == "loop":  # a random moment: the saves take ~30-60 ms each
            try:
                child.wait(timeout=0.05 + 0.13 * n % 0.6)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if mode != "replace99":
            assert child.returncode == -signal.SIGKILL, mode
        seen.append((mode, assert_consistent(path, first_weights)))
    by_mode = dict(seen[:5])
    # Killed before the model's rename: the old pair; after it: the new model with its sidecar.
    assert by_mode == {"replace1": 0, "replace2": 0, "replace3": 1, "mid-write": 0, "replace99": 1}


def test_a_read_only_folder_at_save_time_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import os
    a = model_a()
    path = save_checkpoint(a, CheckpointInfo(class_names=("a", "b", "c"), seed=0),
                           tmp_path / "ckpt.keras")
    real = os.replace

    def read_only(src, dst):  # tests may run as root, where chmod does not stop writes
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OSError, match="Read-only file system"):
        save_checkpoint(a, CheckpointInfo(class_names=("x", "y", "z"), seed=1), path)
    monkeypatch.setattr(os, "replace", real)
    assert load_checkpoint(path)[1].class_names == ("a", "b", "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.json", "ckpt.keras"]  # no debris


def test_a_diverging_run_stops_by_itself_and_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    """In epoch 2 the weights blow up to NaN (what a far too high learning rate does): the run
    stops at once (not after its 3 epochs), says why, and epoch 1's checkpoint is kept."""
    import keras
    from training import train as train_module
    from .test_train import TINY, RecordingReporter, colour_set

    class BlowUp(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                self.model.layers[2].kernel.assign(self.model.layers[2].kernel * np.inf)

    real = train_module.make_callbacks
    monkeypatch.setattr(train_module, "make_callbacks", lambda *a, **k: (
        lambda made: ([BlowUp(), *made[0]], made[1]))(real(*a, **k)))
    reporter = RecordingReporter()
    result = train_module.train(colour_set(), TINY, tmp_path / "run.keras", reporter)
    assert result.stopped_early and result.info.config["stopped"] == "nan"
    assert result.info.config["epochs_run"] < TINY.epochs
    model, info = load_checkpoint(result.checkpoint)
    assert info.metrics["best_epoch"] == 1
    probs = model.predict_on_batch(np.zeros((2, 32, 32, 3), np.float32))
    assert np.isfinite(probs).all()


def test_a_failed_save_after_one_killed_between_its_renames_keeps_the_checkpoint_loadable(
        tmp_path):
    """Killed between its two renames, a save leaves the new model, the old sidecar and a
    pending one naming the new model; the next save of that checkpoint then fails (a full
    disk): the pending sidecar of the earlier save must not go with it."""
    import shutil

    from training.checkpoints import pending_sidecar_path, sidecar_path
    a = model_a()
    path = save_checkpoint(a, CheckpointInfo(class_names=("a", "b", "c"), seed=0),
                           tmp_path / "ckpt.keras")
    other = model_a()
    other.set_weights([w + 1 for w in other.get_weights()])  # another model: another hash
    b = save_checkpoint(other, CheckpointInfo(class_names=("x", "y", "z"), seed=1),
                        tmp_path / "other" / "b.keras")
    shutil.copyfile(b, path)  # as the kill left it: B's model, A's sidecar, B's pending one
    shutil.copyfile(sidecar_path(b), pending_sidecar_path(path))

    class FullDisk:
        def save(self, target):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(FullDisk(), CheckpointInfo(class_names=("a", "b", "c"), seed=2), path)
    model, info = load_checkpoint(path)  # the model on disk, with its own sidecar
    assert info.seed == 1 and info.class_names == ("x", "y", "z")


def test_a_sidecar_rewritten_since_a_killed_save_is_not_replaced_by_its_older_pending_one(
        tmp_path):
    """After the killed save, the sidecar was written again for the same model (an evaluation
    kept with it): that record stays when the next save fails."""
    from dataclasses import replace

    from training.checkpoints import atomic_write_bytes, pending_sidecar_path, read_info, sidecar_path
    path = save_checkpoint(model_a(), CheckpointInfo(class_names=("a", "b", "c"), seed=0),
                           tmp_path / "ckpt.keras")
    info = read_info(path)
    atomic_write_bytes(pending_sidecar_path(path), info.to_json().encode())  # the older record
    evaluated = replace(info, evaluations={"class folders x": {"accuracy": 0.5, "images": 2}})
    atomic_write_bytes(sidecar_path(path), evaluated.to_json().encode())

    class FullDisk:
        def save(self, target):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        save_checkpoint(FullDisk(), CheckpointInfo(class_names=("a", "b", "c"), seed=2), path)
    assert load_checkpoint(path)[1].evaluations == evaluated.evaluations
