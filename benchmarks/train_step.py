"""Bare training-step throughput of the fast recipe's network: float32 against mixed bfloat16,
and mixed bfloat16 compiled by XLA (``jit_compile=True``).

    python benchmarks/train_step.py [--batch 512] [--repeats 3] [--seconds 10]

Builds the ``fast`` recipe's network (``training.train.network``), compiles it as
``training.train`` does (its optimiser from ``training.optim``, label smoothing), and times
``train_on_batch`` on one random batch held in memory: no data pipeline, no callbacks, so the
figure is the ceiling for a training run on this machine. Baseline, measured in the same run:
float32. Prints the median images/s over ``--repeats`` timed windows for each variant and the
ratio to float32.
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


def rates(dtype: str, batch: int, repeats: int, seconds: float, jit: bool = False) -> list[float]:
    import keras
    import numpy as np

    from training.optim import make_optimizer
    from training.recipes import RECIPES, TrainConfig
    from training.model import network

    config = TrainConfig(**RECIPES["fast"])
    model = network(config, 10, (32, 32, 3), dtype)
    model.compile(optimizer=make_optimizer(config, 1000), jit_compile=jit,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.2))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, 32, 32, 3)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    for _ in range(2):  # trace and warm up
        model.train_on_batch(x, y)
    out = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model.train_on_batch(x, y)
            n += batch
        out.append(n / (time.perf_counter() - t0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    from training.hardware import compute_dtype, describe

    print(f"machine: {describe()}; auto precision here: {compute_dtype('auto')}")
    base = statistics.median(rates("float32", args.batch, args.repeats, args.seconds))
    print(f"float32 (baseline)   batch {args.batch}: median {base:6.0f} images/s")
    bf16 = rates("mixed_bfloat16", args.batch, args.repeats, args.seconds)
    med = statistics.median(bf16)
    print(f"mixed_bfloat16       batch {args.batch}: median {med:6.0f} images/s   "
          f"x{med / base:4.2f} float32   runs: " + " ".join(f"{r:.0f}" for r in bf16))
    xla = rates("mixed_bfloat16", args.batch, args.repeats, args.seconds, jit=True)
    med = statistics.median(xla)
    print(f"mixed_bfloat16 + XLA batch {args.batch}: median {med:6.0f} images/s   "
          f"x{med / base:4.2f} float32   runs: " + " ".join(f"{r:.0f}" for r in xla))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
