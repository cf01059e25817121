"""Batch prediction throughput of checkpoints, as the app predicts (flip TTA, float32,
``training.predict.probabilities``): what bounds a dropped folder once decoding is off the
critical path.

    python benchmarks/model_throughput.py [--checkpoint FILE ...] [--images 2048] [--repeats 3]

Baseline, measured in the same run: the bundled checkpoint. Each further ``--checkpoint`` is
timed the same way on the same random uint8 images; prints the median images/s over
``--repeats`` passes, parameters, and the ratio to the bundled checkpoint. No thresholds.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="a .keras checkpoint")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from training.checkpoints import load_checkpoint
    from training.hardware import describe
    from training.paths import bundled_checkpoint
    from training.predict import probabilities

    print(f"machine: {describe()}")
    images = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    base = None
    for i, path in enumerate([bundled_checkpoint(), *args.checkpoint]):
        model, info = load_checkpoint(path)
        probabilities(model, images[:512], info.tta)  # trace and warm up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            probabilities(model, images, info.tta)
            times.append(time.perf_counter() - t0)
        rate = len(images) / statistics.median(times)
        base = base or rate
        label = "bundled (baseline)" if i == 0 else Path(path).name
        print(f"{label:28s} {model.count_params() / 1e6:5.2f} M params  TTA {info.tta:5s}  "
              f"median {rate:7.1f} images/s   x{rate / base:4.2f} bundled", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
