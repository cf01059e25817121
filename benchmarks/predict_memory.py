"""Memory over many single-image predictions: resident size before and after.

    python benchmarks/predict_memory.py [--count 10000] [--naive 1000]

Repeated ``model.predict`` calls are a known source of memory growth in TensorFlow; the app
classifies through ``Classifier.classify`` (``predict_on_batch``: one compiled function). This
script loads the bundled checkpoint, classifies one warm-up image, then ``--count`` different
single images one call at a time, and prints resident memory (VmRSS) before, after and the
growth, plus the per-call median. Baseline, measured after it in the same process: the same
images through ``model.predict(x, verbose=0)`` for ``--naive`` calls. No thresholds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn, images) -> tuple[float, float, float]:
    before = rss_mb()
    times = []
    for image in images:
        t0 = time.perf_counter()
        fn(image[None])
        times.append(time.perf_counter() - t0)
    return before, rss_mb(), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=1_000)
    args = parser.parse_args()

    import numpy as np

    from training.hardware import describe
    from training.paths import bundled_checkpoint
    from training.predict import Classifier

    print(f"machine: {describe()}")
    classifier = Classifier.load(bundled_checkpoint())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.count, 32, 32, 3), dtype=np.uint8)
    classifier.classify(images[:1])
    before, after, per_call = measure(classifier.classify, images)
    print(f"app path, Classifier.classify x {args.count}: RSS {before:.0f} -> {after:.0f} MB, "
          f"growth {after - before:+.1f} MB, median {per_call * 1000:.2f} ms per image")

    model = classifier.model
    model.predict(images[:1].astype(np.float32), verbose=0)
    nb, na, naive_call = measure(lambda x: model.predict(x.astype(np.float32), verbose=0),
                                 images[: args.naive])
    print(f"baseline, model.predict x {args.naive} (no TTA): RSS {nb:.0f} -> {na:.0f} MB, "
          f"growth {na - nb:+.1f} MB, median {naive_call * 1000:.2f} ms per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
