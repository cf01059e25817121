"""Batch prediction throughput of checkpoints, as the app predicts (flip TTA, float32,
``training.predict.probabilities``): what bounds a dropped folder once decoding is off the
critical path.

    python benchmarks/model_throughput.py [--checkpoint FILE ...] [--images 2048] [--repeats 3]

Baseline, measured in the same run: the bundled checkpoint. Each further ``--checkpoint`` is
timed the same way on the same random uint8 images; prints the median images/s over
``--repeats`` passes, parameters, and the ratio to the bundled checkpoint. No thresholds.

The hardware's ceiling, measured in the same run: the median rate of a 2048x2048 float32 matrix
product (``tf.matmul``, oneDNN, every core), against which each network's achieved rate is put
(its multiply-adds per image, counted from its layers, times two for a flip-TTA pass), and the
CPU's float32 FMA peak (``benchmarks/cpu_peak.py``, where gcc is present) with the rate it allows
each network at most.
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
    peak = matmul_gflops()
    print(f"float32 matrix product (2048x2048, tf.matmul): median {peak:6.1f} GFLOP/s "
          "(this machine's ceiling for float32 networks)")
    fma_peak = float32_fma_peak()
    if fma_peak:
        print(f"float32 FMA peak (benchmarks/cpu_peak.py, every core): {fma_peak:6.1f} GFLOP/s "
              "(no float32 network can compute faster)")
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
        macs = multiply_adds(model) * (2 if info.tta == "hflip" else 1)
        achieved = 2 * macs * rate / 1e9
        print(f"{label:28s} {model.count_params() / 1e6:5.2f} M params  TTA {info.tta:5s}  "
              f"median {rate:7.1f} images/s   x{rate / base:4.2f} bundled   "
              f"{macs / 1e6:5.0f} M multiply-adds/image: {achieved:5.1f} GFLOP/s = "
              f"{achieved / peak:4.0%} of the matrix product", flush=True)
        if fma_peak:
            print(f"{'':28s} at most {fma_peak * 1e9 / (2 * macs):7.1f} images/s at the FMA peak "
                  f"(running at {achieved / fma_peak:4.0%} of it)", flush=True)
    return 0


def float32_fma_peak() -> float | None:
    """Median float32 FMA GFLOP/s on every core (the widest vectors the CPU has), or None where
    it cannot be measured (no C compiler, not x86-64 with AVX2/FMA, a failed build)."""
    import shutil
    import subprocess
    import tempfile

    import cpu_peak

    kinds = [kind for kind, _ in cpu_peak.kernels() if kind.startswith("fp32")][:1]
    if not kinds or not (shutil.which("gcc") or shutil.which("cc")):
        return None
    try:
        with tempfile.TemporaryDirectory() as folder:
            binary = cpu_peak.build(Path(folder), kinds)
            return statistics.median(cpu_peak.gflops(binary, kinds[0], os.cpu_count() or 1, 0.5)
                                     for _ in range(3))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(float32 FMA peak not measured: {exc})")
        return None


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Median float32 GFLOP/s of an n x n matrix product, the best case for this CPU's FMA units."""
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        product(a, b).numpy()
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def multiply_adds(model) -> int:
    """Multiply-adds of one image through the model's convolutions and dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


if __name__ == "__main__":
    raise SystemExit(main())
