"""The cost of a run: how long it will take and how much memory it will need, known before it starts; and
refusing a run that won't fit.

``nbart.estimate(task, *images, **params)`` combines

- a **cost model**: the forward FLOPs of the backbone's layers up to the deepest one the run uses (convolutions
  ``2 * kh * kw * cin * cout`` per output pixel, one per element elsewhere, plus the Gram matrices of style layers),
  counted once per backbone on a Keras network built without weights and scaled with each stage's pixels; summed over
  the schedule the run follows (dream: octaves x steps, tile by tile; style: each resolution's target features and
  ``steps`` optimizer iterations, L-BFGS evaluating the gradient at the start and :data:`LBFGS_EVALUATIONS` times
  per iteration);
- a **calibration** of this machine: seconds per GFLOP of a forward and backward pass and the fixed cost of a call,
  timed by :func:`probe` on a small image for each backbone and precision (2-5 s), plus the time to build and trace
  a network; kept per process and on disk beside the precision probe (``nbart_estimate.json`` in Keras' folder),
  keyed by CPU, TensorFlow version and thread count;
- a **memory model** of the peak resident set: what a process holds after importing TensorFlow (measured), the
  weights, the activations kept for the backward pass at the largest stage (or tile), the optimizer's state (scipy's
  L-BFGS-B works in float64 with ``maxcor`` corrections), with factors for what the allocator keeps, fitted to
  fresh-process peaks measured by ``benchmarks/bench_estimate.py`` (see :data:`MEMORY_FIT`).

Method: the FLOP-count and roofline-style calibration of e.g. Justus et al. 2018, "Predicting the computational
cost of deep learning models" (arXiv:1811.11880), reduced to one measured rate per backbone and precision.

``check_fits(task, images, params)`` compares the expected peak with :func:`nbart.resources.memory_limit` and
raises :class:`WontFit` (a ParamError) naming a ``max_size`` that fits; every run calls it before it starts, so
this module sits below the tasks (with :mod:`nbart.runs`) and plans their sizes with the tasks' own pure helpers
(:mod:`nbart.tiling`, :mod:`nbart.styleplan`). Nothing here runs at import; TensorFlow is imported only to
count a backbone's FLOPs the first time (then cached on disk) and by the probe.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbart import registry, resources, styleplan, tiling
from nbart.errors import ImageError, ParamError
from nbart.images import prepare
from nbart.optimizers import LBFGS_MAXCOR
from nbart.params import DreamParams, StyleParams
from nbart.precision import cpu_has_bf16, cpu_model, resolve_precision
from nbart.weights import keras_home, resolve

__all__ = ["Estimate", "estimate", "ExploreSettings", "check_fits", "WontFit", "probe", "calibration", "pace_hints",
           "network_table", "LBFGS_EVALUATIONS", "FORWARD_SHARE", "check_fast_fits", "fast_increment"]

CACHE_FILE = "nbart_estimate.json"
# Raised when the probe or the engine's step changes what a rate means (2: dreams flip their kernels ahead, a
# fixed ~0.3 s less a VGG16 call; 3: the late flips of style runs timed, ``late_flip_s``): a cached rate of another
# version is probed again.
PROBE_VERSION = 3
REFERENCE_SIDE = 512  # FLOPs and activations are counted on a square of this side, then scaled with pixels
# Gradient evaluations per L-BFGS iteration, besides the one at each stage's start (with nbart's tolerances off, the
# line search rarely evaluates twice). Measured with a counting wrapper around scipy's fmin_l_bfgs_b: 62 evaluations
# for 60 iterations (offline VGG16, golden_gate.jpg + starry_night.jpg, 96 px), and steps + stages exactly in the
# six L-BFGS settings of benchmarks/bench_estimate.py (1-5 iterations per stage).
LBFGS_EVALUATIONS = 1.02
# How a forward-only call (style targets, a dream's first means) compares with a forward and backward one.
FORWARD_SHARE = 0.4
# The memory model's factors, fitted by least squares to fresh-process peaks (``python benchmarks/bench_estimate.py
# --fit``; float32 on a 2-core AVX2 EPYC, see benchmarks/results/estimate-accuracy.md): the fixed bytes of a run
# over the TensorFlow baseline, bytes per weight byte (held at 2: Keras' float32 variables and the lean network's
# copy), and resident bytes per float32 activation element of the network cut after its deepest used layer (every
# layer's output counted once), per family: VGG (convolutions with fused ReLUs) and Inception (with BatchNorm).
# Refitted 2026-11-30 to the 17 rows of benchmarks/results/estimate-accuracy-quiet.md (the engine with L-BFGS's own
# step, VGG's banded block1 backward pass and kernels flipped ahead; quiet machine): each row left out of the fit is
# predicted within 6 %; the fit before (an older engine) over-estimated these rows by 8-101 %.
# A bfloat16 style run on a CPU without bfloat16 instructions (TensorFlow emulates it) holds more than a float32
# one: 1175 / 1708 / 2648 MiB at 512 / 768 / 1024 px against 1086 / 1582 / 2239 (VGG19, 8 iterations per size, AMD
# EPYC; benchmarks/results/memory-bf16-style.json). "bfloat16_emulated" is fitted to those rows (least squares,
# every other term as is: +3.3 % to -2.0 %, where 2.89 gave -0.3 % to -20.3 %; memory-fit-all-rows.txt); native
# bfloat16 keeps the value fitted before (no native row measured since).
MEMORY_FIT = {"fixed": 90.9e6, "per_weight": 2.0,
              "per_activation": {"vgg": {"float32": 2.89, "bfloat16": 2.89, "bfloat16_emulated": 4.65},
                                 "inception_v3": 2.98}}
# Time factors of the settings that change a step's work beyond the network (fitted by ``python
# benchmarks/bench_estimate.py --fit-time``, each against the plain run at the same size in the same process; see
# benchmarks/results/estimate-time-fit.md): ``w2`` weighs the Newton-Schulz matrix products of the W2 style loss
# (size-independent: (3 NEWTON_SCHULZ_ITERATIONS + 2) c x c products per style layer and evaluation);
# ``sliced_wasserstein`` the projections and sorts, in units of the Gram matrices' FLOPs they replace;
# ``masked_style`` the whole evaluation of a masked style run (its own traced step: the lean network's Gram
# junctions are not used), plus one Gram per region; ``dream_control`` a masked or guided dream's step (the mask
# rides as a fourth channel through its own traced functions); ``guide`` the guide's feature matching (a product of
# the layer's positions with the guide's, forward only).
# Measured at 160 px under a load of 21-33 (2 rounds; the pairs' times scattered by up to 1.5x, so these are
# rough): W2's products cost what their FLOPs say; sorting the projections costs ~19 Grams; the masked step ~1.4x
# the plain network's; a masked dream as a plain one; the guide's matching (argmax and gather) ~13x its FLOPs.
TIME_FIT = {"w2": 0.99, "sliced_wasserstein": 18.6, "masked_style": 1.43, "dream_control": 0.97, "guide": 12.7}
# Seconds a run's first step spends importing what nbart imports lazily, where this process hasn't yet: scipy's
# optimizers for L-BFGS (0.36-0.41 s on a quiet 2-core AVX2 EPYC, after TensorFlow, Keras and nbart, 3 fresh processes).
LAZY_IMPORT_S = {"scipy.optimize": 0.4}
FALLBACK_BASELINE = 620e6  # resident bytes after importing TensorFlow, Keras and nbart, if never measured

_lock = threading.RLock()
# held while a probe runs (seconds): the cache lock is not, so a run reading the rate (pace_hints) never waits for it
_probing = threading.Lock()


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to cost on this machine.

    ``seconds``: wall time of the run, from its start to its last step, building and tracing the network included
    (not the import of TensorFlow). ``peak_bytes``: peak resident set of a fresh process that runs it (``ru_maxrss``).
    ``increment_bytes``: how much more this process is expected to hold at the peak than now (a notebook already
    holding TensorFlow needs less than a fresh process). ``gflops``: forward and backward GFLOPs of the whole run.
    ``stages``: the (height, width) of each octave or resolution. ``calibrated``: False while this machine's rate is
    a default guess (no probe run yet).
    """

    task: str
    seconds: float
    peak_bytes: int
    increment_bytes: int
    gflops: float
    stages: tuple[tuple[int, int], ...]
    calibrated: bool = True
    parts: dict = field(default_factory=dict, compare=False)

    def short(self) -> str:
        """'about 40 s, 1.1 GB': for a label next to a Run button."""
        when = f"{self.seconds:.0f} s" if self.seconds < 120 else f"{self.seconds / 60:.1f} min"
        return f"about {when}{'' if self.calibrated else ' (uncalibrated)'}, {self.peak_bytes / 1e9:.1f} GB"

    def summary(self) -> str:
        """One line: 'about 40 s, 1.1 GB peak in a fresh process (0.5 GB more than this one holds now)'."""
        return (f"{self.short()} peak in a fresh process ({self.increment_bytes / 1e9:.1f} GB more than this one "
                f"holds now)")


