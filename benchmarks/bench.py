"""nbart against the TensorFlow tutorials: speed, time to first preview, live-preview cost, peak memory, quality.

Run from the repository root (the full default run takes 10-20 minutes on 2 CPU cores)::

    python benchmarks/bench.py                    # dream and style at 256 and 512 px; extrapolates the 1000 Adam steps
    python benchmarks/bench.py --full-style       # also runs the tutorial's full 1000 Adam steps at 512 px (~40 min)
    python benchmarks/bench.py --quick            # tiny sizes, a few seconds: checks that the benchmark runs

Method
------
- One process, one image per size (``sample:grace_hopper``, and ``sample:starry_night`` as the style), the same
  sizes and schedules for nbart and the baseline (``benchmarks/tutorial.py``: the tutorials' algorithms, float32).
- Speed: every variant is traced first (one short warm-up run), then the variants run in turn, their order rotated
  each repeat; a repeat's ratio is nbart/baseline of that repeat and the table quotes the median over repeats, so
  that the load of a shared machine cancels out as far as possible. Timings are wall-clock (``perf_counter``).
  Dream steps/s: one octave at the full size, ``--dream-steps`` steps, nbart's engine (``dream_run``) against the
  tutorial's ``TiledGradients`` loop (one call per step) and its in-graph ``DeepDream`` loop. "Default schedule":
  nbart's default dream (4 octaves x 10 steps, scale 1.4) against the tutorial's octave loop over the same sizes.
  Style iterations/s: nbart's L-BFGS iterations against the tutorial's Adam steps, at one size.
- Quality (dream): the target layers' activation gain (mean activation after / before, measured in float32) of
  nbart's automatic precision against a float32 run, same image, seed and weights: the offline VGG16 (real
  features) and InceptionV3 with shared random weights.
- Style loss target (at the largest size): the tutorial's loss (Gram MSE per style layer, content MSE) without
  its total variation (nbart's is a mean square, the tutorial's a sum of absolute differences), re-weighed to
  nbart's default balance (style 30 : content 1 relative to the targets' mean squares) while keeping the tutorial's
  content weight 1e4 (``TutorialStyle.rebalance``): the tutorial's own weights were tuned for ImageNet VGG19, and on
  the offline VGG16 (real features, used here) they make the content image itself nearly optimal. The tutorial's
  Adam and nbart's default schedule (L-BFGS, coarse-to-fine ``sizes``, automatic precision, ``tv_weight=0``) then
  minimize the same loss; both are scored by it in float32 on output-size images, the clock stopped while
  scoring. The tutorial's Adam runs ``--style-loss-steps`` steps (1000 with ``--full-style``); when fewer, its
  1000-step wall time is extrapolated from its measured step time, and its 1000-step loss from a fit
  ``a + b * t**-c`` to its measured loss curve; the table says which figures are extrapolated.
- Live preview: nbart's default dream at the largest size with a consumer that makes a 384 px JPEG (quality 80)
  at most 5 times a second (``nbart.events.preview_jpeg``, as the studios do); its cost is the time spent making
  previews over the run's wall time.
- Time to first preview and peak memory: each in a fresh subprocess (``--child``), so peak RSS
  (``VmHWM``) is that run's alone. Time to first preview counts from the call that starts the run (model
  building and tracing included; importing TensorFlow and downloading weights excluded) to the first preview's
  JPEG bytes. The tutorial's first preview is its first ``display`` (octave loop: after the first step; style:
  after its first epoch of 100 steps, here shortened to 10). "-warm" rows: ``nbart.warm_up`` ran before Run, as a
  studio does when it opens; those rows stop at the first preview, so their peak memory is not a full run's.
  ``dream-nbart-steps1`` at 2048 px runs the default 4 octaves with one step each: tiling bounds its memory,
  which does not grow with the number of steps. ``style-studio`` runs the StyleStudio's starting schedule
  (256 then 384 px, 30 iterations each), the first style run of a studio user on Binder.
- GPU: the script is device-agnostic (TensorFlow places the work); GPU figures are not in the README because no
  GPU was available where it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

CONTENT, STYLE = "sample:grace_hopper", "sample:starry_night"
PREVIEW_SIZE, PREVIEW_QUALITY, PREVIEW_FPS = 384, 80, 5.0


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    through fork and exec, so a child started by a big benchmark process would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _image(size: int, source: str = CONTENT) -> Any:
    """``source`` with its long side ``size``: downscaled, or upscaled (Lanczos) where it is smaller, so a row at
    1024 px runs at 1024 px (the samples are 600 and 512 px long; a run never upscales its content itself)."""
    from PIL import Image

    import nbart

    image = nbart.load_image(source, max_size=size)
    if max(image.size) < size:
        scale = size / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return image


def _jpeg(rgb: np.ndarray) -> bytes:
    """A 384 px JPEG of a uint8 image, as a studio sends it (used for the tutorial's previews)."""
    import io

    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.BILINEAR)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=PREVIEW_QUALITY)
    return buffer.getvalue()


