"""What the inside view costs: a run's time with the studio's preview and the inside view off, and with it on.

Run from the repository root; writes ``benchmarks/results/inside-overhead.json`` and ``.txt``::

    python benchmarks/bench_inside.py            # ~10 min on a loaded 2-core machine
    python benchmarks/bench_inside.py --quick    # tiny runs, checks that the harness runs

Method
------
One process, the same run (a style transfer: L-BFGS; a dream: one octave), three ways, interleaved over the repeats
so that the machine's load falls on all three alike:

- ``plain``: the events pulled, nothing else (the baseline);
- ``preview``: a studio's consumer: a JPEG preview (``preview_jpeg``, 384 px) at most every 0.25 s (4 frames/s, the
  studios' default), the inside view off;
- ``inside``: the same, with ``Run.inside()`` on (the studio's defaults: the middle style layer, the first dream
  layer) and, at each preview frame, the Inside panel's drawings (gradient heat map, activation gallery, Gram pair,
  log-scale curves; ``nbart.studio.inside``), each step's terms recorded.

Quoted: per way, the median over the repeats of the run's wall time and of the process's CPU time, as ratios to
``plain``; and the consumer's own time (previews and drawings) as a share of the run's wall time. Seconds depend on
the machine and its load (read them beside the CPU line); ratios from the same process are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
INTERVAL = 0.25  # s between preview frames: the studios' default fps=4


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"


def _draw(event, history, style: bool) -> None:
    """The Inside panel's drawings of one frame, as its show() makes them (without widgets)."""
    import numpy as np

    from nbart.images import encode
    from nbart.studio.inside import GRAM_SIDE, VIEW_SIDE, curves_svg, gallery, heat_image

    inside = event.inside
    curves_svg(history)
    encode(heat_image(inside.gradient_map(VIEW_SIDE), VIEW_SIDE), "png")
    if inside.maps is not None:
        maps, channels, _ = inside.activation_maps()
        encode(gallery(maps, channels), "png")
    if style:
        picture, target, _ = inside.gram_pair()
        top = float(np.percentile(np.sqrt(np.abs(target)), 97))
        encode(heat_image(np.sqrt(np.abs(picture)), GRAM_SIDE, "viridis", top), "png")
        encode(heat_image(np.sqrt(np.abs(target)), GRAM_SIDE, "viridis", top), "png")


def _one(make_run, way: str, style: bool) -> dict:
    from nbart.events import preview_jpeg

    run = make_run()
    if way == "inside":
        layers = run.prepared.style_layers if style else None
        run.inside(layer=layers[len(layers) // 2] if style else None)
    history, consumer, last = [], 0.0, -1.0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for event in run:
        if way == "plain":
            continue
        t = time.perf_counter()
        if event.inside is not None:
            history.append((event.step, dict(event.inside.terms)))
        if event.done or t - last >= INTERVAL:
            last = t
            preview_jpeg(event, 384)
            if event.inside is not None:
                _draw(event, history, style)
        consumer += time.perf_counter() - t
    return {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0, "consumer": consumer,
            "steps": run.latest.step}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs, 1 repeat")
    parser.add_argument("--size", type=int, default=160, help="long side of the runs, px (default 160)")
    parser.add_argument("--steps", type=int, default=12, help="steps per run (default 12)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    args = parser.parse_args(argv)
    cpu = _cpu()

    from nbart import deepdream, styletransfer
    from nbart.images import load_image

    size, steps, repeats = (64, 4, 1) if args.quick else (args.size, args.steps, args.repeats)
    content = load_image("sample:grace_hopper")
    style_img = load_image("sample:starry_night")
    common = dict(model="vgg16", weights="none", precision="float32", seed=0, steps=steps)
    tasks = {
        "style (L-BFGS)": (lambda: styletransfer.style_run(content, style_img, sizes=(size,), **common), True),
        "dream (1 octave)": (lambda: deepdream.dream_run(content, max_size=size, octaves=1, **common), False),
    }
    ways = ("plain", "preview", "inside")
    results: dict = {"cpu": cpu, "size": size, "steps": steps, "repeats": repeats, "tasks": {}}
    for name, (make_run, style) in tasks.items():
        for way in ways:  # warm: the network built and each traced function traced once, untimed
            _one(make_run, way, style)
        samples = {way: [] for way in ways}
        for _ in range(repeats):
            for way in ways:
                samples[way].append(_one(make_run, way, style))
        med = {way: {k: statistics.median(s[k] for s in samples[way]) for k in ("wall", "cpu", "consumer")}
               for way in ways}
        results["tasks"][name] = {"samples": samples, "median": med}
        print(name, {way: {k: round(v, 3) for k, v in m.items()} for way, m in med.items()}, flush=True)

    lines = [f"Inside view overhead ({cpu}); {results['size']} px, {steps} steps, median of {repeats} interleaved "
             f"repeats; benchmarks/bench_inside.py", "",
             f"{'run':18} {'way':8} {'wall s':>8} {'wall/plain':>10} {'cpu/plain':>9} {'consumer/wall':>13}"]
    for name, r in results["tasks"].items():
        med = r["median"]
        base = med["plain"]
        for way in ways:
            m = med[way]
            lines.append(f"{name:18} {way:8} {m['wall']:8.2f} {m['wall'] / base['wall']:10.3f} "
                         f"{m['cpu'] / base['cpu']:9.3f} {m['consumer'] / m['wall']:13.1%}")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "inside-overhead.json").write_text(json.dumps(results, indent=1))
        (RESULTS / "inside-overhead.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
