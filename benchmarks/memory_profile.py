"""Where a style run's peak memory goes: RSS and per-phase peak RSS of one fresh process, phase by phase.

Each phase resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``), so its VmHWM is that phase's
own peak: process + TensorFlow start, the network, the targets (features of content and style), one traced
loss-and-gradient step, a steady step, and L-BFGS iterations (scipy's float64 state on top). Linux only.

    python benchmarks/memory_profile.py --size 512 [--model vgg19] [--weights none] [--lbfgs 8] [--json out.json]

Prints one JSON object: for each phase the RSS after it and its peak, in MB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _status() -> dict[str, float]:
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--model", default="vgg19")
    ap.add_argument("--weights", default="none")
    ap.add_argument("--steps", type=int, default=2, help="loss-and-gradient calls after the traced one")
    ap.add_argument("--lbfgs", type=int, default=0, help="then this many L-BFGS iterations")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()

    phases: list[dict] = []
    t0 = time.perf_counter()

    def phase(name: str) -> None:
        s = _status()
        # RssFile: mapped files (TensorFlow's libraries), clean pages the kernel can drop; RssAnon: the rest
        phases.append({"phase": name, "rss_mb": round(s["VmRSS"], 1), "peak_mb": round(s["VmHWM"], 1),
                       "anon_mb": round(s["RssAnon"], 1), "file_mb": round(s["RssFile"], 1),
                       "t_s": round(time.perf_counter() - t0, 1)})
        _reset_peak()

    from nbart.quiet import tensorflow
    tf = tensorflow()

    import nbart
    from nbart import objectives, optimizers, pixels, styleplan
    from nbart.images import to_float
    from nbart.params import StyleParams
    from nbart.styletransfer import prepare

    tf.constant(0.0)
    phase("import")
    p = StyleParams(model=args.model, weights=args.weights, seed=0, max_size=args.size)
    prep = prepare(p)
    features, loss_and_gradient = prep.features, prep.loss_and_gradient
    _ = prep.extractor
    phase("network")
    content = to_float(nbart.load_image("sample:grace_hopper", max_size=args.size))
    style = to_float(nbart.load_image("sample:starry_night", max_size=args.size))
    size = content.shape[:2]
    targets, _ = features(tf.constant(content))
    seen = styleplan.style_size(style.shape[:2], size, p.style_scale, prep.backbone.min_size)
    grams = features(tf.constant(pixels.resize(style, seen)))[1]
    grams = [objectives.blend_grams(g, (1.0,)) for g in zip(grams)]
    phase("targets")
    weights = tf.constant([p.content_weight, p.style_weight, p.tv_weight], tf.float32)
    layer_weights = tf.constant(prep.layer_weights)

    def evaluate(x):
        return loss_and_gradient(x, targets, grams, weights, layer_weights)

    loss, parts, gradient = evaluate(tf.constant(content))
    del gradient
    phase("first step (traced)")
    for _ in range(args.steps):
        loss, parts, gradient = evaluate(tf.constant(content))
        del gradient
    phase(f"{args.steps} steady steps")
    losses = []
    if args.lbfgs:
        losses = [event[1] for event in optimizers.lbfgs(evaluate, content, args.lbfgs, threading.Event())]
        phase(f"{args.lbfgs} L-BFGS iterations")
    out = {"size": f"{size[1]}x{size[0]}", "model": args.model, "weights": args.weights, "phases": phases,
           "losses": losses, "env": {k: v for k, v in os.environ.items() if k.startswith(("NBART_", "MALLOC_", "TF_"))}}
    text = json.dumps(out)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