def _inception(weights: str, precision: str = "float32") -> Any:
    from nbart import backbones

    return backbones.model(backbones.get("inception_v3"), weights, precision)


def _share_random_weights(model_name: str) -> None:
    """Give nbart's bfloat16 random network the float32 one's weights (random weights differ per build)."""
    from nbart import backbones

    bb = backbones.get(model_name)
    backbones.model(bb, "none", "bfloat16").set_weights(backbones.model(bb, "none", "float32").get_weights())
    backbones._extractors.clear()  # extractors keep their own (lean) copies of the weights: make them anew


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# Dream


def _nbart_dream(img: Any, **params: Any) -> float:
    from nbart import dream_run

    t0 = time.perf_counter()
    for _ in dream_run(img, **params):
        pass
    return time.perf_counter() - t0


def dream_speed(size: int, steps: int, repeats: int, model: str = "inception_v3") -> dict:
    """Steps/s of one full-size octave and the wall time of the default schedule, nbart vs the tutorial."""
    import tensorflow as tf
    from tutorial import TutorialDream

    from nbart import backbones
    from nbart.deepdream import octave_sizes
    from nbart.params import DreamParams

    bb = backbones.get(model)
    img = _image(size)
    rgb = np.asarray(img)
    h, w = rgb.shape[:2]
    baseline = TutorialDream(_inception("none") if model == "inception_v3" else backbones.model(bb, "none"),
                             bb.dream_layers)
    common = dict(model=model, weights="none", seed=0, max_size=size)
    defaults = DreamParams()
    schedule = octave_sizes(h, w, defaults.octaves, defaults.octave_scale, bb.min_size)
    one = dict(octaves=1, steps=steps)
    variants = {
        "tutorial TiledGradients": lambda n=steps: _timed(lambda: baseline.run_octaves(rgb, [(h, w)], n)),
        "tutorial in-graph loop": lambda n=steps: _timed(lambda: baseline.run_simple(rgb, n)),
        "nbart auto": lambda n=steps: _nbart_dream(img, **common, octaves=1, steps=n, precision="auto"),
        "nbart float32": lambda n=steps: _nbart_dream(img, **common, octaves=1, steps=n, precision="float32"),
    }
    full = {
        "tutorial TiledGradients": lambda: _timed(lambda: baseline.run_octaves(rgb, schedule, defaults.steps)),
        "nbart auto": lambda: _nbart_dream(img, **common, precision="auto"),
    }
    for fn in variants.values():  # trace everything first
        fn(1)
    del one
    times: dict[str, list[float]] = {k: [] for k in variants}
    full_times: dict[str, list[float]] = {k: [] for k in full}
    names = list(variants)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(variants[name]())
        for name in (list(full) if r % 2 == 0 else list(full)[::-1]):
            full_times[name].append(full[name]())
    ratios = [b / a for a, b in zip(times["nbart auto"], times["tutorial TiledGradients"])]
    ratios_simple = [b / a for a, b in zip(times["nbart auto"], times["tutorial in-graph loop"])]
    ratios_fp32 = [b / a for a, b in zip(times["nbart float32"], times["tutorial TiledGradients"])]
    ratios_full = [b / a for a, b in zip(full_times["nbart auto"], full_times["tutorial TiledGradients"])]
    del tf
    return {
        "size": f"{w}x{h}", "steps": steps, "repeats": repeats, "precision_auto": backbones.resolve_precision("auto"),
        "steps_per_s": {k: steps / _median(v) for k, v in times.items()},
        "ratio_vs_tiled": _median(ratios), "ratio_vs_in_graph": _median(ratios_simple),
        "ratio_fp32_vs_tiled": _median(ratios_fp32),
        "schedule": [f"{sw}x{sh}" for sh, sw in schedule], "schedule_steps": defaults.steps * len(schedule),
        "schedule_s": {k: _median(v) for k, v in full_times.items()}, "schedule_ratio": _median(ratios_full),
        "raw": {"times": times, "schedule_times": full_times},
    }


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def preview_cost(size: int, fps: float = PREVIEW_FPS, model: str = "inception_v3") -> dict:
    """nbart's default dream with a studio-like live view: a 384 px JPEG at most ``fps`` times a second."""
    from nbart import dream_run
    from nbart.events import preview_jpeg

    img = _image(size)
    spent, frames = 0.0, 0
    t0 = last = time.perf_counter()
    for event in dream_run(img, model=model, weights="none", seed=0, max_size=size):
        now = time.perf_counter()
        if now - last >= 1.0 / fps or event.done:
            preview_jpeg(event, PREVIEW_SIZE, PREVIEW_QUALITY)
            frames += 1
            last = time.perf_counter()
            spent += last - now
    wall = time.perf_counter() - t0
    return {"size": size, "fps_cap": fps, "frames": frames, "preview_s": spent, "wall_s": wall,
            "fraction": spent / wall}


