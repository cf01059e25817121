"""Training in the app versus headless: images per second, GUI overhead, event-loop latency.

    python benchmarks/train_gui.py [--data PATH] [--images 6000] [--epochs 3] [--repeats 2]

Both sides train the same network (the in-app default from scratch, the "fast" recipe: 64/256/256
channels, batch 512, mixed bfloat16 where the CPU has it) on the same images with the same
function, ``training.train.train``:

* headless: called directly with a silent reporter (what ``python -m training train`` does);
* in the app: the real ``MainWindow`` (offscreen Qt, bundled checkpoint loaded), Train tab,
  ``TrainController`` (training in its child process), live chart and progress drawn from its
  signals.

Throughput is training images per second over the epochs after the first (the first traces the
graph), from the per-epoch wall times the training function reports. The runs alternate
(headless, app, headless, app, ...) so drift hits both alike. Reported: medians per side and the
ratio app/headless (the GUI overhead is 1 - ratio). While the app trains, a 20 ms QTimer measures
how late the GUI thread's event loop serves it (p50, p99, worst), reported separately for the
seconds before the first batch, when TensorFlow traces the training step (in-thread training held
the window's GIL in stretches then), and for the rest of the run.

``--data`` takes any data the app trains on (of the CIFAR-10 archive, ``--images`` training images
drawn at random); they are written as a CIFAR-10 python batch into a temporary folder, which the
app reads through its data check. Without ``--data``, random 32x32 images in 10 classes are used
(throughput does not depend on the pixels).
"""
from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RUN_TIMEOUT_MS = 1_800_000

from training.reporting import SilentReporter  # noqa: E402 (after the path above; imports nothing heavy)


def write_batches(folder: Path, data) -> Path:
    """Write an ImageSet as a CIFAR-10 python batch (what the app reads through its check)."""
    folder.mkdir(parents=True, exist_ok=True)
    flat = data.images.transpose(0, 3, 1, 2).reshape(len(data), 3072)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({"data": flat, "labels": [int(v) for v in data.labels]}, f)
    return folder


def write_random_batches(folder: Path, n: int) -> Path:
    import numpy as np

    from training.data import CIFAR10_CLASSES, ImageSet
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return write_batches(folder, ImageSet(images, rng.integers(0, 10, n).astype(np.int32),
                                          CIFAR10_CLASSES))


def epoch_rates(epochs: list[dict], n_train: int) -> list[float]:
    """Training images/s of each epoch after the first."""
    return [n_train / e["seconds"] for e in epochs[1:]]


class EpochLog(SilentReporter):
    """A reporter that keeps the epoch payloads (headless side)."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def partial(self, payload):
        if payload.get("kind") == "epoch":
            self.epochs.append(payload)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data set the app can train on (default: random images)")
    parser.add_argument("--images", type=int, default=6000, help="images to train on")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ["PIXELCLASSIFIER_HOME"] = str(tmp / "home")
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.session import ClassifierSession
    from desktop.window import MainWindow
    from training.data import load_labelled
    from training.hardware import describe
    from training.paths import bundled_checkpoint, user_cache_dir
    from training.recipes import RECIPES, TrainConfig
    from training.train import train

    app = QApplication.instance() or QApplication(sys.argv[:1])
    if args.data:
        import numpy as np
        full = load_labelled(args.data, "train", cache_dir=user_cache_dir())
        data = full.subset(np.random.default_rng(0).permutation(len(full))[:args.images])
        source = str(write_batches(tmp / "subset-batches", data))
    else:
        source = str(write_random_batches(tmp / "random-batches", args.images))
        data = load_labelled(source, "train")
    config = TrainConfig(**{**RECIPES["fast"], "epochs": args.epochs, "val_fraction": 0.05})
    n_train = len(data) - int(round(len(data) * config.val_fraction))
    print(f"{describe()}; {len(data)} images ({n_train} trained on per epoch), "
          f"{args.epochs} epochs per run, batch {config.batch_size}, widths {config.widths}",
          flush=True)

    session = ClassifierSession(bundled_checkpoint())
    window = MainWindow(session, QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window.show()
    loop = QEventLoop()
    session.model_ready.connect(loop.quit)
    session.load_model()
    loop.exec()
    window.tabs.setCurrentWidget(window.train_panel)
    controller = window.trainer
    checked = QEventLoop()
    controller.data_checked.connect(checked.quit)
    window.train_panel.set_data_path(source)  # the app's own data check (and warm-up)
    checked.exec()
    assert controller.data.fingerprint() == data.fingerprint()

    def headless(run: int) -> list[float]:
        log = EpochLog()
        train(data, config, tmp / f"headless-{run}.keras", log)
        return epoch_rates(log.epochs, n_train)

    def in_app(run: int) -> tuple[list[float], list[float], list[float]]:
        """Train in the app; return epoch rates and event-loop lateness before and after the
        first batch (before it, TensorFlow traces the training step once per run)."""
        epochs, before, after = [], [], []
        clock, interval = QElapsedTimer(), 20
        ticker = QTimer(interval=interval)
        first_batch = []

        def tick():
            (after if first_batch else before).append(max(clock.restart() - interval, 0))

        ticker.timeout.connect(tick)
        done = QEventLoop()
        connections = [
            (controller.batch, controller.batch.connect(lambda p: first_batch or first_batch.append(p))),
            (controller.epoch, controller.epoch.connect(epochs.append)),
            (controller.running_changed,
             controller.running_changed.connect(lambda running: running or done.quit()))]
        controller.start(config, None, "full")
        clock.start()
        ticker.start()
        QTimer.singleShot(RUN_TIMEOUT_MS, done.quit)
        done.exec()
        ticker.stop()
        for signal, connection in connections:
            signal.disconnect(connection)
        return epoch_rates(epochs, n_train), before, after

    head_rates, app_rates, before, after = [], [], [], []
    for run in range(args.repeats):
        rates = headless(run)
        head_rates += rates
        print(f"headless run {run + 1}: " + ", ".join(f"{r:.0f}" for r in rates) + " images/s",
              flush=True)
        rates, late_before, late_after = in_app(run)
        app_rates += rates
        before += late_before
        after += late_after
        print(f"in-app   run {run + 1}: " + ", ".join(f"{r:.0f}" for r in rates) + " images/s; "
              f"event loop worst {max(late_before, default=0)} ms late before the first batch, "
              f"{max(late_after, default=0)} ms after", flush=True)
    window.close()

    head, gui = statistics.median(head_rates), statistics.median(app_rates)
    print(f"training images/s, median over {len(head_rates)} epochs per side: headless {head:.0f} "
          f"(range {min(head_rates):.0f}-{max(head_rates):.0f}), in the app {gui:.0f} "
          f"(range {min(app_rates):.0f}-{max(app_rates):.0f}); ratio app/headless "
          f"{gui / head:.3f} (GUI overhead {100 * (1 - gui / head):.1f} %)")
    for label, values in (("from the first batch on", after), ("before it (graph tracing)", before)):
        ordered = sorted(values) or [float("nan")]
        print(f"GUI event-loop lateness while training, {label}: {len(values)} ticks of 20 ms, "
              f"p50 {statistics.median(ordered):.0f} ms, p99 "
              f"{ordered[int(0.99 * (len(ordered) - 1))]:.0f} ms, worst {max(ordered):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
