"""A dropped folder: images/s from a folder of CIFAR-10 test JPEGs dropped on the window to every
row classified, against a naive loop calling ``model.predict`` once per file.

    python benchmarks/folder_predict.py [--data ../shared/data/cifar10-jpg.tar.gz] [--count 10000]
                                        [--runs 3] [--naive 300]

The images are the first ``--count`` files of the archive's test part, written to a temporary
folder (one subfolder per class, as a user's folder might be). One process, offscreen Qt: the
real ``MainWindow`` and ``ClassifierSession`` on the bundled checkpoint. After the TensorFlow
model is ready, each run clears the list and emits ``window.images_dropped([folder])`` (what a
folder drop does), then runs the event loop until no row is waiting. Reported per run: wall time,
images/s, time to the first classified row, and top-1 agreement with the folder names (a sanity
check that the fast path classifies what it should).

Baseline, same process and model: the naive loop a tutorial writes, ``load_image`` then
``model.predict(x[None])`` per file, over the first ``--naive`` files (its rate is flat, so a
subset gives it). Medians over the runs and the ratio to the naive rate are printed. No thresholds.

Where each run's CPU time went is printed too (Linux: per-thread user+system time from
``/proc/self/task``, grouped by the Python thread's name; TensorFlow's own compute threads, which
Python does not know, count as "tensorflow and other").
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DEFAULT_DATA = os.environ.get("PIXELCLASSIFIER_DATA",
                              str(ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"))


def extract_test_images(archive: Path, folder: Path, count: int) -> list[Path]:
    """The first ``count`` test JPEGs, spread over the classes in archive order."""
    paths = []
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if len(paths) >= count:
                break
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 3 and parts[0] == "test":
                target = folder / parts[1] / parts[2]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
                paths.append(target)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="the CIFAR-10 JPEG archive")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive", type=int, default=300, help="files for the naive baseline")
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.session import ClassifierSession
    from desktop.window import MainWindow
    from training.hardware import describe
    from training.paths import APP_NAME, bundled_checkpoint
    from training.preprocessing import load_image

    print(f"machine: {describe()}")
    tmp_dir = tempfile.TemporaryDirectory(prefix="pc-folder-")
    folder = Path(tmp_dir.name) / "photos"
    paths = extract_test_images(Path(args.data), folder, args.count)
    print(f"{len(paths)} test JPEGs from {Path(args.data).name}")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    session = ClassifierSession(bundled_checkpoint())
    window = MainWindow(session, QSettings(str(Path(tmp_dir.name) / "settings.ini"),
                                           QSettings.Format.IniFormat))
    window.show()

    loop = QEventLoop()

    def run_until(done, timeout_s: float) -> None:
        def check() -> None:  # a slot returning a value upset PySide6's refcounts at exit
            if done():
                loop.quit()

        poll = QTimer(interval=10)
        poll.timeout.connect(check)
        poll.start()
        guard = QTimer(singleShot=True)
        guard.timeout.connect(loop.quit)
        guard.start(int(timeout_s * 1000))
        loop.exec()
        poll.stop()
        guard.stop()
        if not done():
            raise SystemExit("timed out")

    keras = []
    session.keras_ready.connect(lambda: keras.append(True))
    session.load_model()
    run_until(lambda: bool(keras), 300)

    names = session.info.class_names
    rates, firsts, agreements = [], [], []
    finished = set()  # ids of rows classified or refused, kept as the rows change (no scans)

    def on_item_changed(item_id: int) -> None:
        item = session.items.get(item_id)
        if item is not None and item.state in ("classified", "failed"):
            finished.add(item_id)

    session.items.item_changed.connect(on_item_changed)
    for run in range(args.runs):
        session.items.clear()
        finished.clear()
        first = []
        cpu_before = thread_cpu_seconds()
        t0 = time.perf_counter()
        window.images_dropped.emit([folder])

        def done() -> bool:  # polled every 10 ms on the GUI thread: must cost next to nothing
            if not first and any(i.state == "classified" for i in session.items.items[:50]):
                first.append(time.perf_counter() - t0)
            return len(finished) == len(paths)

        run_until(done, 1800)
        wall = time.perf_counter() - t0
        cpu = cpu_by_thread(cpu_before, thread_cpu_seconds())
        items = session.items.items
        agree = np.mean([names[int(np.argmax(i.probabilities))] == Path(i.source).parent.name
                         for i in items if i.probabilities is not None])
        rates.append(len(paths) / wall)
        firsts.append(first[0] if first else float("nan"))
        agreements.append(agree)
        print(f"run {run + 1}: {wall:6.2f} s  {len(paths) / wall:7.1f} images/s  first row "
              f"{firsts[-1] * 1000:6.0f} ms  top-1 = folder {agree:.2%}", flush=True)
        if cpu:
            print("  CPU seconds by thread: " + ", ".join(f"{name} {seconds:.1f}"
                                                     for name, seconds in cpu), flush=True)

    # Naive baseline: one file at a time, model.predict per file (same model object).
    model = session.classifier.model
    policy = session.info.preprocessing
    subset = paths[: args.naive]
    model.predict(load_image(subset[0], policy).array[None], verbose=0)  # trace once
    t0 = time.perf_counter()
    for path in subset:
        model.predict(load_image(path, policy).array[None], verbose=0)
    naive = len(subset) / (time.perf_counter() - t0)

    rate = statistics.median(rates)
    print(f"app, folder drop -> all rows classified   median {rate:8.1f} images/s   "
          f"x{rate / naive:5.1f} naive   first row {statistics.median(firsts) * 1000:.0f} ms")
    print(f"naive loop, load + model.predict per file        {naive:8.1f} images/s   "
          f"({len(subset)} files; baseline)")
    window.close()
    tmp_dir.cleanup()
    return 0


def thread_cpu_seconds() -> dict[int, float]:
    """User+system CPU seconds of each of this process's threads (Linux; elsewhere empty)."""
    out, tick = {}, os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_by_thread(before: dict[int, float], after: dict[int, float]) -> list[tuple[str, float]]:
    """CPU seconds spent between two ``thread_cpu_seconds`` readings, by Python thread name."""
    import threading

    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    totals: dict[str, float] = {}
    for tid, seconds in after.items():
        name = names.get(tid, "tensorflow and other")
        totals[name] = totals.get(name, 0.0) + seconds - before.get(tid, 0.0)
    return sorted(((n, s) for n, s in totals.items() if s >= 0.05), key=lambda kv: -kv[1])


if __name__ == "__main__":
    raise SystemExit(main())