def _activation_gain(model: str, weights: str, layers: tuple[str, ...], before: Any, after: Any) -> np.ndarray:
    from nbart import backbones

    ext = backbones.extractor(backbones.get(model), weights, "float32", layers)

    def means(image: Any) -> np.ndarray:
        return np.array([float(np.mean(a)) for a in ext(np.asarray(image, np.float32)[None] / 255.0)])

    return means(after) / means(before)


def dream_quality(size: int, model: str, weights: str) -> dict:
    """Activation gain of the target layers: nbart auto precision vs float32, same image, seed and weights."""
    import nbart
    from nbart import backbones

    bb = backbones.get(model)
    img = _image(size)
    if weights == "none":
        _share_random_weights(model)
    gains = {}
    for precision in ("auto", "float32"):
        out = nbart.dream(img, model=model, weights=weights, seed=0, max_size=size, precision=precision)
        gains[precision] = _activation_gain(model, weights, bb.dream_layers, img, out)
    ratio = gains["auto"] / gains["float32"]
    return {"model": model, "weights": weights, "layers": list(bb.dream_layers),
            "precision_auto": backbones.resolve_precision("auto"),
            "gain_auto": gains["auto"].round(3).tolist(), "gain_float32": gains["float32"].round(3).tolist(),
            "gain_ratio": ratio.round(3).tolist(), "within_10pct": bool(np.all(np.abs(ratio - 1) <= 0.10))}


# ---------------------------------------------------------------------------------------------------------------
# Style


def _style_module() -> Any:
    try:
        from nbart import styletransfer
    except ImportError:
        return None
    return styletransfer


