"""Kernels flipped once ahead against flipped in every backward pass (``nbart.convgrad.flip``): dream step time and
peak memory.

Run from the repository root; writes ``benchmarks/results/flip-ahead.{json,txt}``::

    python benchmarks/bench_flip_ahead.py            # about 5 minutes on 2 quiet cores
    python benchmarks/bench_flip_ahead.py --quick    # tiny: checks that the harness runs

Method
------
- Speed: one process; a dream of ``sample:grace_hopper`` with the offline VGG16 (the default dream offline), float32,
  one octave, at long sides 40, 128 and 448 px; each variant (``DreamPrepared.flip_ahead`` True or False, the
  caches cleared between them) runs 1 warm-up step then ``--steps`` steps, the step times from the events; the two
  variants alternate ``--rounds`` times and the table gives the median step of each and their ratio (the machine
  may be shared: the ratio of interleaved rounds is what to read, the load is recorded).
- Memory: a fresh process per variant runs the default dream (512 px, 4 octaves) for 3 steps per octave (the peak
  is that of the largest octave's step, reached at its first) and reports its peak resident set (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def _cpu() -> str:
    name, flags = platform.processor() or "CPU", ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = "AVX512_BF16" if "avx512_bf16" in info else "AVX2 only, no AVX512_BF16"
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, {flags}"


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def child(ahead: bool) -> None:
    import nbart
    from nbart import deepdream

    deepdream.DreamPrepared.flip_ahead = ahead
    nbart.dream("sample:grace_hopper", model="vgg16", weights="offline", precision="float32", steps=3, seed=0)
    print(json.dumps({"flip_ahead": ahead, "peak_mb": _peak_mb()}))


def steps(ahead: bool, side: int, count: int) -> list[float]:
    import nbart
    from nbart import backbones, deepdream

    backbones.clear_cache()
    deepdream.DreamPrepared.flip_ahead = ahead
    run = nbart.dream_run("sample:grace_hopper", model="vgg16", weights="offline", precision="float32",
                          max_size=side, octaves=1, steps=count + 1, seed=0)
    times, last = [], 0.0
    for event in run:
        times.append(event.elapsed - last)
        last = event.elapsed
    return times[1:]  # the first step also builds and traces


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", choices=["ahead", "late"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("NBART_OFFLINE", "1")
    import nbart.quiet  # noqa: F401  (TensorFlow without its start-up lines)

    if args.child:
        child(args.child == "ahead")
        return 0
    sides = (40, 64) if args.quick else (40, 128, 448)
    count, rounds = (2, 1) if args.quick else (args.steps, args.rounds)
    load_before = os.getloadavg()
    rows = []
    for side in sides:
        seen: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for ahead in (False, True):
                seen[ahead] += steps(ahead, side, count)
        late, ahead = statistics.median(seen[False]), statistics.median(seen[True])
        rows.append({"side": side, "late_s": late, "ahead_s": ahead, "speedup": late / ahead})
        print(f"{side} px: step {late:.3f} s flipped in the backward pass, {ahead:.3f} s flipped ahead: "
              f"x{late / ahead:.2f}", flush=True)
    memory = []
    if not args.quick:
        for variant in ("late", "ahead"):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", variant], capture_output=True,
                                 text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            memory.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"default dream (512 px, VGG16 offline), flip_ahead={memory[-1]['flip_ahead']}: peak "
                  f"{memory[-1]['peak_mb']:.0f} MB", flush=True)
    result = {"cpu": _cpu(), "load_before": load_before, "load_after": os.getloadavg(), "steps": count,
              "rounds": rounds, "speed": rows, "memory": memory, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                      time.gmtime())}
    lines = [f"# Kernels flipped ahead vs in each backward pass; {result['cpu']}; float32; {result['date']}; "
             f"load average {load_before[0]:.1f} before, {result['load_after'][0]:.1f} after",
             "", "| long side | step, flipped in the backward pass | step, flipped ahead | speed-up |",
             "|---|---|---|---|"]
    lines += [f"| {r['side']} px | {r['late_s']:.3f} s | {r['ahead_s']:.3f} s | x{r['speedup']:.2f} |" for r in rows]
    if memory:
        lines += ["", "| default dream, 512 px, VGG16 offline (fresh process) | peak RSS |", "|---|---|"]
        lines += [f"| flip_ahead={m['flip_ahead']} | {m['peak_mb']:.0f} MB |" for m in memory]
    name = "flip-ahead" + ("-quick" if args.quick else "")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(RESULTS, f"{name}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
