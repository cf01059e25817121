"""Would Winograd convolutions make exact float32 prediction faster? Measured per layer.

    python benchmarks/winograd_conv.py [--batch 64] [--repeats 7]

The bundled network with flip TTA already predicts at the rate of this CPU's float32 matrix
product (``benchmarks/model_throughput.py``), so only fewer multiplications could make float32
prediction faster without changing its results. Winograd's F(4x4, 3x3) computes a 3x3
convolution with 36 multiplications per 4x4 output tile and channel pair instead of 144 (up to
4x fewer), at the price of transforming every input and output tile. This script builds that
algorithm from TensorFlow ops (tile extraction, two small transform products, one batched matrix
product per tile position) and times it against ``tf.nn.conv2d`` on each 3x3 convolution of the
bundled network, at the shapes the network sees them, on random inputs.

Baseline, measured in the same run: ``tf.nn.conv2d`` (oneDNN) on the same input and kernel.
Prints, per layer, both medians, their ratio and the largest absolute difference of the outputs,
then the sum over the network's convolutions taking the faster of the two for each. No thresholds.
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

# Lavin & Gray's F(4x4, 3x3) with interpolation points 0, +-1, +-2 (and infinity).
BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
     [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


def winograd_conv(tf, x, u, size: int, cin: int, cout: int):
    """A 3x3 'same' convolution of ``x`` (N, size, size, cin); ``u``: the (36, cin, cout)
    transformed kernel. Output tiles of 4x4 cover the map; the extra rows and columns are cut."""
    tiles = -(-size // 4)
    out = 4 * tiles
    x = tf.pad(x, [[0, 0], [1, out + 1 - size], [1, out + 1 - size], [0, 0]])
    n = tf.shape(x)[0]
    p = n * tiles * tiles
    bt, at = tf.constant(BT, tf.float32), tf.constant(AT, tf.float32)
    d = tf.image.extract_patches(x, [1, 6, 6, 1], [1, 4, 4, 1], [1, 1, 1, 1], "VALID")
    d = tf.transpose(tf.reshape(d, [p, 6, 6, cin]), [1, 2, 0, 3])           # rows, cols, tile, c
    d = tf.reshape(tf.matmul(bt, tf.reshape(d, [6, 6 * p * cin])), [6, 6, p * cin])
    d = tf.reshape(tf.matmul(bt[None], d), [36, p, cin])                     # B^T d B per tile
    m = tf.matmul(d, u)                                                      # (36, tiles, cout)
    m = tf.reshape(tf.matmul(at, tf.reshape(m, [6, 6 * p * cout])), [4, 6, p * cout])
    m = tf.reshape(tf.matmul(at[None], m), [4, 4, n, tiles, tiles, cout])    # A^T m A
    m = tf.reshape(tf.transpose(m, [2, 3, 0, 4, 1, 5]), [n, out, out, cout])
    return m[:, :size, :size, :]


def conv_shapes(model):
    """(name, map size, in channels, out channels) of each 3x3 'same' convolution."""
    shapes = []
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D" and tuple(layer.kernel_size) == (3, 3):
            _, h, w, c = layer.input.shape
            shapes.append((layer.name, int(h), int(c), int(layer.filters)))
    return shapes


def median_time(fn, x, repeats: int) -> float:
    fn(x).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="images per call (a flip-TTA "
                        "pass of 32 images is 64)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from training.checkpoints import load_checkpoint
    from training.hardware import describe
    from training.paths import bundled_checkpoint

    print(f"machine: {describe()}")
    model, _ = load_checkpoint(bundled_checkpoint())
    rng = np.random.default_rng(0)
    direct_total = best_total = 0.0
    for name, size, cin, cout in conv_shapes(model):
        x = tf.constant(rng.standard_normal((args.batch, size, size, cin)).astype(np.float32))
        kernel = model.get_layer(name).kernel.numpy().astype(np.float64)
        u = np.einsum("ij,jkab,lk->ilab", np.array(G), kernel, np.array(G))
        u = tf.constant(u.reshape(36, cin, cout).astype(np.float32))
        k = tf.constant(kernel.astype(np.float32))
        direct = tf.function(lambda x, k=k: tf.nn.conv2d(x, k, 1, "SAME"))
        wino = tf.function(lambda x, u=u, s=size, a=cin, b=cout: winograd_conv(tf, x, u, s, a, b))
        error = float(np.abs(direct(x).numpy() - wino(x).numpy()).max())
        t_direct, t_wino = median_time(direct, x, args.repeats), median_time(wino, x, args.repeats)
        direct_total += t_direct
        best_total += min(t_direct, t_wino)
        print(f"{name:14s} {size:2d}x{size:<2d} {cin:3d}->{cout:3d}  conv2d {t_direct * 1e3:6.1f} ms"
              f"  Winograd {t_wino * 1e3:6.1f} ms  x{t_direct / t_wino:4.2f}  "
              f"largest difference {error:.1e}")
    print(f"all 3x3 convolutions, batch {args.batch}: conv2d {direct_total * 1e3:.1f} ms, the "
          f"faster of the two per layer {best_total * 1e3:.1f} ms (x{direct_total / best_total:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
