"""Drop to bars: from an image dropped on the window to its top-k bars painted.

    python benchmarks/drop_to_bars.py [--runs 30] [--warmup 3]

One process, offscreen Qt: the real ``MainWindow`` and ``ClassifierSession`` with the bundled
checkpoint (settings in a throw-away file). After the model is loaded, each run clears the list,
emits ``window.images_dropped([path])`` for a fresh generated 32x32 PNG (what a file drop does)
and runs the Qt event loop until every top-k bar shown for that item has received its paint
event. The path is the app's own: file lane (decode, input check, thumbnail), which hands the
decoded image straight to the model lane (classify), queued signals back to the GUI thread, bars
refilled, layout, paint.

Baseline, measured in the same run: the bare model call, ``classifier.classify`` on one prepared
(1, 32, 32, 3) array. Reported: p50/p90 of drop-to-bars, the stage medians, the baseline
median and the ratio of the p50 to it. No thresholds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
LOAD_TIMEOUT_MS = 300_000
DROP_TIMEOUT_MS = 30_000


def percentile(values, q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def make_images(folder: Path, count: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for n in range(count):
        path = folder / f"drop-{n:03d}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB").save(path)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    from PySide6.QtCore import QEvent, QEventLoop, QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.session import ClassifierSession
    from desktop.window import MainWindow
    from training.hardware import describe
    from training.paths import APP_NAME, bundled_checkpoint, project_root
    from training.preprocessing import load_image

    print(f"machine: {describe()}")
    tmp_dir = tempfile.TemporaryDirectory(prefix="pc-drop-")
    tmp = Path(tmp_dir.name)
    images = make_images(tmp, args.warmup + args.runs)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    style = project_root() / "resources" / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))  # as desktop.__main__ does
    session = ClassifierSession(bundled_checkpoint())
    window = MainWindow(session, QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window.show()

    loop = QEventLoop()
    timed_out = {"flag": False}

    def run_loop(timeout_ms: int) -> None:
        timer = QTimer(singleShot=True)
        timer.timeout.connect(lambda: (timed_out.update(flag=True), loop.quit()))
        timer.start(timeout_ms)
        loop.exec()
        timer.stop()
        if timed_out["flag"]:
            raise SystemExit("timed out waiting for the app")

    failure = []
    session.keras_ready.connect(loop.quit)  # measure the TensorFlow model, not numpy's
    session.model_failed.connect(lambda reason: (failure.append(reason), loop.quit()))
    started = time.perf_counter()
    session.load_model()
    run_loop(LOAD_TIMEOUT_MS)
    if failure:
        raise SystemExit(f"model failed to load: {failure[0]}")
    print(f"model loaded in {time.perf_counter() - started:.2f} s (not part of the figures)")

    class BarsPainted(QObject):
        """Quits the loop once every bar shown for ``target`` has received a paint event."""

        def __init__(self) -> None:
            super().__init__()
            self.target, self.pending, self.t_painted = None, set(), None

        def arm(self, bars) -> None:
            self.pending = {id(bar) for bar in bars}
            for bar in bars:
                bar.installEventFilter(self)

        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint and id(obj) in self.pending:
                self.pending.discard(id(obj))
                if not self.pending and self.t_painted is None:
                    self.t_painted = time.perf_counter()
                    loop.quit()
            return False

    watch = BarsPainted()
    stages = {}
    bars_widget = window.bars
    original = type(bars_widget).show_probabilities

    def show_probabilities(*args, **kwargs):  # instance-level wrapper, app unchanged
        entered = time.perf_counter()
        original(bars_widget, *args, **kwargs)
        current = window._current_item()
        if watch.target is not None and current is watch.target and bars_widget.bars:
            stages.setdefault("result", entered)
            stages.setdefault("built", time.perf_counter())
            watch.arm(list(bars_widget.bars))

    bars_widget.show_probabilities = show_probabilities

    def on_item_changed(item_id: int) -> None:
        item = watch.target
        if item is not None and item.id == item_id:
            if item.state == "checked":
                stages.setdefault("checked", time.perf_counter())
            elif item.state == "failed":
                failure.append(item.error)
                loop.quit()

    session.items.item_changed.connect(on_item_changed)

    totals, per_stage = [], {"checked": [], "result": [], "built": []}
    for n, path in enumerate(images):
        session.items.clear()  # the drop lands in an empty list, so it becomes the current item
        app.processEvents()
        stages.clear()
        watch.target, watch.pending, watch.t_painted = None, set(), None
        # images_dropped -> session.add_paths creates the item synchronously; catch it there.
        before = len(session.items.items)
        t0 = time.perf_counter()
        window.images_dropped.emit([path])
        watch.target = session.items.items[before]
        run_loop(DROP_TIMEOUT_MS)
        if failure:
            raise SystemExit(f"{path.name}: {failure[0]}")
        if n >= args.warmup:
            totals.append(watch.t_painted - t0)
            for key in per_stage:
                per_stage[key].append(stages[key] - t0)

    # Baseline: the bare model call on one prepared array, same process, same model.
    classifier = session.classifier
    array = load_image(images[0], session.info.preprocessing).array[None]
    for _ in range(args.warmup):
        classifier.classify(array)
    bare = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        classifier.classify(array)
        bare.append(time.perf_counter() - t0)

    ms = 1000.0
    base = statistics.median(bare)
    p50, p90 = percentile(totals, 50), percentile(totals, 90)
    print(f"{args.runs} drops after {args.warmup} warm-up, 32x32 PNG, offscreen; times in ms")
    print(f"drop -> bars painted                p50 {p50 * ms:8.2f}   p90 {p90 * ms:8.2f}   "
          f"x{p50 / base:5.1f} baseline (p50)")
    labels = {"checked": "drop -> input checked (file lane)",
              "result": "drop -> probabilities in GUI thread",
              "built": "drop -> bars built (before paint)"}
    for key, label in labels.items():
        print(f"  {label:<36} p50 {percentile(per_stage[key], 50) * ms:8.2f}")
    print(f"bare model call (baseline)          p50 {base * ms:8.2f}   "
          f"p90 {percentile(bare, 90) * ms:8.2f}   classifier.classify, one (1,32,32,3) array")

    window.close()  # stops both job lanes' threads
    tmp_dir.cleanup()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip TensorFlow/Qt teardown; nothing is left to save
