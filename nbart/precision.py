"""Compute precision: float32, or bfloat16 where this machine runs it faster.

``precision="auto"`` picks bfloat16 only where it wins: a GPU of compute capability 8.0 or more, or a CPU with
native bfloat16 (AVX512_BF16/AMX) on which a short timing probe finds it at least 15% faster (emulated bfloat16 is
slower than float32). The probe's ratio is cached per process and on disk.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

from nbart.weights import keras_home

__all__ = ["resolve_precision", "bf16_speedup", "probe_bf16", "cpu_has_bf16", "cpu_model"]

MIN_SPEEDUP = 1.15  # bfloat16 must be at least this much faster than float32 for "auto" to take it


@functools.lru_cache(maxsize=1)  # the CPU doesn't change; every estimate asks (nbart.cost._peak)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (the avx512_bf16 or amx_bf16 flags of /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(precision: str) -> str:
    """'float32' or 'bfloat16'. 'auto' picks bfloat16 only where it wins on this machine: a GPU of compute
    capability 8.0 or more (Ampere and later run bfloat16 natively), or a CPU with AVX512_BF16/AMX on which a short
    timing probe (:func:`bf16_speedup`) finds it at least 15% faster; emulated bfloat16 is slower than float32."""
    if precision != "auto":
        return precision
    from nbart.quiet import tensorflow
    tf = tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        except Exception:  # details unavailable: trust the GPU
            capability = (8, 0)
        return "bfloat16" if tuple(capability) >= (8, 0) else "float32"
    if not cpu_has_bf16():
        return "float32"
    return "bfloat16" if bf16_speedup() >= MIN_SPEEDUP else "float32"


@functools.cache
def bf16_speedup() -> float:
    """How much faster bfloat16 convolutions (forward and backward) run than float32 on this CPU: a ratio > 1
    means faster. Measured once (about half a second, :func:`probe_bf16`) and remembered per process
    (``bf16_speedup.cache_clear()`` forgets it) and in Keras' cache folder (``nbart_precision.json``), keyed by CPU,
    TensorFlow version and thread count, so later kernels skip the probe."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    key = f"{cpu_model()}|tf {tf.__version__}|{os.cpu_count()} cpus"
    path = os.path.join(keras_home(), "nbart_precision.json")
    try:
        with open(path) as f:
            cached = json.load(f)
    except (OSError, ValueError):
        cached = {}
    cached = cached if isinstance(cached, dict) else {}
    if isinstance(cached.get(key), (int, float)):
        return float(cached[key])
    speedup = probe_bf16()
    try:  # written atomically; a read-only cache folder only costs the probe next time
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({**cached, key: round(speedup, 3)}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return speedup


def cpu_model() -> str:
    """The CPU's model name (for the probe's cache key and benchmark reports)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def probe_bf16(repeats: int = 5) -> float:
    """Time two 3x3 convolutions (64 channels, 64x64 px) forward and backward in each dtype, interleaved; the
    ratio of the medians, float32 over bfloat16."""
    import time

    import numpy as np

    from nbart.quiet import tensorflow
    tf = tensorflow()

    rng = np.random.default_rng(0)
    x32 = tf.constant(rng.standard_normal((1, 64, 64, 64)), tf.float32)
    k32 = tf.constant(rng.standard_normal((3, 3, 64, 64)) * 0.05, tf.float32)

    def make(dtype: Any) -> Any:
        x, k = tf.cast(x32, dtype), tf.cast(k32, dtype)

        @tf.function
        def step() -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))
                y = tf.nn.conv2d(y, k, 1, "SAME")
                loss = tf.reduce_mean(tf.cast(y, tf.float32))
            return tape.gradient(loss, x)

        step(), step()  # trace and warm up
        return step

    steps = {"float32": make(tf.float32), "bfloat16": make(tf.bfloat16)}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step().numpy()
            times[name].append(time.perf_counter() - t0)
    return float(np.median(times["float32"]) / max(np.median(times["bfloat16"]), 1e-9))
