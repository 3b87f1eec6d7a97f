"""The layer and channel explorer (``nbart.explore``): batched objectives against one dream run each.

Run from the repository root; writes ``benchmarks/results/explore.json`` and ``.txt``::

    python benchmarks/bench_explore.py            # VGG16 offline + InceptionV3 random, 128 px, 5 steps
                                                  # (tens of minutes on 2 shared cores)
    python benchmarks/bench_explore.py --quick    # 48 px, 2 steps, 3 layers: checks that the harness runs

Method
------
- Image: the bundled ``sample:grace_hopper``, long side ``--size`` px (128). Every objective: ``--steps`` (5) dream
  steps on one octave, step size 0.1 (the defaults), jitter 8 px, seed 0, float32 (this CPU has no bfloat16).
- Layers: every pickable layer of VGG16 with the offline weights (13 convolutions), in the default mode; then the
  modes compared on the 5 blocks (the last convolution of each); channels: the 8 most active of block4_conv3.
  Each mode is timed twice in a row: "cold" (first time in the process for its traced functions:
  tracing included) and "warm" (the same again, results cache cleared). Modes, in one process:

  - ``one run each``: ``nbart.dream_run(image, layers=(spec,), octaves=1, ...)`` per objective, to the end (the
    engine's own dream step: one network cut after that layer, traced once per layer);
  - ``explore batch=1``: the explorer, one objective per call (its loop, no batching);
  - ``explore batch=4``: 4 objectives per batched call, shallow first, cascade on;
  - ``explore batch=all``: every objective in ONE batched call, cascade on;
  - ``batch=all, no cascade``: one batched call, every element through the whole network (torch-dreams' way).

  Times are ratios against ``one run each`` from the same run (the machine is shared, so absolute seconds drift).
  "first" is the wall time from the call to the first result.
- InceptionV3 (weights "none": its ImageNet weights can't be downloaded here, so timing only): all 11 mixed layers,
  the default mode, cold and warm.
- ``--targets``: only the issue's targets (all VGG16 layers, all InceptionV3 mixed layers), the default (the
  shallowest layer alone, then the others in one cascaded call) against ``batch=1`` (one layer a call, the
  default before), cold then warm, in one process, the load average beside each row.
- Grid pictures: ``benchmarks/results/explore-vgg16.png`` (the default mode's grid; the sample is shipped, so the
  picture may be).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

IMAGE = "sample:grace_hopper"


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                flags = open("/proc/cpuinfo").read()
                isa = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "no AVX2")
                return f"{name} ({isa}, {len(__import__('os').sched_getaffinity(0))} cores)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def time_one_run_each(specs: list[str], common: dict[str, Any]) -> dict[str, float]:
    import nbart

    t0 = time.perf_counter()
    first = None
    for spec in specs:
        run = nbart.dream_run(IMAGE, layers=(spec,), octaves=1, **common)
        for _ in run:
            pass
        first = first or time.perf_counter() - t0
    return {"total": time.perf_counter() - t0, "first": first}


def time_explore(common: dict[str, Any], **kw: Any) -> tuple[dict[str, float], Any]:
    from nbart import explorer

    explorer.clear_cache()
    t0 = time.perf_counter()
    ex = explorer.explore_run(IMAGE, size=common["max_size"], steps=common["steps"], step_size=common["step_size"],
                              jitter=common["jitter"], seed=common["seed"], precision="float32",
                              model=common["model"], weights=common["weights"], **kw)
    first = None
    for _ in ex:
        first = first or time.perf_counter() - t0
    return {"total": time.perf_counter() - t0, "first": first}, ex


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="48 px, 2 steps, 3 layers, no InceptionV3")
    ap.add_argument("--targets", action="store_true",
                    help="only the default mode: all VGG16 layers (offline) and all InceptionV3 mixed layers (random)")
    ap.add_argument("--out", default="explore")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.steps = 48, 2
    import nbart.quiet  # noqa: F401  (TensorFlow without its start-up lines)
    from nbart import registry

    common = dict(model="vgg16", weights="offline", max_size=args.size, steps=args.steps, step_size=0.1, jitter=8,
                  seed=0, precision="float32")
    every = list(registry.get("vgg16").layers)
    blocks = [name for k, name in enumerate(every) if k + 1 == len(every) or every[k + 1][:6] != name[:6]]
    if args.quick:
        every, blocks = every[:3], every[:3]
    channel_layer = "block4_conv3" if not args.quick else blocks[-1]
    rows: list[dict[str, Any]] = []

    def record(what: str, mode: str, cold: dict[str, float], warm: dict[str, float]) -> None:
        rows.append({"what": what, "mode": mode, "cold": cold, "warm": warm, "load": os.getloadavg()[0]})
        print(f"{what:28} {mode:24} cold {cold['total']:7.1f} s (first {cold['first']:5.1f})   "
              f"warm {warm['total']:7.1f} s (first {warm['first']:5.1f})", flush=True)

    import nbart
    t0 = time.perf_counter()  # the network (offline weights) built once before any mode: cold = tracing only
    nbart.activations(IMAGE, ["block1_conv1"], model="vgg16", weights="offline", max_size=args.size)
    build = time.perf_counter() - t0
    print(f"vgg16 offline network built in {build:.1f} s", flush=True)

    grid = None
    what = f"vgg16 offline, all {len(every)} layers"
    cold, _ = time_explore(common, layers=every)
    warm, ex = time_explore(common, layers=every)
    record(what, "explore default", cold, warm)
    grid = ex.grid()

    if args.targets:  # the default against one layer a call (the default before), in the same process
        record(what, "one layer a call", *(time_explore(common, layers=every, batch=1)[0] for _ in range(2)))
        inception = dict(common, model="inception_v3", weights="none")
        t0 = time.perf_counter()
        nbart.activations(IMAGE, ["mixed0"], model="inception_v3", weights="none", max_size=args.size)
        print(f"inception_v3 network built in {time.perf_counter() - t0:.1f} s", flush=True)
        cold, _ = time_explore(inception)
        warm, _ = time_explore(inception)
        record("inception_v3 random, 11 mixed", "explore default", cold, warm)
        record("inception_v3 random, 11 mixed", "one layer a call",
               *(time_explore(inception, batch=1)[0] for _ in range(2)))
        modes_wanted = False
    else:
        modes_wanted = True
    n = len(blocks)
    what = f"vgg16 offline, {n} blocks (last conv)"
    modes = [("explore batch=4", dict(batch=4)), ("explore batch=1", dict(batch=1)),
             ("explore batch=all", dict(batch=n)), ("batch=all, no cascade", dict(batch=n, cascade=False))]
    for mode, kw in modes if modes_wanted else []:
        cold, _ = time_explore(common, layers=blocks, **kw)
        warm, _ = time_explore(common, layers=blocks, **kw)
        record(what, mode, cold, warm)
    if modes_wanted:
        record(what, "one run each", time_one_run_each(blocks, common), time_one_run_each(blocks, common))

    n_channels = 8 if not args.quick else 3
    what = f"vgg16 offline, {n_channels} channels of {channel_layer}"
    from nbart import explorer
    ex = explorer.explore_run(IMAGE, model="vgg16", weights="offline", layers=channel_layer, channels=n_channels,
                              size=args.size, precision="float32")
    chosen = [int(s.split(":")[1]) for s in ex.specs]
    for mode, batch in (("explore batch=all", n_channels), ("explore batch=1", 1)) if modes_wanted else ():
        cold, _ = time_explore(common, layers=channel_layer, channels=chosen, batch=batch)
        warm, _ = time_explore(common, layers=channel_layer, channels=chosen, batch=batch)
        record(what, mode, cold, warm)
    if modes_wanted:
        record(what, "one run each", time_one_run_each(list(ex.specs), common),
               time_one_run_each(list(ex.specs), common))

    if not args.quick and modes_wanted:
        inception = dict(common, model="inception_v3", weights="none")
        t0 = time.perf_counter()
        nbart.activations(IMAGE, ["mixed0"], model="inception_v3", weights="none", max_size=args.size)
        print(f"inception_v3 network built in {time.perf_counter() - t0:.1f} s", flush=True)
        cold, _ = time_explore(inception)
        warm, _ = time_explore(inception)
        record("inception_v3 random, 11 mixed", "explore default", cold, warm)

    cpu = cpu_name()
    lines = [f"# nbart.explore at {args.size} px, {args.steps} steps, float32 — {cpu}, machine shared (load "
             f"{open('/proc/loadavg').read().split()[0]} at the end; per row in the JSON)", "",
             "| objectives | mode | cold s | cold first s | warm s | warm first s | warm speed-up vs one run each |",
             "|---|---|---|---|---|---|---|"]
    baseline = "one layer a call" if args.targets else "one run each"
    lines[2] = lines[2].replace("vs one run each", f"vs {baseline}")
    base = {r["what"]: r["warm"]["total"] for r in rows if r["mode"] == baseline}
    for r in rows:
        ratio = base.get(r["what"])
        speed = f"{ratio / r['warm']['total']:.2f}x" if ratio else "-"
        lines.append(f"| {r['what']} | {r['mode']} | {r['cold']['total']:.1f} | {r['cold']['first']:.1f} | "
                     f"{r['warm']['total']:.1f} | {r['warm']['first']:.1f} | {speed} |")
    lines += ["", f"Building the VGG16 offline network (once per process, before the modes): {build:.1f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.out}.txt").write_text(text)
        (RESULTS / f"{args.out}.json").write_text(json.dumps({"cpu": cpu, "size": args.size, "steps": args.steps,
                                                               "build_s": build, "rows": rows}, indent=1))
        if grid is not None:
            grid.save(RESULTS / f"{args.out}-vgg16.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