# ---- the network: FLOPs, activations and weights per layer ----

def _table_key(bb: registry.Backbone) -> str:
    import keras

    return f"net|{bb.name}|keras {keras.__version__}"


def _count(bb: registry.Backbone) -> dict:
    """Cumulative forward GFLOPs, activation elements and weights (per REFERENCE_SIDE square) after each layer."""
    import keras

    net = getattr(keras.applications, bb.app)(include_top=False, weights=None,
                                              input_shape=(REFERENCE_SIDE, REFERENCE_SIDE, 3))
    names, flops, elements, params = [], [], [], []
    f = e = w = 0.0
    for layer in net.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        out = layer.output.shape
        n_out = math.prod(d for d in out[1:])
        if isinstance(layer, keras.layers.Conv2D):
            cin = layer.input.shape[-1]
            f += 2.0 * math.prod(layer.kernel_size) * cin * n_out
        else:
            f += n_out
        e += n_out
        w += layer.count_params()
        names.append(layer.name)
        flops.append(f / 1e9)
        elements.append(e)
        params.append(w)
    return {"layers": names, "gflops": flops, "elements": elements, "params": params,
            "channels": {n: int(c) for n, c in zip(bb.layers, bb.channels)}}


def _load_cache() -> dict:
    try:
        with open(os.path.join(keras_home(), CACHE_FILE)) as f:
            cached = json.load(f)
    except (OSError, ValueError):
        return {}
    return cached if isinstance(cached, dict) else {}


def _save_cache(key: str, value: Any) -> None:
    """Add ``key`` to the disk cache, written atomically; a read-only folder only costs the work next time."""
    path = os.path.join(keras_home(), CACHE_FILE)
    try:
        with _lock:
            cached = _load_cache()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump({**cached, key: value}, f)
            os.replace(tmp, path)
    except OSError:
        pass


@functools.cache
def network_table(backbone: str) -> dict:
    """The per-layer cost table of a backbone (see :func:`_count`), from the disk cache or counted once (builds the
    network without weights: about a second)."""
    bb = registry.get(backbone)
    key = _table_key(bb)
    cached = _load_cache().get(key)
    if isinstance(cached, dict) and cached.get("layers"):
        return cached
    table = _count(bb)
    _save_cache(key, table)
    return table


def _upto(table: dict, layers: tuple[str, ...]) -> tuple[float, float, float]:
    """(forward GFLOPs, activation elements, weights) of the network cut after the deepest of ``layers``, per
    REFERENCE_SIDE square."""
    i = max(table["layers"].index(name) for name in layers)
    return table["gflops"][i], table["elements"][i], table["params"][i]