def style_speed(size: int, steps: int, repeats: int) -> dict:
    """nbart L-BFGS iterations/s against the tutorial's Adam steps/s at one size (VGG19, random weights)."""
    from tutorial import TutorialStyle

    from nbart import backbones
    from nbart.images import to_float

    st = _style_module()
    content, style = _image(size), _image(size, STYLE)
    baseline = TutorialStyle(backbones.model(backbones.get("vgg19"), "none", "float32"), to_float(content),
                             to_float(style))
    common = dict(model="vgg19", weights="none", seed=0, sizes=(size,), max_size=size)

    def nbart_run(n: int, precision: str = "auto") -> float:
        t0 = time.perf_counter()
        for _ in st.style_run(content, style, **common, steps=n, precision=precision):
            pass
        return time.perf_counter() - t0

    variants = {"tutorial Adam": lambda n=steps: _timed(lambda: baseline.run(n)),
                "nbart auto": lambda n=steps: nbart_run(n), "nbart float32": lambda n=steps: nbart_run(n, "float32")}
    for fn in variants.values():
        fn(2)
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(variants[name]())
    ratios = [b / a for a, b in zip(times["nbart auto"], times["tutorial Adam"])]
    return {"size": f"{content.size[0]}x{content.size[1]}", "steps": steps,
            "steps_per_s": {k: steps / _median(v) for k, v in times.items()}, "ratio": _median(ratios),
            "raw": times}


def _fit_power(steps: np.ndarray, losses: np.ndarray, at: float) -> float:
    """Fit ``a + b * t**-c`` to a loss curve and evaluate it at ``at`` (the extrapolated loss)."""
    from scipy.optimize import curve_fit

    def f(t: Any, a: float, b: float, c: float) -> Any:
        return a + b * np.power(t, -c)

    p0 = (float(losses[-1]) * 0.5, float(losses[0]), 0.5)
    try:
        params, _ = curve_fit(f, steps, losses, p0=p0, maxfev=20000,
                              bounds=([0.0, 0.0, 0.01], [np.inf, np.inf, 5.0]))
        return float(f(at, *params))
    except (RuntimeError, ValueError):
        return float("nan")


