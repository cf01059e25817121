"""This CPU's peak arithmetic rate: float32 FMA and bfloat16 dot products, every core busy.

    python benchmarks/cpu_peak.py [--runs 5] [--seconds 0.5]

A few lines of C (compiled here with gcc; nothing is committed but this script) keep twelve
independent vector accumulators busy so that only the FMA units limit the rate: no memory
traffic, no dependency chains. This is the hardware's ceiling for any float32 network, above
what a matrix product (``benchmarks/model_throughput.py``) reaches. Prints the median GFLOP/s of
``--runs`` runs on one thread and on every core, for 512-bit and 256-bit float32 FMA and, where
the CPU has AVX512-BF16, the bfloat16 dot product (``vdpbf16ps``, float32 accumulate).

The baseline, measured in the same run, is one thread's widest float32 FMA rate; every other
line prints its ratio to it. No thresholds. Runs on x86-64 with AVX2 and FMA (AVX-512 kernels
only where the CPU has AVX-512).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Each kernel runs `iters` rounds of 12 independent vector operations and prints the flops done
# and the seconds taken (CLOCK_MONOTONIC); the accumulators are summed into the result so the
# compiler cannot drop the loop.
SOURCE = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long iters;
static const char *kind;
static volatile float sink;

#define TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define SUM(i) total += _mm512_reduce_add_ps(c##i);

static void *run(void *arg) {
    (void)arg;
    float total = 0;
    if (0) {
#ifdef __AVX512F__
    } else if (!strcmp(kind, "fp32x512")) {
        __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
#define DECL(i) __m512 c##i = _mm512_set1_ps((float)i);
        TWELVE(DECL)
        for (long n = 0; n < iters; n++) {
#define FMA(i) c##i = _mm512_fmadd_ps(a, c##i, b);
            TWELVE(FMA)
        }
        TWELVE(SUM)
#endif
    } else if (!strcmp(kind, "fp32x256")) {
        __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
#define DECL8(i) __m256 c##i = _mm256_set1_ps((float)i);
        TWELVE(DECL8)
        for (long n = 0; n < iters; n++) {
#define FMA8(i) c##i = _mm256_fmadd_ps(a, c##i, b);
            TWELVE(FMA8)
        }
        float out[8];
#define SUM8(i) _mm256_storeu_ps(out, c##i); for (int k = 0; k < 8; k++) total += out[k];
        TWELVE(SUM8)
#if defined(__AVX512BF16__) && defined(__AVX512F__)
    } else if (!strcmp(kind, "bf16dot")) {
        __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);
#define DECLB(i) __m512 c##i = _mm512_set1_ps((float)i);
        TWELVE(DECLB)
        for (long n = 0; n < iters; n++) {
#define DOT(i) c##i = _mm512_dpbf16_ps(c##i, a, b);
            TWELVE(DOT)
        }
        TWELVE(SUM)
#endif
    }
    sink = total;
    return NULL;
}

int main(int argc, char **argv) {
    kind = argv[1];
    int threads = atoi(argv[2]);
    iters = atol(argv[3]);
    /* flops per loop round: 12 vectors x lanes x 2 (multiply and add) */
    double per = !strcmp(kind, "fp32x256") ? 12 * 8 * 2 : !strcmp(kind, "bf16dot") ? 12 * 32 * 2 : 12 * 16 * 2;
    pthread_t *t = malloc(sizeof *t * (threads > 0 ? threads : 1));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("%.0f %.9f\n", per * iters * threads, s);
    free(t);
    return 0;
}
"""


def kernels() -> list[tuple[str, str]]:
    """The kernels this CPU can run: (kind, label). x86-64 only (AVX2 and FMA at least)."""
    from training.hardware import cpu_flags

    flags = cpu_flags()
    if platform.machine().lower() not in ("x86_64", "amd64") or not {"avx2", "fma"} <= flags:
        return []
    found = [("fp32x256", "float32 FMA, 256-bit")]
    if "avx512f" in flags:
        found.insert(0, ("fp32x512", "float32 FMA, 512-bit"))
        if "avx512_bf16" in flags:
            found.append(("bf16dot", "bfloat16 dot product (vdpbf16ps)"))
    return found


def build(folder: Path, kinds) -> Path:
    """Compile the kernels ``kinds`` need (no AVX-512 code for a CPU without it)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise SystemExit("needs gcc (or cc) on PATH to build the FMA kernels")
    source = folder / "peak.c"
    source.write_text(SOURCE)
    binary = folder / "peak"
    flags = ["-O2", "-mfma", "-mavx2"]
    flags += ["-mavx512f"] if "fp32x512" in kinds else []
    flags += ["-mavx512bf16"] if "bf16dot" in kinds else []
    subprocess.run([gcc, *flags, "-pthread", str(source), "-o", str(binary)], check=True)
    return binary


def gflops(binary: Path, kind: str, threads: int, seconds: float) -> float:
    """GFLOP/s of one run lasting about ``seconds`` (the loop count is calibrated first)."""
    iters = 1_000_000
    while True:
        flops, took = map(float, subprocess.run([str(binary), kind, str(threads), str(iters)],
                                                capture_output=True, text=True, check=True).stdout.split())
        if took >= seconds:
            return flops / took / 1e9
        iters = int(iters * min(10.0, 1.2 * seconds / max(took, 1e-6)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of each run")
    args = parser.parse_args()

    from training.hardware import describe

    print(f"machine: {describe()}")
    kinds = kernels()
    if not kinds:
        raise SystemExit("these kernels need an x86-64 CPU with AVX2 and FMA")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        binary = build(Path(folder), [kind for kind, _ in kinds])
        base = None
        for kind, label in kinds:
            for threads in sorted({1, cores}):
                rate = statistics.median(gflops(binary, kind, threads, args.seconds)
                                         for _ in range(args.runs))
                base = base or rate
                print(f"{label:36s} {threads} thread{'s' if threads > 1 else ' '}: median "
                      f"{rate:7.1f} GFLOP/s  x{rate / base:4.2f} baseline", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