# ---- the machine: calibration ----

def _machine_key(precision: str) -> str:
    import tensorflow as tf

    return f"{cpu_model()}|tf {tf.__version__}|{os.cpu_count()} cpus|{precision}"


def probe(backbone: str, precision: str = "float32", repeats: int = 5,
          cancel: Callable[[], bool] | None = None) -> dict | None:
    """Time this machine on ``backbone``: a forward and backward pass to its deepest default dream layer at two small
    sizes (random weights), interleaved ``repeats`` times, keeping the fastest. Returns seconds per forward GFLOP of
    a gradient call (``s_per_gflop``: the backward pass is counted in the rate), the fixed cost of a call
    (``call_s``), the time to build the network (``build_s``), to trace a function (``trace_s``: first call less a
    steady one), to run a traced function at an image size it has not seen (``new_shape_s``: oneDNN prepares its
    kernels per shape) and what a call of a network that flips its kernels in the backward pass costs more on the
    single-threaded executor (``late_flip_s``: as style runs call theirs; dreams flip theirs once, ahead).
    Takes 3-7 s on an idle 2-core EPYC (inception_v3's build is the longest part). ``cancel`` (optional): checked
    before each timed call; once it returns True the probe stops and returns None (a run started: a probe beside it
    would slow its steps and time a shared CPU)."""
    import numpy as np
    import tensorflow as tf

    from nbart import extractors

    bb = registry.get(backbone)
    layers = bb.dream_layers
    gflops, _, _ = _upto(network_table(backbone), layers)
    had = (bb.name, "none", precision) in extractors.cached_models
    t0 = time.perf_counter()
    ext = extractors.Extractor(bb, "none", precision, layers, flip_ahead=True)  # as a dream's
    build = time.perf_counter() - t0

    def traced(net: Any) -> Any:
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)], autograph=False)
        def gradient(image: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(image)
                loss = tf.add_n([tf.reduce_mean(a) for a in net(image[None])])
            return tape.gradient(loss, image)
        return gradient

    gradient = traced(ext)

    small = max(bb.min_size, 96)
    sides = (small, 2 * small)
    rng = np.random.default_rng(0)
    images = [tf.constant(rng.random((s, s, 3), np.float32)) for s in sides]

    def timed(image: Any, function: Any = gradient) -> float:
        if cancel is not None and cancel():
            raise _Cancelled
        t = time.perf_counter()
        function(image).numpy()
        return time.perf_counter() - t

    try:
        first = timed(images[0])  # trace, and the first shape
        first_big = timed(images[1])  # a new shape
        times: list[list[float]] = [[], []]
        for _ in range(repeats):
            for k, image in enumerate(images):
                times[k].append(timed(image))
        # style runs flip each convolution's kernel in every backward pass (their Prepared.flip_ahead is False: less
        # memory) and run their step on the single-threaded executor (nbart.executor), where the flips can't
        # overlap the forward pass: a fixed cost per call at any size, timed against the dream's call
        from nbart.executor import SingleThreaded

        late = SingleThreaded(traced(extractors.Extractor(bb, "none", precision, layers, flip_ahead=False)))
        timed(images[0], late)  # its trace
        pairs = [(timed(images[0], late), timed(images[0])) for _ in range(repeats)]
    except _Cancelled:
        return None
    finally:
        if not had:  # the probe's random-weight network must not stay in the run's caches
            extractors.cached_models.pop((bb.name, "none", precision), None)
    # the fastest repeat: the one least slowed by other work on the machine (as timeit advises), so a probe that
    # ran under a passing load is not kept as this machine's pace
    t_small, t_big = (float(np.min(t)) for t in times)
    late_flip = max(0.0, min(a for a, _ in pairs) - min(min(b for _, b in pairs), t_small))
    g_small, g_big = (gflops * (s / REFERENCE_SIDE) ** 2 for s in sides)
    rate = max((t_big - t_small) / (g_big - g_small), t_big / g_big * 0.5)
    call = max(0.0, t_big - rate * g_big)
    new_shape = max(0.0, first_big - t_big)
    return {"s_per_gflop": rate, "call_s": call, "build_s": build, "trace_s": max(0.0, first - t_small - new_shape),
            "new_shape_s": new_shape, "late_flip_s": late_flip}


class _Cancelled(Exception):
    """A probe's ``cancel()`` said stop."""


def _baseline_bytes() -> float:
    """Resident bytes of a process after importing TensorFlow, Keras and nbart: from the cache, else measured here
    (importing them) unless this process already holds a network (then a default)."""
    cached = _load_cache().get("baseline_bytes")
    if isinstance(cached, (int, float)):
        return float(cached)
    from nbart import extractors

    if "tensorflow" in sys.modules and len(extractors.cached_models):
        return FALLBACK_BASELINE  # this process holds networks already: its size is no baseline
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    measured = float(resources.current_rss())
    _save_cache("baseline_bytes", measured)
    return measured


_calibrations: dict[tuple[str, str], dict] = {}
# A cached rate measured while the load average per CPU was this much higher than now is measured again (when a
# probe may run): it was slowed by other work, and kept it would make every later estimate too long (2-5x seen).
STALE_LOAD = 1.0


def _load_per_cpu() -> float:
    """The 1-minute load average per CPU (runnable processes per core); 0 where the system doesn't say."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return 0.0


def _stale(rate: dict) -> bool:
    return float(rate.get("load_per_cpu", 0.0)) - _load_per_cpu() > STALE_LOAD


def calibration(backbone: str, precision: str = "float32", run_probe: bool = True,
                cancel: Callable[[], bool] | None = None) -> dict | None:
    """This machine's rate for ``backbone`` and ``precision`` (see :func:`probe`): from this process, the disk cache,
    or a probe run now (unless ``run_probe`` is False: then None). With ``run_probe``, a rate measured under a load
    per CPU more than :data:`STALE_LOAD` above the present one is measured again. The rate records the load it was
    measured under (``load_per_cpu``). ``cancel`` is passed to the probe: a cancelled probe gives None (nothing is
    kept). A call with ``run_probe=False`` never waits for a probe that another thread is running."""
    key = (backbone, precision)
    with _lock:
        known = _known(key, precision, run_probe)
        if known is not None or not run_probe:
            return known
    with _probing:  # one probe at a time; the rate read under _lock stays readable meanwhile
        with _lock:
            known = _known(key, precision, run_probe)  # another thread's probe may have measured it meanwhile
        if known is not None:
            return known
        load = _load_per_cpu()
        rate = probe(backbone, precision, cancel=cancel)
        if rate is None:
            return None
        measured = {**rate, "load_per_cpu": round(load, 2), "probe": PROBE_VERSION}
        with _lock:
            _save_cache(f"rate|{_machine_key(precision)}|{backbone}", measured)
            _calibrations[key] = measured
        return measured


def _known(key: tuple[str, str], precision: str, run_probe: bool) -> dict | None:
    """The rate of ``key`` this process or the disk cache holds, if valid (and, when a probe may run, not stale);
    the caller holds ``_lock``."""
    known = _calibrations.get(key)
    if known is not None and not (run_probe and _stale(known)):
        return known
    cached = _load_cache().get(f"rate|{_machine_key(precision)}|{key[0]}")
    # a rate without the load it was measured under (an older cache) can't be judged stale: measured again
    valid = (isinstance(cached, dict) and "new_shape_s" in cached and "load_per_cpu" in cached
             and cached.get("probe") == PROBE_VERSION)  # a rate of an older probe (or engine) is probed again
    if valid and not (run_probe and _stale(cached)):
        _calibrations[key] = cached
        return cached
    return None


def pace_hints(backbone: str, precision: str) -> dict[str, float]:
    """What this machine's cached calibration says of a run's steps, for :class:`nbart.events.Pace`: the extra cost
    of a stage at a new image size (``new_stage_s``) and the fixed cost of a step (``step_overhead_s``). Empty where
    no calibration is cached; never runs the probe (a run must not wait for it)."""
    rate = calibration(backbone, precision, run_probe=False)
    if rate is None:
        return {}
    return {"new_stage_s": float(rate["new_shape_s"]), "step_overhead_s": float(rate["call_s"])}


# ---- the schedules ----

def _dream_plan(image: Any, p: DreamParams) -> tuple[registry.Backbone, tuple[str, ...], list[tuple[int, int]]]:
    bb = resolve(p.model, p.weights).backbone
    start, _ = prepare(image, p.max_size, bb.min_size)
    names = tuple(spec.partition(":")[0] for spec in p.layers) if p.layers and bb.name == p.model else bb.dream_layers
    return bb, names, tiling.octave_sizes(start.size[1], start.size[0], p.octaves, p.octave_scale, bb.min_size)


def _guide_shape(guide: Any, side: int, min_size: int) -> tuple[int, int]:
    """(height, width) of the guide as a dream reads it (at most ``side`` px); a square of ``side`` px when the
    value names no readable image here (an image given in code: its description) or is a URL."""
    if not isinstance(guide, str) or guide.lower().startswith(("http://", "https://", "<")):
        return side, side  # not fetched for an estimate
    try:
        img, _ = prepare(guide, side, min_size)
        return img.size[1], img.size[0]
    except (ImageError, ParamError, OSError):
        return side, side


def _tiles(length: int, tile: int, min_size: int) -> list[int]:
    """Tile lengths along one side, as the dream splits it (:func:`nbart.tiling.tiles`)."""
    return [b - a for a, b in tiling.tiles(length, tile, min_size)]


def _style_plan(content: Any, style: Any, p: StyleParams) -> tuple[registry.Backbone, tuple[str, ...],
                                                                    tuple[str, ...], list[tuple[int, int]],
                                                                    list[tuple[int, int]]]:
    """(backbone, content layers, style layers, stage sizes, style sizes per stage), as style_run computes them
    (with the same :mod:`nbart.styleplan` functions)."""
    bb = resolve(p.model, p.weights).backbone
    img, original = prepare(content, max_size=max(p.resolution_sizes()))
    stages = styleplan.stage_sizes(img.size, original, p.max_size, p.sizes, bb.min_size, bb.name, p.ladder)
    sources = list(style) if isinstance(style, (list, tuple)) else [style]
    cap = max(bb.min_size, round(max(stages[-1]) * p.style_scale))
    shapes = [prepare(s, max_size=cap)[0].size[::-1] for s in sources]
    style_sizes = [styleplan.style_size(shape, stage, p.style_scale, bb.min_size)
                   for stage in stages for shape in shapes]
    same = bb.name == p.model
    content_layers = (p.content_layers if same and p.content_layers else bb.content_layers)
    style_layers = (p.style_layers if same and p.style_layers else bb.style_layers)
    return bb, content_layers, style_layers, stages, style_sizes


# ---- the estimate ----

def _gram_gflops(table: dict, style_layers: tuple[str, ...], pixels: float) -> float:
    """Forward GFLOPs of the Gram matrices: 2 * positions * channels^2 per layer (positions scale with the layer's
    stride; counted from its activation elements per channel)."""
    total = 0.0
    index = {n: i for i, n in enumerate(table["layers"])}
    for name in style_layers:
        i = index[name]
        channels = table["channels"].get(name, 1)
        elements = table["elements"][i] - (table["elements"][i - 1] if i else 0)
        positions = elements / channels * pixels / REFERENCE_SIDE ** 2
        total += 2.0 * positions * channels ** 2 / 1e9
    return total


def _w2_gflops(table: dict, style_layers: tuple[str, ...]) -> float:
    """Forward GFLOPs of the W2 loss's matrix products per evaluation: the inner ``C_s^(1/2) C C_s^(1/2)`` and the
    coupled Newton-Schulz iteration's three products per iteration, ``2 c^3`` each, per style layer."""
    from nbart.objectives import NEWTON_SCHULZ_ITERATIONS

    products = 3 * NEWTON_SCHULZ_ITERATIONS + 2
    return sum(products * 2.0 * table["channels"].get(name, 1) ** 3 for name in style_layers) / 1e9


def _guide_gflops(table: dict, layers: tuple[str, ...], pixels: float, guide_pixels: float) -> float:
    """Forward GFLOPs of a guided dream's matching per step: each layer's positions against the guide's, ``2 c``
    per pair."""
    total = 0.0
    index = {n: i for i, n in enumerate(table["layers"])}
    for name in layers:
        i = index[name]
        channels = table["channels"].get(name, 1)
        per_reference = (table["elements"][i] - (table["elements"][i - 1] if i else 0)) / channels
        positions = per_reference * pixels / REFERENCE_SIDE ** 2
        guide_positions = per_reference * guide_pixels / REFERENCE_SIDE ** 2
        total += 2.0 * positions * guide_positions * channels / 1e9
    return total


def _peak(backbone: str, weights_count: float, activations: float, optimizer_bytes: float,
          image_bytes: float, baseline: float, precision: str = "float32") -> float:
    fit = MEMORY_FIT
    per_activation = fit["per_activation"]["inception_v3" if backbone == "inception_v3" else "vgg"]
    if isinstance(per_activation, dict):  # per compute precision
        emulated = precision == "bfloat16" and not cpu_has_bf16()
        per_activation = per_activation.get(f"{precision}_emulated" if emulated else precision,
                                            per_activation.get(precision, per_activation["float32"]))
    weight_bytes = 2.0 if precision == "bfloat16" else 4.0
    return (baseline + fit["fixed"] + fit["per_weight"] * weight_bytes * weights_count + per_activation * activations
            + optimizer_bytes + image_bytes)


def estimate(task: str, *images: Any, probe_now: bool = True, **params: Any) -> Estimate:
    """The expected wall time and peak memory of a run (see the module docstring for the model).

    ``task``: "dream" (one image), "style" (content, then style image(s) as one image or a list) or "explore"
    (one image; ``params`` are :func:`nbart.explore`'s keywords, or ``params=`` an :class:`ExploreSettings`).
    ``images``: anything :func:`nbart.load_image` reads. ``params``: the task's parameters (:class:`DreamParams` or
    :class:`StyleParams` fields), or ``params=`` an instance. ``style_loss``, style ``mask`` s, a dream's ``mask``
    and ``guide`` add their own terms (:data:`TIME_FIT`). The first estimate for a backbone and precision on a
    machine runs :func:`probe` (2-5 s; ``probe_now=False`` gives an uncalibrated guess instead); later ones read the
    cache and take milliseconds. ParamError for a bad task, parameter or image count.
    """
    if task not in ("dream", "style", "explore"):
        raise ParamError(f"task must be dream, style or explore (got {task!r})")
    if task == "explore":
        if len(images) != 1:
            raise ParamError(f"explore takes 1 image (got {len(images)})")
        return _estimate_explore(images[0], probe_now, **params)
    expected = 1 if task == "dream" else 2
    if len(images) != expected:
        raise ParamError(f"{task} takes {expected} image{'s' if expected > 1 else ''} (got {len(images)})")
    given = params.pop("params", None)
    cls = DreamParams if task == "dream" else StyleParams
    p = cls.from_kwargs(given, **params)
    from nbart.quiet import tensorflow

    tensorflow()  # what follows imports Keras: TensorFlow first, without its native start-up lines
    baseline = _baseline_bytes()  # first: it measures the import of TensorFlow where it hasn't happened yet
    precision = resolve_precision(p.precision)
    if task == "dream":
        bb, layers, stages = _dream_plan(images[0], p)
        table = network_table(bb.name)
        fwd, elements, weights_count = _upto(table, layers)
        compute, largest = 0.0, 0.0
        calls, traces = 0, 2  # the means and the gradient functions
        shapes: set = set()
        for h, w in stages:
            tiles = [(a, b) for a in _tiles(h, p.tile_size, bb.min_size) for b in _tiles(w, p.tile_size, bb.min_size)]
            shapes.update(tiles)
            per_step = sum(a * b for a, b in tiles) / REFERENCE_SIDE ** 2 * fwd
            compute += p.steps * per_step
            calls += p.steps * len(tiles)
            largest = max(largest, max(a * b for a, b in tiles))
        compute += FORWARD_SHARE * stages[0][0] * stages[0][1] / REFERENCE_SIDE ** 2 * fwd  # the first means
        if p.mask or p.guide:  # nbart.control's traced functions: the mask as a fourth channel, the guide matched
            compute *= TIME_FIT["dream_control"]
        if p.guide:
            side = max(224, bb.min_size)  # the guide is read at most this size (nbart.deepdream)
            g = _guide_shape(p.guide, side, bb.min_size)
            compute += TIME_FIT["guide"] * sum(
                p.steps * _guide_gflops(table, layers, a * b, g[0] * g[1]) for a, b in stages)
        first = stages[0]
        calls += len(_tiles(first[0], p.tile_size, bb.min_size)) * len(_tiles(first[1], p.tile_size, bb.min_size))
        new_shapes = len(shapes) + len({(a, b) for a in _tiles(first[0], p.tile_size, bb.min_size)
                                        for b in _tiles(first[1], p.tile_size, bb.min_size)})
        h, w = stages[-1]
        activations = elements * largest / REFERENCE_SIDE ** 2
        image_bytes = 8 * h * w * 3 * 4.0  # the original, base, image, detail, gradient and composites, float32
        optimizer_bytes = 0.0
        gradient_calls = 0.0  # dreams flip their kernels ahead
        imports = 0.0
    else:
        bb, content_layers, style_layers, stages, style_sizes = _style_plan(images[0], images[1], p)
        table = network_table(bb.name)
        layers = content_layers + style_layers
        fwd, elements, weights_count = _upto(table, layers)
        # per stage: L-BFGS evaluates the start, then LBFGS_EVALUATIONS per iteration; Adam once per step
        evaluations = 1 + LBFGS_EVALUATIONS * p.steps if p.optimizer == "lbfgs" else p.steps
        compute, calls, traces, new_shapes = 0.0, 0, 2, 0  # the features and the loss-and-gradient functions
        gradient_calls = 0.0  # each flips the kernels late (see probe's late_flip_s)
        per_stage = max(1, len(style_sizes) // len(stages))
        regions = len(p.mask)
        for k, (h, w) in enumerate(stages):
            pixels = h * w
            grams = _gram_gflops(table, style_layers, pixels)
            if regions:  # guided Gram matrices, one per region, in the masked step
                grad = TIME_FIT["masked_style"] * pixels / REFERENCE_SIDE ** 2 * fwd + regions * grams
            elif p.style_loss == "w2":  # the Gram (second moment) and the matrix square roots
                grad = pixels / REFERENCE_SIDE ** 2 * fwd + grams + TIME_FIT["w2"] * _w2_gflops(table, style_layers)
            elif p.style_loss == "sliced_wasserstein":  # projections (a Gram's FLOPs) and their sorts
                grad = pixels / REFERENCE_SIDE ** 2 * fwd + TIME_FIT["sliced_wasserstein"] * grams
            else:
                grad = pixels / REFERENCE_SIDE ** 2 * fwd + grams
            targets = [pixels] + [a * b for a, b in style_sizes[k * per_stage:(k + 1) * per_stage]]
            compute += FORWARD_SHARE * sum(t / REFERENCE_SIDE ** 2 * fwd for t in targets)
            compute += evaluations * grad
            gradient_calls += evaluations
            calls += len(targets) + math.ceil(evaluations)
            new_shapes += 1 + len(set(style_sizes[k * per_stage:(k + 1) * per_stage]) - {(h, w)}) + 1
        h, w = stages[-1]
        n = h * w * 3
        activations = elements * h * w / REFERENCE_SIDE ** 2
        # scipy L-BFGS-B (float64): the workspace (2 maxcor + 5) n, x, gradient and the callback's copies; Adam:
        # the variable, its two moments and the gradient in float32
        optimizer_bytes = 8.0 * n * (2 * LBFGS_MAXCOR + 5 + 6) if p.optimizer == "lbfgs" else 4.0 * n * 5
        image_bytes = 6 * n * 4.0
        imports = sum(t for name, t in LAZY_IMPORT_S.items() if p.optimizer == "lbfgs" and name not in sys.modules)
    rate = calibration(bb.name, precision, run_probe=probe_now)
    calibrated = rate is not None
    rate = rate or {"s_per_gflop": 0.02, "call_s": 0.01, "build_s": 2.0, "trace_s": 1.0, "new_shape_s": 0.2}
    setup = rate["build_s"] + traces * rate["trace_s"] + new_shapes * rate["new_shape_s"] + imports
    seconds = (setup + calls * rate["call_s"] + gradient_calls * rate.get("late_flip_s", 0.0)
               + compute * rate["s_per_gflop"])
    peak = _peak(bb.name, weights_count, activations, optimizer_bytes, image_bytes, baseline, precision)
    if "tensorflow" in sys.modules:
        increment = peak - baseline  # nothing of the run assumed reusable, whatever this process already holds
    else:
        increment = peak - resources.current_rss()
    return Estimate(task, float(seconds), int(peak), int(max(0.0, increment)), float(compute * 3.0),
                    tuple(stages), calibrated,
                    parts={"weights_count": weights_count, "activation_elements": activations,
                           "optimizer_bytes": optimizer_bytes, "image_bytes": image_bytes,
                           "baseline_bytes": baseline, "calls": calls, "forward_gflops": compute, "rate": rate,
                           "setup_s": setup, "new_shapes": new_shapes})


# ---- the explorer (nbart.explorer): one small dream per layer or channel ----

EXPLORE_CHANNELS_PER_CALL = 8  # as nbart.explorer.CHANNELS_PER_CALL (this module sits below it)
EXPLORE_LAYER_BATCH_PIXELS = 16 * 128 * 128  # as nbart.explorer.LAYER_BATCH_PIXELS
# The share of MEMORY_FIT's bytes per activation element an exploration's cascaded call holds at its peak: fitted
# by least squares to the three explorations of benchmarks/bench_estimate.py (VGG16 every layer and 8 channels,
# InceptionV3 every mixed layer, 128 px: peaks within 6 % with it, 19-39 % over without); at 128 px the peak is
# mostly TensorFlow, the weights and MEMORY_FIT's fixed part.
EXPLORE_ACTIVATION_SHARE = 0.1
EXPLORE_DEFAULTS = {"model": "inception_v3", "weights": "auto", "layers": None, "channels": None, "size": 128,
                    "steps": 5, "step_size": 0.1, "jitter": 8, "seed": 0, "precision": "auto", "batch": None,
                    "cascade": True}


@dataclass(frozen=True)
class ExploreSettings:
    """What ``params=`` of ``estimate("explore", image, params=...)`` may be: :func:`nbart.explore`'s keywords
    (``settings`` as a dict), with ``max_size`` (the exploration's size) as the other tasks' params have it."""

    settings: dict = field(default_factory=dict)

    @property
    def max_size(self) -> int:
        return int(self.settings.get("size", EXPLORE_DEFAULTS["size"]))


def _estimate_explore(image: Any, probe_now: bool, **kwargs: Any) -> Estimate:
    """:func:`estimate` of ``nbart.explore(image, **kwargs)``: the explorer's calls (:func:`nbart.explorer._chunks`:
    the shallowest layer alone, then cascaded calls of several layers; channels 8 to a call), each ``steps``
    gradient calls in which every element costs the network cut after its own layer at the start image's size; one
    traced function (and one new shape) per call; the channel ranking's forward pass when ``channels`` is a count.
    Memory: the largest call's activations (its elements times the network cut after its deepest layer)."""
    given = kwargs.pop("params", None)
    if given is not None:
        kwargs = {**(given.settings if isinstance(given, ExploreSettings) else dict(given)), **kwargs}
    unknown = sorted(set(kwargs) - set(EXPLORE_DEFAULTS))
    if unknown:
        raise ParamError(f"explore has no parameter {unknown[0]!r}; choose from {', '.join(EXPLORE_DEFAULTS)}")
    a = {**EXPLORE_DEFAULTS, **kwargs}
    layers = (a["layers"],) if isinstance(a["layers"], str) else tuple(a["layers"] or ())
    try:  # the dream's rules for the shared settings (the explorer's size is the dream's max_size)
        p = DreamParams.from_kwargs(None, model=a["model"], weights=a["weights"], layers=layers, octaves=1,
                                    steps=a["steps"], step_size=a["step_size"], jitter=a["jitter"],
                                    max_size=a["size"], seed=a["seed"], precision=a["precision"])
    except ParamError as e:
        raise ParamError(str(e).replace("max_size", "size")) from None
    from nbart.quiet import tensorflow

    tensorflow()
    baseline = _baseline_bytes()
    bb = resolve(p.model, p.weights).backbone
    names = p.layers if p.layers and bb.name == p.model else bb.layers
    channels = a["channels"]
    start, _ = prepare(image, p.max_size, bb.min_size)
    pixels = start.size[0] * start.size[1] / REFERENCE_SIDE ** 2
    table = network_table(bb.name)
    order = {n: i for i, n in enumerate(table["layers"])}
    if channels is None:
        specs = sorted(names, key=order.__getitem__)  # shallow first, as the explorer runs them
        if a["batch"]:
            calls_of = [specs[k:k + a["batch"]] for k in range(0, len(specs), a["batch"])]
        else:  # the shallowest alone, then cascaded calls of EXPLORE_LAYER_BATCH_PIXELS (nbart.explorer._chunks)
            batch = max(1, EXPLORE_LAYER_BATCH_PIXELS // (start.size[0] * start.size[1]))
            calls_of = [specs[:1]] + [specs[k:k + batch] for k in range(1, len(specs), batch)]
    else:
        count = int(channels) if isinstance(channels, int) else len(list(channels))
        specs = [names[0]] * count
        batch = a["batch"] or EXPLORE_CHANNELS_PER_CALL
        calls_of = [specs[k:k + batch] for k in range(0, len(specs), batch)]
    compute, largest, chunks = 0.0, 0.0, []
    for chunk in calls_of:
        deepest = max(chunk, key=order.__getitem__)
        if a["cascade"]:  # each element only through its own part of the network
            compute += p.steps * pixels * sum(_upto(table, (n,))[0] for n in chunk)
        else:
            compute += p.steps * pixels * len(chunk) * _upto(table, (deepest,))[0]
        kept = sum(_upto(table, (n,))[1] for n in chunk) if a["cascade"] else len(chunk) * _upto(table, (deepest,))[1]
        largest = max(largest, kept * pixels)  # a cascade's element keeps only its own part of the network
        chunks.append(len(chunk))
    if isinstance(channels, int):  # the most active channels: one forward pass of the layer first
        compute += FORWARD_SHARE * pixels * _upto(table, (names[0],))[0]
    calls = p.steps * len(chunks)
    traces = len(chunks) if channels is None else len(set(chunks))  # one traced step per call's layers
    _, _, weights_count = _upto(table, tuple(names))
    rate = calibration(bb.name, resolve_precision(p.precision), run_probe=probe_now)
    calibrated = rate is not None
    rate = rate or {"s_per_gflop": 0.02, "call_s": 0.01, "build_s": 2.0, "trace_s": 1.0, "new_shape_s": 0.2}
    setup = rate["build_s"] + traces * (rate["trace_s"] + rate["new_shape_s"])
    seconds = setup + calls * rate["call_s"] + compute * rate["s_per_gflop"]
    h, w = start.size[1], start.size[0]
    image_bytes = 8 * max(chunks) * h * w * 3 * 4.0  # the batch, its gradient and the step's temporaries
    largest *= EXPLORE_ACTIVATION_SHARE  # the elements the memory model counts (see EXPLORE_ACTIVATION_SHARE)
    peak = _peak(bb.name, weights_count, largest, 0.0, image_bytes, baseline)
    increment = peak - baseline if "tensorflow" in sys.modules else peak - resources.current_rss()
    return Estimate("explore", float(seconds), int(peak), int(max(0.0, increment)), float(compute * 3.0),
                    ((h, w),), calibrated,
                    parts={"weights_count": weights_count, "activation_elements": largest, "optimizer_bytes": 0.0,
                           "image_bytes": image_bytes, "baseline_bytes": baseline, "calls": calls,
                           "forward_gflops": compute, "rate": rate, "setup_s": setup, "new_shapes": traces,
                           "objectives": len(specs)})


# ---- refusing runs that won't fit ----

def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


class WontFit(ParamError):
    """A run refused because its expected peak exceeds what this process may use (see :func:`check_fits`).

    ``needed``: bytes the run is expected to add to this process at its peak; ``limit``: the
    :class:`~nbart.resources.Limit` it exceeds; ``fits``: the parameter changes that fit by the model
    (``{"max_size": 640}``, or ``{"sizes": (256, 320)}`` for a style run with explicit sizes), empty when none does.
    Its message is one line in the API's words; :attr:`headline` is the part without advice, for front-ends that
    word the way forward in their own terms (flags, controls).
    """

    def __init__(self, task: str, needed: int, limit: resources.Limit, fits: dict[str, Any], peak: int | None = None):
        self.task, self.needed, self.limit, self.fits, self.peak = task, needed, limit, dict(fits), peak
        changes = ", ".join(f"{k}={v!r}" for k, v in self.fits.items())
        advice = f"try {changes}, or force=True" if fits else "no max_size fits; free memory, or force=True"
        super().__init__(f"{self.headline}; {advice}")

    @property
    def headline(self) -> str:
        """'this dream needs about 4.1 GB more than this process holds now (a 4.7 GB peak), this process may use
        2.0 GB (cgroup limit)': the increment is what is compared; the peak is the figure estimates show."""
        peak = f" (a {_gb(self.peak)} peak)" if self.peak else ""
        return (f"this {self.task} needs about {_gb(self.needed)} more than this process holds now{peak}, this process "
                f"may use {_gb(self.limit.bytes)} ({self.limit.source})")


def check_fits(task: str, images: tuple | list, params: Any = None, force: bool = False,
               limit: resources.Limit | None = None) -> Estimate | None:
    """Refuse a run whose expected peak (the increment over this process) exceeds what this process may use.

    Every run of the engine calls it before it starts (``nbart.dream_run``, ``nbart.style_run`` and all that use
    them); the CLI and the studios word its refusal for their users. ``images`` as for :func:`estimate` (the run
    passes its prepared images: no second download); ``params`` a Params instance or a dict of keywords; ``force``
    (or ``params.force``) skips the check. ``limit`` defaults to :func:`nbart.resources.memory_limit`. Returns the
    estimate (None when forced or no limit is known); raises :class:`WontFit` (a ParamError) with one line naming
    the largest ``max_size`` (a multiple of 32; ``sizes`` when the run names them) that fits by the model, e.g.
    "this dream needs about 4.1 GB, this process may use 2.0 GB (cgroup limit); try max_size=640, or force=True".
    Uncalibrated: it never runs the timing probe, and takes milliseconds once the backbone's layer table is cached.
    """
    if force or bool(getattr(params, "force", False)) or (isinstance(params, dict) and params.get("force")):
        return None
    limit = limit if limit is not None else resources.memory_limit()
    if limit is None:
        return None
    kwargs = dict(params) if isinstance(params, dict) else ({"params": params} if params is not None else {})
    est = estimate(task, *images, probe_now=False, **kwargs)
    if est.increment_bytes <= limit.bytes:
        return est
    cls = DreamParams if task == "dream" else StyleParams
    base = cls.from_kwargs(kwargs.pop("params", None), **kwargs)
    explicit = task == "style" and bool(base.sizes)
    top = max(base.sizes) if explicit else base.max_size

    def changes(size: int) -> dict[str, Any]:
        if explicit:  # the run's own coarse sizes below the new top one
            return {"sizes": tuple(s for s in base.sizes if s < size) + (size,)}
        return {"max_size": size}

    def fits(size: int) -> bool:
        try:
            trial = estimate(task, *images, probe_now=False, params=base.replace(**changes(size)))
        except (ParamError, ImageError):  # too small for the backbone or the image's shape
            return False
        return trial.increment_bytes <= limit.bytes

    # the largest multiple of 32 below the asked size that fits: the peak grows with the size, so bisect
    low, high = max(32, registry.get(base.model).min_size), top - 1
    low = -(-low // 32) * 32
    best = None
    lo, hi = low // 32, high // 32
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid * 32):
            best, lo = mid * 32, mid + 1
        else:
            hi = mid - 1
    raise WontFit(task, est.increment_bytes, limit, changes(best) if best else {}, peak=est.peak_bytes)


# Fast style (nbart.fast: one onnxruntime forward pass, no TensorFlow): what a run adds to this process grows with
# the content's pixels. Fitted to fresh-process peaks (ru_maxrss less the RSS before the call) of nbart.fast_style on
# a 4:3 photo at long sides 256, 512, 1024 and 2048 px: 79, 102, 248 and 806 MB (2-core AVX2 EPYC, onnxruntime's
# CPU provider); the line below is within 10 % of each.
FAST_FIT = {"fixed": 60e6, "per_pixel": 240.0}


def fast_increment(width: int, height: int) -> int:
    """Bytes a fast stylization of a ``width`` x ``height`` px content is expected to add to this process."""
    return int(FAST_FIT["fixed"] + FAST_FIT["per_pixel"] * width * height)


def check_fast_fits(size: tuple[int, int], params: Any, limit: resources.Limit | None = None) -> None:
    """:func:`check_fits` for a fast stylization of a content prepared at ``size`` (width, height) px with
    ``params`` (a FastStyleParams): :class:`WontFit` naming the largest ``max_size`` (a multiple of 32) that fits,
    unless ``params.force``."""
    if getattr(params, "force", False):
        return
    limit = limit if limit is not None else resources.memory_limit()
    if limit is None:
        return
    width, height = size
    needed = fast_increment(width, height)
    if needed <= limit.bytes:
        return
    long_side = max(width, height)
    best = None
    for side in range(long_side - long_side % 32, 63, -32):  # arithmetic only: no estimate to run
        if fast_increment(*(max(1, round(d * side / long_side)) for d in size)) <= limit.bytes:
            best = side
            break
    raise WontFit("fast style", needed, limit, {"max_size": best} if best else {})