def style_loss_target(size: int, adam_steps: int, full_steps: int = 1000, nbart_steps: int | None = None,
                      target: tuple[float, float] | None = None, nbart_sizes: tuple[int, ...] = ()) -> dict:
    """Time for nbart's default style run to reach the loss the tutorial's Adam reaches in ``full_steps`` steps,
    both scored by the tutorial's loss on the offline VGG16 (float32). ``nbart_steps``: L-BFGS iterations per size
    (None: nbart's default). ``target``: (loss, wall seconds) of the tutorial's ``full_steps`` Adam steps measured
    in an earlier full run on this machine; Adam then runs ``adam_steps`` steps here only to time its step."""
    from tutorial import TutorialStyle

    from nbart import backbones
    from nbart.images import to_float

    st = _style_module()
    content, style = _image(size), _image(size, STYLE)
    bb = backbones.get("vgg16")
    scorer_base = backbones.model(bb, "offline", "float32")
    # The tutorial's loss without total variation (nbart's is a mean square, the tutorial's a sum of absolute
    # differences), re-weighed to nbart's default balance (see TutorialStyle.rebalance): both optimize it exactly.
    baseline = TutorialStyle(scorer_base, to_float(content), to_float(style), total_variation_weight=0.0)
    baseline.rebalance(content_weight=1.0, style_weight=30.0)
    score = baseline.loss
    same_objective = dict(content_weight=1.0, style_weight=30.0, tv_weight=0.0)
    start_loss = score(to_float(content))

    # The tutorial's Adam; its loss is measured every 10 steps with the clock stopped.
    curve, paused = [], 0.0
    every = 10

    def on_step(step: int, image: Any) -> None:
        nonlocal paused
        if step % every == 0 or step == 1:
            t = time.perf_counter()
            curve.append((step, t - t0 - paused, score(np.asarray(image[0]))))
            paused += time.perf_counter() - t

    t0 = time.perf_counter()
    baseline.run(adam_steps, on_step=on_step)
    adam_wall = time.perf_counter() - t0 - paused
    steps_arr = np.array([c[0] for c in curve], float)
    loss_arr = np.array([c[2] for c in curve], float)
    per_step = adam_wall / adam_steps
    measured_full = adam_steps >= full_steps
    if target is not None:  # measured in an earlier full run
        target_loss, earlier_wall = target
    else:
        target_loss = float(loss_arr[steps_arr <= full_steps][-1]) if measured_full else _fit_power(
            steps_arr[steps_arr >= 20], loss_arr[steps_arr >= 20], full_steps)
        earlier_wall = None
    adam_full_wall = adam_wall if measured_full else per_step * full_steps

    # nbart's default style run (L-BFGS, coarse to fine), offline VGG16; its loss scored on the output-size image.
    nb_curve, paused_nb = [], 0.0
    t0 = time.perf_counter()
    extra = {"steps": nbart_steps} if nbart_steps else {}
    if nbart_sizes:
        extra["sizes"] = nbart_sizes
    run = st.style_run(content, style, model="vgg16", weights="offline", seed=0, max_size=size, **same_objective,
                       **extra)
    last = None
    for event in run:
        t = time.perf_counter()
        if event.step % 2 == 0 or event.step == 1 or event.done:
            nb_curve.append((event.step, t - t0 - paused_nb, score(event.image().astype(np.float32) / 255.0)))
        last = event
        paused_nb += time.perf_counter() - t
    nb_wall = time.perf_counter() - t0 - paused_nb
    final = score(np.asarray(run.image(), np.float32) / 255.0)
    reach = next((c[1] for c in nb_curve if c[2] <= target_loss), None)
    return {
        "size": f"{content.size[0]}x{content.size[1]}", "adam_steps_run": adam_steps, "adam_per_step_s": per_step,
        "adam_loss_at_run_end": float(loss_arr[-1]), "target_loss_at_1000": target_loss,
        "target_is_extrapolated": not measured_full and target is None, "target_from_earlier_run": target is not None,
        "adam_1000_wall_s": adam_full_wall, "adam_1000_wall_is_extrapolated": not measured_full,
        "adam_1000_wall_earlier_run_s": earlier_wall, "nbart_steps_per_size": nbart_steps,
        "nbart_sizes": list(nbart_sizes) or "default",
        "nbart_wall_s": nb_wall, "nbart_steps": last.total if last else 0, "nbart_final_loss": final,
        "nbart_reaches_target_at_s": reach,
        "time_fraction": (reach / adam_full_wall) if reach is not None else None,
        "adam_curve": curve, "nbart_curve": nb_curve, "nbart_params": same_objective, "content_image_loss": start_loss,
    }


# ---------------------------------------------------------------------------------------------------------------
# Fresh-process measurements: time to first preview and peak memory


