"""Which compute precision pays on this machine.

bfloat16 matrix units (AVX512-BF16, AMX-BF16) roughly double CPU training and inference speed
under Keras's ``mixed_bfloat16`` policy; without them bfloat16 is emulated and slower than float32.
"""
from __future__ import annotations

import functools
import platform
from pathlib import Path

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def accelerator() -> str:
    """"gpu" when the active Keras backend computes on a GPU, else "cpu"."""
    import keras

    if keras.backend.backend() == "jax":
        import jax
        return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    if keras.backend.backend() == "torch":
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"  # the app ships tensorflow-cpu


def compute_dtype(requested: str = "auto") -> str:
    """Keras dtype policy: "mixed_bfloat16" on a GPU or a CPU with bf16 units, else "float32"."""
    if requested != "auto":
        return requested
    if accelerator() == "gpu" or BF16_CPU_FLAGS[0] in cpu_flags() or BF16_CPU_FLAGS[1] in cpu_flags():
        return "mixed_bfloat16"
    return "float32"


def describe() -> str:
    """One line naming the machine, for benchmark output and sidecars."""
    bf16 = [f for f in BF16_CPU_FLAGS if f in cpu_flags()]
    import os
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"bf16 units: {', '.join(bf16) or 'none'}")
