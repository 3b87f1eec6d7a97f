"""How close nbart.estimate comes to what runs really cost: wall time and peak memory of fresh processes.

Run from the repository root (about 10-15 minutes on a loaded 2-core machine)::

    NBART_IMAGES=/path/to/images python benchmarks/bench_estimate.py            # all settings
    python benchmarks/bench_estimate.py --only 0,3                                # some of them
    python benchmarks/bench_estimate.py --rescore                                 # re-score the saved runs

Method: for each setting, this process asks ``nbart.estimate`` (calibrated by its probe, cached), then runs the
setting in a fresh subprocess that imports TensorFlow and nbart first, then times ``dream_run``/``style_run`` from
the call to the last event (network building, weights and tracing included, as in the estimate) and reports its peak
resident set (``VmHWM``, and ``ru_maxrss``; on Linux ru_maxrss can carry the parent's peak over an exec, so VmHWM is
the figure scored), its resident set after the imports, and for L-BFGS the gradient evaluations per iteration.
The machine is shared: the load average is recorded beside every row, and the time accuracy depends on it.
``--rescore`` recomputes the estimates of the saved rows from their saved model parts (after refitting
``MEMORY_FIT``), without running anything again. Results: ``benchmarks/results/estimate-accuracy.{json,md}``.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
IMAGES = os.environ.get("NBART_IMAGES", "/work/shared/images")
CONTENT = os.path.join(IMAGES, "golden_gate.jpg")
STYLE = os.path.join(IMAGES, "starry_night.jpg")

# (task, params): sizes 256-1024, the three backbones, steps, octaves, tiles, both optimizers; modest lengths.
SETTINGS = [
    ("dream", {"model": "vgg16", "weights": "offline", "max_size": 256, "octaves": 2, "steps": 5}),
    ("dream", {"model": "vgg16", "weights": "offline", "max_size": 512, "octaves": 2, "steps": 3}),
    ("dream", {"model": "inception_v3", "weights": "none", "max_size": 256, "octaves": 3, "steps": 5}),
    ("dream", {"model": "inception_v3", "weights": "none", "max_size": 512, "octaves": 3, "steps": 5}),
    ("dream", {"model": "inception_v3", "weights": "none", "max_size": 1024, "octaves": 2, "steps": 2}),
    ("dream", {"model": "inception_v3", "weights": "none", "max_size": 768, "octaves": 1, "steps": 3,
               "tile_size": 384}),
    ("dream", {"model": "vgg19", "weights": "none", "max_size": 384, "octaves": 2, "steps": 3}),
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 256, "steps": 5}),
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 512, "steps": 3}),
    ("style", {"model": "vgg19", "weights": "none", "max_size": 256, "steps": 5}),
    ("style", {"model": "vgg19", "weights": "none", "max_size": 512, "steps": 2}),
    ("style", {"model": "inception_v3", "weights": "none", "max_size": 384, "steps": 3}),
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 1024, "steps": 1}),
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 384, "steps": 4, "optimizer": "adam"}),
    # added after MEMORY_FIT was fitted to the rows above (first run): left out of that fit
    ("dream", {"model": "vgg16", "weights": "offline", "max_size": 640, "octaves": 1, "steps": 2, "tile_size": 320}),
    ("style", {"model": "vgg19", "weights": "none", "max_size": 384, "steps": 3}),
    ("dream", {"model": "inception_v3", "weights": "none", "max_size": 384, "octaves": 2, "steps": 4,
               "layers": ("mixed7",)}),
    # the terms added for style losses, masks, guides and the explorer (nbart.cost.TIME_FIT, fitted by
    # bench_estimate_time.py at another size): run with --only 17,...,24 --out estimate-accuracy-terms
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 256, "steps": 3, "style_loss": "w2"}),
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 256, "steps": 3,
               "style_loss": "sliced_wasserstein"}),
    ("style", {"model": "vgg16", "weights": "offline", "max_size": 256, "steps": 3, "mask": ("MASK",)}),
    ("dream", {"model": "vgg16", "weights": "offline", "max_size": 256, "octaves": 2, "steps": 4, "mask": "MASK"}),
    ("dream", {"model": "vgg16", "weights": "offline", "max_size": 256, "octaves": 2, "steps": 4, "mask": "MASK",
               "guide": STYLE}),
    ("explore", {"model": "vgg16", "weights": "offline", "size": 128, "precision": "float32"}),
    ("explore", {"model": "inception_v3", "weights": "none", "size": 128, "precision": "float32"}),
    ("explore", {"model": "vgg16", "weights": "offline", "layers": "block3_conv1", "channels": 8, "size": 128,
                 "precision": "float32"}),
]
TERMS_NOTE = ("Settings 17-24 (style losses, masks, a guide, explorations): their time terms' factors "
              "(`TIME_FIT`) were fitted by `bench_estimate_time.py` at 160 px, not on these rows; "
              "`EXPLORE_ACTIVATION_SHARE` was fitted to rows 22-24 (so their peaks are no independent check).")
MASK = os.path.join(ROOT, "build", "bench-estimate-mask.png")  # the left 60 % of the content, made when needed


def _with_mask(params: dict) -> dict:
    """``params`` with the "MASK" placeholder replaced by the mask file's path (written the first time)."""
    if not os.path.exists(MASK):
        import numpy as np
        from PIL import Image

        os.makedirs(os.path.dirname(MASK), exist_ok=True)
        mask = np.zeros((300, 400), np.uint8)
        mask[:, :240] = 255
        Image.fromarray(mask).save(MASK)
    out = dict(params)
    if out.get("mask") == "MASK":
        out["mask"] = MASK
    elif out.get("mask") == ("MASK",):
        out["mask"] = (MASK,)
    return out