def child(kind: str, size: int, steps: int | None = None, precision: str = "auto") -> dict:
    """One run in this (fresh) process; returns time to first preview and peak RSS. ``steps``: style iterations per
    size or dream steps per octave instead of the defaults (for memory rows at large sizes: the peak is reached once
    L-BFGS holds all its corrections, after 7 iterations). ``precision``: nbart's compute precision ("auto", or
    "bfloat16" to measure its memory on a CPU that only emulates it)."""
    import tensorflow as tf  # imported before the clock starts: "from Run", not from kernel start

    from nbart.events import preview_jpeg

    tf.constant(0.0)  # initialise the runtime
    first = None
    warm = kind.endswith("-warm")  # nbart.warm_up() ran before Run (a studio warms up when it opens): first only
    kind = kind.removesuffix("-warm")
    dream_params = dict(model="inception_v3", weights="none", seed=0, max_size=size, precision=precision)
    style_params = dict(model="vgg19", weights="none", seed=0, max_size=size, precision=precision)
    if steps is not None:
        dream_params["steps"] = style_params["steps"] = steps
    if warm:
        import nbart

        nbart.warm_up("dream" if kind.startswith("dream") else "style",
                      **(dream_params if kind.startswith("dream") else style_params))
    t0 = time.perf_counter()
    if kind.startswith("dream-nbart"):
        from nbart import dream_run

        extra = {"steps": 1} if kind == "dream-nbart-steps1" and steps is None else {}
        for event in dream_run(_image(size), **dream_params, **extra):
            if first is None:
                preview_jpeg(event)
                first = time.perf_counter() - t0
                if warm:
                    break
    elif kind == "dream-tutorial":
        from tutorial import TutorialDream

        from nbart.deepdream import octave_sizes

        rgb = np.asarray(_image(size))
        sizes = octave_sizes(rgb.shape[0], rgb.shape[1], 4, 1.4, 75)

        def on_preview(frame: np.ndarray) -> None:
            nonlocal first
            _jpeg(frame)
            first = first if first is not None else time.perf_counter() - t0

        TutorialDream(_inception("none")).run_octaves(rgb, sizes, 10, on_preview=on_preview)
    elif kind == "style-nbart":
        from nbart.styletransfer import style_run

        for event in style_run(_image(size), _image(size, STYLE), **style_params):
            if first is None:
                preview_jpeg(event)
                first = time.perf_counter() - t0
                if warm:
                    break
    elif kind == "style-studio":  # the StyleStudio's starting schedule (what a Binder user runs first)
        from nbart.studio.style import StyleStudio
        from nbart.styletransfer import style_run

        params = {**{k: v for k, v in style_params.items() if k != "max_size"}, **StyleStudio.starting}
        for event in style_run(_image(size), _image(size, STYLE), **params):
            if first is None:
                preview_jpeg(event)
                first = time.perf_counter() - t0
    elif kind == "style-tutorial":
        from tutorial import TutorialStyle

        from nbart import backbones
        from nbart.images import to_float

        def on_preview(frame: np.ndarray) -> None:
            nonlocal first
            _jpeg(frame)
            first = first if first is not None else time.perf_counter() - t0

        base = backbones.model(backbones.get("vgg19"), "none", "float32")
        TutorialStyle(base, to_float(_image(size)), to_float(_image(size, STYLE))).run(20, 10, on_preview)
    else:
        raise SystemExit(f"unknown child kind {kind!r}")
    wall = time.perf_counter() - t0
    return {"kind": kind + ("-warm" if warm else ""), "size": size, "first_preview_s": first, "wall_s": wall,
            "peak_rss_mb": _peak_rss_mb(), **({"steps": steps} if steps is not None else {}),
            **_precision_of(kind, precision)}


def _cpu_flags() -> str:
    """The CPU's bfloat16 and AVX-512 flags from /proc/cpuinfo, space-separated ('' when it has none)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.partition(":")[2].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return " ".join(sorted({f for f in flags if "bf16" in f or f in ("avx2", "avx512f", "amx_tile")}))


def _precision_of(kind: str, precision: str = "auto") -> dict:
    """What a fresh-process row ran with: the CPU, whether it has bfloat16 instructions, and the compute precision
    (the tutorials always run float32; nbart's runs use ``precision``, resolved here as the run resolved it)."""
    from nbart import backbones

    precision = "float32" if kind.endswith("tutorial") else backbones.resolve_precision(precision)
    return {"precision": precision, "cpu": backbones._cpu_model(), "cpu_bf16": backbones._cpu_has_bf16(),
            "cpu_flags": _cpu_flags()}


def in_subprocess(kind: str, size: int) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", kind, "--child-size", str(size)],
                         capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"kind": kind, "size": size, "error": (out.stderr or out.stdout)[-2000:]}


# ---------------------------------------------------------------------------------------------------------------
# Report


