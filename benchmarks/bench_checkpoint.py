"""What the CLI's checkpoints cost a run (issue 17): the time spent writing them against the run's wall time.

Run from the repository root; writes ``benchmarks/results/checkpoint.json`` and ``.txt``::

    python benchmarks/bench_checkpoint.py           # a dream and a style transfer, ~2-4 min on 2 shared cores
    python benchmarks/bench_checkpoint.py --quick   # tiny sizes, random weights: checks that the harness runs

Method
------
- Runs ``nbart.cli.main`` in this process (networks built and traced once by a warm-up run first, so that the
  timed runs are steady) with ``model="vgg16", weights="offline"`` on ``$NBART_IMAGES``' tubingen.jpg (style:
  starry_night.jpg): a dream (max_size 512, 3 octaves x 10 steps) and a style transfer (max_size 384, 30 L-BFGS
  iterations); ``--quick`` uses random weights at 128 px.
- Each task runs with the default cadence (``CHECKPOINT_SECONDS`` = 5, and every stage end) and with a checkpoint
  after every step (``CHECKPOINT_SECONDS = 0``: the worst case, which gives the cost of one checkpoint). The CLI's
  checkpoint writer counts the seconds spent in it (rendering the image, encoding the PNG, fsync, rename): the
  table quotes that sum over the run's wall time. A share, not a difference of two wall times: on shared cores the
  run-to-run noise of the wall time is larger than the cost measured.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IMAGES = pathlib.Path(os.environ.get("NBART_IMAGES", ROOT.parent / "shared" / "images"))


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(argv: list[str], seconds: float) -> dict:
    from nbart import cli

    writers = []
    real = cli._Checkpoints

    class Counting(real):  # the writer the CLI makes, kept to read its counters
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            writers.append(self)

    cli._Checkpoints, saved = Counting, cli.CHECKPOINT_SECONDS
    cli.CHECKPOINT_SECONDS = seconds
    try:
        t0 = time.perf_counter()
        status = cli.main(argv)
        wall = time.perf_counter() - t0
    finally:
        cli._Checkpoints, cli.CHECKPOINT_SECONDS = real, saved
    assert status == 0, status
    w = writers[-1]
    return {"interval_s": seconds, "wall_s": round(wall, 2), "checkpoints": w.count,
            "checkpoint_s": round(w.seconds, 3), "share_pct": round(100 * w.seconds / wall, 2),
            "per_checkpoint_ms": round(1000 * w.seconds / max(1, w.count), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    weights = ["--model=vgg16", "--weights=none" if args.quick else "--weights=offline", "--precision=float32",
               "--seed=0", "--quiet"]
    content, style = str(IMAGES / "tubingen.jpg"), str(IMAGES / "starry_night.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.png")
        tasks = {
            "dream": ["dream", content, "-o", out, *weights, f"--max-size={128 if args.quick else 512}",
                      "--octaves=3", "--steps=10"],
            "style": ["style", content, style, "-o", out, *weights, f"--max-size={128 if args.quick else 384}",
                      "--steps=30"],
        }
        rows = []
        for name, argv in tasks.items():
            warm = [a if not a.startswith("--steps") else "--steps=1" for a in argv]
            measure(warm, float("inf"))  # build and trace the network
            for seconds in (5.0, 0.0):
                row = {"task": name, **measure(argv, seconds)}
                rows.append(row)
                print(row, flush=True)
    result = {"cpu": _cpu(), "quick": args.quick, "rows": rows}
    if args.quick:
        return
    results = ROOT / "benchmarks" / "results"
    (results / "checkpoint.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"CLI checkpoint cost ({result['cpu']}); vgg16 offline weights, tubingen.jpg (+ starry_night.jpg)", "",
             f"{'task':6} {'interval':>8} {'wall s':>7} {'checkpoints':>11} {'in them s':>9} {'share':>7} "
             f"{'each ms':>8}"]
    for r in rows:
        lines.append(f"{r['task']:6} {r['interval_s']:>7g}s {r['wall_s']:>7.1f} {r['checkpoints']:>11} "
                     f"{r['checkpoint_s']:>9.2f} {r['share_pct']:>6.2f}% {r['per_checkpoint_ms']:>8.1f}")
    (results / "checkpoint.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