# held-out settings first, both tasks interleaved, the longest last: an interrupted run still has a mix
ORDER = [14, 15, 16, 7, 2, 9, 3, 11, 0, 10, 5, 13, 6, 8, 4, 1, 12]


def _vm_hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def child(index: int) -> None:
    """Run one setting in this (fresh) process; print one JSON line."""
    sys.path.insert(0, ROOT)
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    import nbart
    from nbart import resources

    baseline = resources.current_rss()
    task, params = SETTINGS[index]
    params = _with_mask(params)
    evaluations = [0]
    if task == "style" and params.get("optimizer", "lbfgs") == "lbfgs":
        from nbart import optimizers

        original = optimizers.lbfgs

        def counting(evaluate, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            def counted(x):  # noqa: ANN001
                evaluations[0] += 1
                return evaluate(x)
            return original(counted, *args, **kwargs)

        optimizers.lbfgs = counting
    t0 = time.perf_counter()
    if task == "explore":
        run = nbart.explore_run(CONTENT, **params)
    else:
        run = nbart.dream_run(CONTENT, **params) if task == "dream" else nbart.style_run(CONTENT, STYLE, **params)
    steps, events = 0, []
    for _ in run:
        steps += 1
        events.append(round(time.perf_counter() - t0, 4))  # when each step's event came: the first holds the setup
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "peak_vmhwm": _vm_hwm(),
                      "peak_ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "baseline_rss": baseline, "steps": steps, "evaluations": evaluations[0], "events_s": events}))


def score(row: dict) -> dict:
    """The estimate of a saved row, recomputed from its saved parts with the current MEMORY_FIT."""
    from nbart import cost as E

    parts = row["parts"]
    peak = E._peak(row["params"]["model"], parts["weights_count"], parts["activation_elements"],
                   parts["optimizer_bytes"], parts["image_bytes"], parts["baseline_bytes"])
    return {**row, "est_peak": peak, "peak_error": peak / row["peak_vmhwm"] - 1,
            "time_error": row["est_seconds"] / row["wall_s"] - 1}


def reestimate(row: dict) -> dict:
    """A saved row with its estimate asked again of the current model (the measured figures kept)."""
    from nbart import cost as E

    task, params = row["task"], row["params"]
    images = (CONTENT,) if task in ("dream", "explore") else (CONTENT, STYLE)
    est = E.estimate(task, *images, **_with_mask({k: tuple(v) if isinstance(v, list) else v
                                                  for k, v in params.items()}))
    parts = {k: v for k, v in est.parts.items() if k != "rate"}
    return {**row, "est_seconds": est.seconds, "est_gflops": est.gflops, "rate": est.parts["rate"], "parts": parts}


def _family(row: dict) -> str:
    return "inception_v3" if row["params"]["model"] == "inception_v3" else "vgg"


def fit(rows: list[dict]) -> None:
    """Least squares for MEMORY_FIT's fixed bytes and bytes per activation element (one per family: VGG, Inception),
    per_weight held at 2 (Keras' float32 variables and the lean network's copy); then each row left out in turn."""
    import numpy as np

    families = sorted({_family(r) for r in rows})

    def design(subset: list[dict]) -> tuple:
        a, b = [], []
        for r in subset:
            q = r["parts"]
            a.append([1.0] + [q["activation_elements"] if _family(r) == f else 0.0 for f in families])
            b.append(r["peak_vmhwm"] - q["baseline_bytes"] - q["optimizer_bytes"] - q["image_bytes"]
                     - 2 * 4.0 * q["weights_count"])
        return np.array(a), np.array(b)

    def solve(subset: list[dict]) -> np.ndarray:
        a, b = design(subset)
        return np.linalg.lstsq(a, b, rcond=None)[0]

    x = solve(rows)
    print("fixed", round(x[0] / 1e6, 1), "MB;", {f: round(v, 2) for f, v in zip(families, x[1:])}, "bytes/element")
    for i, r in enumerate(rows):
        xi = solve(rows[:i] + rows[i + 1:])
        a, b = design([r])
        predicted = float(a[0] @ xi) + r["peak_vmhwm"] - b[0]
        print(r["index"], r["task"], r["params"]["model"], f"left-out error {predicted / r['peak_vmhwm'] - 1:+.1%}")


def _row_estimate(row: dict) -> tuple[str, Any]:
    """The task and ``nbart.estimate`` of a fresh-process row of ``benchmarks/memory_rows.py`` (``bench.py
    --child``): the same images and parameters as that child ran (uncalibrated: only its memory is used)."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import bench

    from nbart import cost as E

    task = "dream" if row["kind"].startswith("dream") else "style"
    size, precision = row["size"], row["precision"]
    if task == "dream":
        params = dict(model="inception_v3", weights="none", seed=0, max_size=size, steps=row["steps"])
        return task, E.estimate("dream", bench._image(size), probe_now=False, precision=precision, **params)
    params = dict(model="vgg19", weights="none", seed=0, max_size=size, steps=row["steps"])
    return task, E.estimate("style", bench._image(size), bench._image(size, bench.STYLE), probe_now=False,
                            precision=precision, **params)


def fit_rows(path: str) -> None:
    """Least squares for MEMORY_FIT's fixed bytes and bytes per activation element per (family, precision), to the
    fresh-process peaks of ``benchmarks/memory_rows.py`` (its JSON at ``path``); prints the fit and each row's
    error under it and left out of it."""
    import numpy as np

    from nbart import cost as E

    with open(path) as f:
        rows = [r for r in json.load(f)["rows"] if "peak_rss_mb" in r]
    cases = []
    for r in rows:
        task, est = _row_estimate(r)
        family = "inception_v3" if task == "dream" else "vgg"
        cases.append((r, family, est.parts, est.peak_bytes))
    keys = sorted({(family, r["precision"]) for r, family, _, _ in cases})

    def design(subset: list) -> tuple:
        a, b = [], []
        for r, family, q, _ in subset:
            weight_bytes = 2.0 if r["precision"] == "bfloat16" else 4.0
            a.append([1.0] + [q["activation_elements"] if (family, r["precision"]) == k else 0.0 for k in keys])
            b.append(r["peak_rss_mb"] * 2 ** 20 - q["baseline_bytes"] - q["optimizer_bytes"] - q["image_bytes"]
                     - E.MEMORY_FIT["per_weight"] * weight_bytes * q["weights_count"])
        return np.array(a), np.array(b)

    def solve(subset: list) -> np.ndarray:
        a, b = design(subset)
        return np.linalg.lstsq(a, b, rcond=None)[0]

    x = solve(cases)
    print("fixed", round(x[0] / 1e6, 1), "MB;", {f"{f} {p}": round(v, 2) for (f, p), v in zip(keys, x[1:])},
          "bytes/element")
    for i, (r, _, _, current) in enumerate(cases):
        a, b = design([cases[i]])
        measured = r["peak_rss_mb"] * 2 ** 20
        fitted = float(a[0] @ x) + measured - b[0]
        left_out = float(a[0] @ solve(cases[:i] + cases[i + 1:])) + measured - b[0]
        print(f"{r['kind']:12} {r['size']:5} {r['precision']:9} measured {measured / 1e6:6.0f} MB  current model "
              f"{current / measured - 1:+6.1%}  fitted {fitted / measured - 1:+6.1%}  left out "
              f"{left_out / measured - 1:+6.1%}")


def table(rows: list[dict]) -> str:
    out = ["| # | task | setting | est. time (s) | wall (s) | time err | est. peak (MB) | peak (MB) | peak err | "
           "load avg |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        setting = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        out.append(f"| {r['index']} | {r['task']} | {setting} | {r['est_seconds']:.1f} | {r['wall_s']:.1f} | "
                   f"{r['time_error']:+.0%} | {r['est_peak'] / 1e6:.0f} | {r['peak_vmhwm'] / 1e6:.0f} | "
                   f"{r['peak_error']:+.0%} | {r['load']:.1f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, default=None)
    parser.add_argument("--only", default="")
    parser.add_argument("--rescore", action="store_true")
    parser.add_argument("--reestimate", action="store_true", help="ask nbart.estimate again for the saved rows (the "
                        "model changed: TIME_FIT refitted), without running anything again; the probe's cached rate")
    parser.add_argument("--out", default="estimate-accuracy", help="the results' name in benchmarks/results")
    parser.add_argument("--append", action="store_true", help="keep the saved rows of --out, replacing those run "
                        "again (to measure a table in short chunks: --only 14,15 --append, then --only 16,7 --append)")
    parser.add_argument("--fit-from", default="", help="the saved results --fit reads (default: the latest)")
    parser.add_argument("--fit", action="store_true", help="print MEMORY_FIT fitted to the saved rows (least squares, "
                        "with each row's error when left out of the fit)")
    parser.add_argument("--fit-rows", default="", help="fit MEMORY_FIT to a benchmarks/memory_rows.py JSON instead")
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)
    sys.path.insert(0, ROOT)
    if args.fit_rows:
        return fit_rows(args.fit_rows)
    path = os.path.join(RESULTS, f"{args.out}.json")
    if args.fit:
        with open(args.fit_from or path) as f:
            return fit(json.load(f)["rows"])
    if args.rescore or args.reestimate:
        with open(path) as f:
            saved = json.load(f)
        rows = [score(reestimate(r) if args.reestimate else r) for r in saved["rows"]]
    else:
        from nbart import cost as E
        from nbart.precision import cpu_model

        indices = [int(i) for i in args.only.split(",")] if args.only else ORDER
        rows = []
        if args.append and os.path.exists(path):
            with open(path) as f:
                rows = [r for r in json.load(f)["rows"] if r["index"] not in indices]
        saved = {"machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}",
                 "note": "float32; wall = call of dream_run/style_run to the last event in a fresh process after "
                         "importing TensorFlow; peak = VmHWM of that process"}
        for index in indices:
            task, params = SETTINGS[index]
            images = (CONTENT,) if task in ("dream", "explore") else (CONTENT, STYLE)
            est = E.estimate(task, *images, **_with_mask(params))
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(index)],
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
            lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if not lines:
                print(out.stderr[-2000:], file=sys.stderr)
                continue
            measured = json.loads(lines[-1])
            parts = {k: v for k, v in est.parts.items() if k != "rate"}
            row = {"index": index, "task": task, "params": params, "est_seconds": est.seconds,
                   "est_gflops": est.gflops, "rate": est.parts["rate"], "parts": parts,
                   "load": (load + os.getloadavg()[0]) / 2, **measured}
            row = score(row)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            write(saved, rows, path)
    write(saved, rows, path)


def write(saved: dict, rows: list[dict], path: str) -> None:
    """Save the rows so far (JSON and the markdown table), atomically."""
    from nbart import cost as E

    iterations = [(r["evaluations"], r["steps"]) for r in rows if r.get("evaluations")]
    saved.update(rows=rows, memory_fit=E.MEMORY_FIT,
                 lbfgs_evaluations_per_iteration=[round(e / s, 3) for e, s in iterations])
    os.makedirs(RESULTS, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(saved, f, indent=1)
    os.replace(tmp, path)
    within_t = sum(abs(r["time_error"]) <= 0.3 for r in rows)
    within_m = sum(abs(r["peak_error"]) <= 0.2 for r in rows)
    loads = [r["load"] for r in rows]
    md = (f"Machine: {saved['machine']}, float32 (no AVX512_BF16). {saved['note']}.\n\n{table(rows)}\n\n"
          f"Within +-30 % time: {within_t}/{len(rows)}; within +-20 % peak memory: {within_m}/{len(rows)}. "
          f"1-minute load average during the runs {min(loads):.1f}-{max(loads):.1f} on 2 cores shared with other "
          f"work: the time accuracy depends on the load staying what it was when the probe ran.\n\n"
          "The time model is fitted to no row: its rates come from `nbart.cost.probe` (run by this benchmark's "
          "first estimate for each backbone, in this process: the rates are in the JSON). The memory factors "
          "(`MEMORY_FIT`) are fitted by least squares to fresh-process peaks; `nbart/cost.py` names the rows.\n"
          + (f"\n{TERMS_NOTE}\n" if any(r["index"] >= 17 for r in rows) else ""))
    md_path = path[:-len(".json")] + ".md"
    with open(md_path + ".tmp", "w") as f:
        f.write(md)
    os.replace(md_path + ".tmp", md_path)


if __name__ == "__main__":
    main()