def machine() -> str:
    import tensorflow as tf

    from nbart import backbones

    gpus = tf.config.list_physical_devices("GPU")
    device = ", ".join(tf.config.experimental.get_device_details(g).get("device_name", "GPU") for g in gpus) or "no GPU"
    flags = "AVX512_BF16" if backbones._cpu_has_bf16() else "no bf16 CPU flags"
    return (f"{backbones._cpu_model()}, {os.cpu_count()} cores ({flags}), {device}; "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {__import__('keras').__version__}")


def _row(cells: list[Any], widths: list[int]) -> str:
    return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"


def table(rows: list[list[Any]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [_row(rows[0], widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(lines + [_row(r, widths) for r in rows[1:]])


def report(results: dict) -> str:
    out = [f"Machine: {results['machine']}", ""]
    rows = [["task", "size", "variant", "steps/s", "nbart/baseline"]]
    for d in results.get("dream", []):
        sps = d["steps_per_s"]
        rows.append(["dream InceptionV3", d["size"], "tutorial TiledGradients (float32)",
                     f"{sps['tutorial TiledGradients']:.2f}", "1.00"])
        rows.append(["", "", "tutorial in-graph loop (float32)", f"{sps['tutorial in-graph loop']:.2f}", ""])
        rows.append(["", "", f"nbart auto ({d['precision_auto']})", f"{sps['nbart auto']:.2f}",
                     f"{d['ratio_vs_tiled']:.2f} (vs in-graph loop {d['ratio_vs_in_graph']:.2f})"])
        rows.append(["", "", "nbart float32", f"{sps['nbart float32']:.2f}", f"{d['ratio_fp32_vs_tiled']:.2f}"])
        s = d["schedule_s"]
        rows.append(["", "", f"default schedule ({d['schedule_steps']} steps, {'/'.join(d['schedule'])}): "
                     f"tutorial {s['tutorial TiledGradients']:.1f} s, nbart {s['nbart auto']:.1f} s",
                     "", f"{d['schedule_ratio']:.2f}"])
    for d in results.get("style_speed", []):
        sps = d["steps_per_s"]
        rows.append(["style VGG19", d["size"], "tutorial Adam step (float32)", f"{sps['tutorial Adam']:.2f}", "1.00"])
        rows.append(["", "", "nbart L-BFGS iteration (auto)", f"{sps['nbart auto']:.2f}", f"{d['ratio']:.2f}"])
        rows.append(["", "", "nbart L-BFGS iteration (float32)", f"{sps['nbart float32']:.2f}", ""])
    out += ["Speed (median of repeats; ratios are per-repeat nbart/baseline speed, medians):", "", table(rows), ""]
    if results.get("style_loss"):
        d = results["style_loss"]
        ex = " (extrapolated)" if d["target_is_extrapolated"] else (
            " (measured in an earlier full run)" if d.get("target_from_earlier_run") else " (measured)")
        exw = " (extrapolated from the measured step time)" if d["adam_1000_wall_is_extrapolated"] else " (measured)"
        reach = d["nbart_reaches_target_at_s"]
        frac = f"{d['time_fraction']:.3f} of the tutorial's time" if d["time_fraction"] is not None else "not reached"
        out += [f"Style loss target, {d['size']}, the tutorial's loss (no TV, nbart's balance) on the offline VGG16:",
                f"- the content image (both start there): loss {d['content_image_loss']:.4g}",
                f"- tutorial Adam: {d['adam_steps_run']} steps measured, {d['adam_per_step_s']:.2f} s/step, loss "
                f"{d['adam_loss_at_run_end']:.4g} at step {d['adam_steps_run']}; 1000 steps: loss "
                f"{d['target_loss_at_1000']:.4g}{ex}, wall {d['adam_1000_wall_s']:.0f} s{exw}",
                *([f"- the earlier full run's 1000 Adam steps took {d['adam_1000_wall_earlier_run_s']:.0f} s"]
                  if d.get("adam_1000_wall_earlier_run_s") else []),
                f"- nbart style run ({d.get('nbart_steps_per_size') or 'default'} L-BFGS iterations per size, sizes "
                f"{d.get('nbart_sizes', 'default')}): "
                f"{d['nbart_steps']} iterations in {d['nbart_wall_s']:.1f} s, final loss "
                f"{d['nbart_final_loss']:.4g}; reaches the 1000-step loss at "
                f"{f'{reach:.1f} s' if reach is not None else '-'}: {frac}", ""]
    for q in results.get("quality", []):
        out.append(f"Dream quality {q['model']} ({q['weights']} weights), activation gain per target layer "
                   f"{q['layers']}: auto ({q['precision_auto']}) {q['gain_auto']}, float32 {q['gain_float32']}, "
                   f"ratio {q['gain_ratio']} -> within 10%: {q['within_10pct']}")
    if results.get("preview"):
        p = results["preview"]
        out += ["", f"Live preview (384 px JPEG, <= {p['fps_cap']:g} fps) during the default dream at {p['size']} px: "
                f"{p['frames']} frames, {p['preview_s'] * 1000:.0f} ms of {p['wall_s']:.1f} s = "
                f"{100 * p['fraction']:.2f}% of run time"]
    if results.get("fresh"):
        rows = [["fresh process", "size", "precision", "CPU bfloat16", "first preview (s)", "peak RSS (MB)",
                 "wall (s)"]]
        for c in results["fresh"]:
            if "error" in c:
                rows.append([c["kind"], c["size"], "", "", "error", "", ""])
                continue
            fp = f"{c['first_preview_s']:.2f}" if c["first_preview_s"] is not None else "-"
            rows.append([c["kind"], c["size"], c.get("precision", "?"), "yes" if c.get("cpu_bf16") else "no", fp,
                         f"{c['peak_rss_mb']:.0f}", f"{c['wall_s']:.1f}"])
        out += ["", table(rows)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256,512", help="image long sides, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dream-steps", type=int, default=10)
    ap.add_argument("--style-steps", type=int, default=10, help="steps/iterations per style speed measurement")
    ap.add_argument("--style-loss-steps", type=int, default=100, help="tutorial Adam steps in the loss comparison")
    ap.add_argument("--full-style", action="store_true", help="run the tutorial's full 1000 Adam steps")
    ap.add_argument("--style-nbart-steps", type=int, help="nbart's L-BFGS iterations per size (default: nbart's)")
    ap.add_argument("--style-nbart-sizes", default="", help="nbart's sizes for the loss comparison (default: its own)")
    ap.add_argument("--style-target", help="LOSS,SECONDS of the tutorial's 1000 Adam steps from an earlier "
                    "--full-style run here: skips re-running them (Adam still runs --style-loss-steps to time a step)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: dream,quality,preview,style,loss,fresh")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few steps: a smoke test of the script")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-size", type=int, default=512, help=argparse.SUPPRESS)
    ap.add_argument("--child-steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-precision", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.child_size, args.child_steps, args.child_precision)))
        return 0
    if args.quick:
        args.sizes, args.repeats, args.dream_steps, args.style_steps = "96", 1, 2, 2
        args.skip = ",".join(set(args.skip.split(",")) | {"quality", "loss", "fresh"})
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    if "dream" not in skip:
        results["dream"] = [dream_speed(s, args.dream_steps, args.repeats) for s in sizes]
    if "style" not in skip and _style_module() is not None:
        results["style_speed"] = [style_speed(s, args.style_steps, args.repeats) for s in sizes]
    if "quality" not in skip:
        results["quality"] = [dream_quality(max(sizes), "vgg16", "offline"),
                              dream_quality(max(sizes), "inception_v3", "none")]
    if "preview" not in skip:
        results["preview"] = preview_cost(max(sizes))
    if "loss" not in skip and _style_module() is not None:
        target = tuple(float(v) for v in args.style_target.split(",")) if args.style_target else None
        results["style_loss"] = style_loss_target(max(sizes), 1000 if args.full_style else args.style_loss_steps,
                                                  nbart_steps=args.style_nbart_steps, target=target,
                                                  nbart_sizes=tuple(int(v) for v in args.style_nbart_sizes.split(",")
                                                                    if v))
    if "fresh" not in skip:
        kinds = [("dream-nbart", 512), ("dream-nbart-warm", 512), ("dream-tutorial", 512),
                 ("dream-nbart-steps1", 2048)]
        if _style_module() is not None:
            kinds += [("style-nbart", 512), ("style-nbart-warm", 512), ("style-studio", 512),
                      ("style-tutorial", 512)]
        results["fresh"] = [in_subprocess(k, s) for k, s in kinds]
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
