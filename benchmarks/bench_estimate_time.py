"""The cost model's time factors (``nbart.cost.TIME_FIT``): what a style loss, a mask or a guide adds to a run's
time, measured against the plain run at the same size in the same process.

Run from the repository root (a few minutes on a loaded 2-core machine)::

    NBART_IMAGES=/path/to/images python benchmarks/bench_estimate_time.py [--size 192] [--rounds 2]

Method: VGG16 (offline weights), float32, ``golden_gate.jpg`` (content / dream image) and ``starry_night.jpg``
(style, guide). Each variant runs once untimed (building and tracing its functions), then ``--rounds`` times timed,
the variants interleaved round by round; the fastest round of each is kept (the one least slowed by other work on
the machine). Style: ``sizes=(size,)``, 6 L-BFGS iterations: gram (the baseline), w2, sliced_wasserstein, one mask.
Dream: one octave of 8 steps at ``max_size=size``: plain (the baseline), a mask, a guide (and the mask). This
machine's effective rate is the baseline's seconds over its forward GFLOPs by the model, so each factor is a ratio
of times measured side by side (the load cancels to first order):

- ``w2``: the extra seconds over ``w2_gflops * evaluations * rate``;
- ``sliced_wasserstein``: ``1 + extra / (gram GFLOPs * rate)``: the projections and sorts in Gram units;
- ``masked_style``: the masked evaluation less one Gram per region, over the network's forward GFLOPs;
- ``dream_control``: the masked dream over the plain one; ``guide``: the guided dream's extra over the masked one,
  over the guide's matching GFLOPs.

Results: ``benchmarks/results/estimate-time-fit.{json,md}`` with the load average beside each variant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
IMAGES = os.environ.get("NBART_IMAGES", "/work/shared/images")
CONTENT = os.path.join(IMAGES, "golden_gate.jpg")
STYLE = os.path.join(IMAGES, "starry_night.jpg")
sys.path.insert(0, ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="estimate-time-fit")
    args = ap.parse_args()
    import numpy as np

    import nbart
    from nbart import cost as E
    from nbart import masks
    from nbart.images import load_image
    from nbart.precision import cpu_model

    common = dict(model="vgg16", weights="offline", precision="float32", seed=0)
    content = load_image(CONTENT, max_size=args.size)
    h, w = content.size[1], content.size[0]
    mask = (masks.rectangle((h, w), (0.0, 0.0, 1.0, 0.6)) * 255).astype(np.uint8)
    mask_path = os.path.join(RESULTS, f".{args.out}-mask.png")
    os.makedirs(RESULTS, exist_ok=True)
    from PIL import Image
    Image.fromarray(mask).save(mask_path)
    style = dict(common, sizes=(args.size,), steps=6)
    dream = dict(common, max_size=args.size, octaves=1, steps=8)
    variants = {
        "style gram": ("style", dict(style)),
        "style w2": ("style", dict(style, style_loss="w2")),
        "style sliced_wasserstein": ("style", dict(style, style_loss="sliced_wasserstein")),
        "style mask": ("style", dict(style, mask=(mask_path,))),
        "dream plain": ("dream", dict(dream)),
        "dream mask": ("dream", dict(dream, mask=mask_path)),
        "dream guide+mask": ("dream", dict(dream, mask=mask_path, guide=STYLE)),
    }

    def run(task: str, params: dict) -> tuple[float, int]:
        evaluations = [0]
        t0 = time.perf_counter()
        r = nbart.dream_run(CONTENT, **params) if task == "dream" else nbart.style_run(CONTENT, STYLE, **params)
        for _ in r:
            evaluations[0] += 1
        return time.perf_counter() - t0, evaluations[0]

    best: dict[str, float] = {}
    loads: dict[str, list[float]] = {}
    for task, params in variants.values():  # build and trace each first, untimed
        run(task, params)
    for _ in range(args.rounds):
        for name, (task, params) in variants.items():
            seconds, _ = run(task, params)
            best[name] = min(best.get(name, seconds), seconds)
            loads.setdefault(name, []).append(os.getloadavg()[0])
            print(f"{name:28} {seconds:6.2f} s  load {os.getloadavg()[0]:.1f}", flush=True)

    # the model's terms for these settings
    table = E.network_table("vgg16")
    style_layers, content_layers = E.registry.get("vgg16").style_layers, E.registry.get("vgg16").content_layers
    fwd_style = E._upto(table, content_layers + style_layers)[0]
    stage = E._style_plan(CONTENT, STYLE, nbart.StyleParams(**style))[3][-1]
    px = stage[0] * stage[1]
    evaluations = 1 + E.LBFGS_EVALUATIONS * style["steps"]
    net = evaluations * px / E.REFERENCE_SIDE ** 2 * fwd_style
    grams = evaluations * E._gram_gflops(table, style_layers, px)
    rate_style = best["style gram"] / (net + grams)  # s per forward GFLOP here, now
    w2 = evaluations * E._w2_gflops(table, style_layers)
    fit = {
        "w2": (best["style w2"] - best["style gram"]) / (w2 * rate_style),
        "sliced_wasserstein": 1 + (best["style sliced_wasserstein"] - best["style gram"]) / (grams * rate_style),
        "masked_style": (best["style mask"] / rate_style - grams) / net,
    }
    bb_dream = E.registry.get("vgg16")
    layers = bb_dream.dream_layers
    fwd_dream = E._upto(table, layers)[0]
    stages = E._dream_plan(CONTENT, nbart.DreamParams(**dream))[2]
    dpx = stages[-1][0] * stages[-1][1]
    dream_gflops = (dream["steps"] + E.FORWARD_SHARE) * dpx / E.REFERENCE_SIDE ** 2 * fwd_dream
    rate_dream = best["dream plain"] / dream_gflops
    fit["dream_control"] = best["dream mask"] / best["dream plain"]
    g = E._guide_shape(STYLE, max(224, bb_dream.min_size), bb_dream.min_size)
    guide = dream["steps"] * E._guide_gflops(table, layers, dpx, g[0] * g[1])
    fit["guide"] = (best["dream guide+mask"] - best["dream mask"]) / (guide * rate_dream)
    fit = {k: round(v, 3) for k, v in fit.items()}
    print("TIME_FIT =", fit)
    rows = [{"variant": n, "best_s": round(best[n], 3), "loads": loads[n]} for n in variants]
    out = {"cpu": f"{cpu_model()}, {os.cpu_count()} cores", "size": args.size, "rounds": args.rounds,
           "rows": rows, "time_fit": fit,
           "terms": {"style_net_gflops": net, "style_gram_gflops": grams, "w2_gflops": w2,
                     "dream_gflops": dream_gflops, "guide_gflops": guide, "rate_style": rate_style,
                     "rate_dream": rate_dream}}
    with open(os.path.join(RESULTS, f"{args.out}.json"), "w") as f:
        json.dump(out, f, indent=1)
    lines = [f"# nbart.cost.TIME_FIT, measured: VGG16 offline, float32, {args.size} px, fastest of {args.rounds} "
             f"interleaved rounds — {out['cpu']}, shared", "",
             "| variant | fastest s | load avg (1 min) per round |", "|---|---|---|"]
    lines += [f"| {r['variant']} | {r['best_s']:.2f} | {', '.join(f'{x:.1f}' for x in r['loads'])} |" for r in rows]
    lines += ["", f"Fitted: `{fit}`"]
    with open(os.path.join(RESULTS, f"{args.out}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.remove(mask_path)


if __name__ == "__main__":
    main()
