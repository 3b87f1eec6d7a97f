"""Peak memory of nbart's default runs by size and precision: one fresh process per row (``bench.py --child``).

    python benchmarks/memory_rows.py [--style 256,512,768,1024] [--dream 512,1024,2048]
        [--precisions float32,bfloat16] [--style-steps 8] [--dream-steps 1] [--jobs 1] --json OUT.json

Style rows: the default style run (VGG19, sample:grace_hopper with sample:starry_night, sizes halving from
``max_size`` down to 256 px), ``--style-steps`` L-BFGS iterations per size: the peak is reached once L-BFGS holds its
7 corrections (its workspace pages are touched as they fill), so 8 iterations stand for the default 50. Dream rows:
the default dream (InceptionV3, 4 octaves, tiles of 512 px), ``--dream-steps`` steps per octave (its memory does not
grow with steps). Weights "none" (the same network shapes as ImageNet's). Every row names the CPU, whether it has
bfloat16 instructions and the precision the run used; bfloat16 on a CPU without them is emulated (slow, but its
tensors are 16-bit: the memory is real). Writes OUT.json (rows) and OUT.md (a table), again after every row, so an
interrupted run keeps the rows it finished; ``--resume`` skips the rows OUT.json already holds (without an error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))


def row(kind: str, size: int, precision: str, steps: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--child", kind, "--child-size", str(size),
                          "--child-steps", str(steps), "--child-precision", precision],
                         capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            result["asked_precision"] = precision
            print(json.dumps(result), flush=True)
            return result
    return {"kind": kind, "size": size, "asked_precision": precision, "steps": steps,
            "error": (out.stderr or out.stdout)[-2000:], "wall_s": time.perf_counter() - t0}


def table(rows: list[dict]) -> str:
    lines = ["| run | size (px) | precision | CPU (bfloat16 instructions) | steps | peak RSS (MB) | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['size']} | {r['asked_precision']} | | | failed | |")
            continue
        cpu = f"{r.get('cpu', '?')} ({'yes' if r.get('cpu_bf16') else 'no'})"
        lines.append(f"| {r['kind']} | {r['size']} | {r['precision']} | {cpu} | {r.get('steps', '')} | "
                     f"{r['peak_rss_mb']:.0f} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="256,512,768,1024", help="style max_size values ('' for none)")
    ap.add_argument("--dream", default="512,1024,2048", help="dream max_size values ('' for none)")
    ap.add_argument("--precisions", default="float32,bfloat16")
    ap.add_argument("--style-steps", type=int, default=8)
    ap.add_argument("--dream-steps", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="rows run at once (peak RSS is per process)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--resume", action="store_true", help="keep OUT.json's finished rows and run only the others")
    args = ap.parse_args()
    sizes = {kind: [int(s) for s in spec.split(",") if s] for kind, spec in
             (("style-nbart", args.style), ("dream-nbart", args.dream))}
    todo = [(kind, size, precision, args.style_steps if kind.startswith("style") else args.dream_steps)
            for precision in args.precisions.split(",") for kind, values in sizes.items() for size in values]
    rows: list[dict] = []
    if args.resume and os.path.exists(args.json):
        with open(args.json) as f:
            rows = [r for r in json.load(f)["rows"] if "error" not in r]
        finished = {(r["kind"], r["size"], r["asked_precision"]) for r in rows}
        todo = [t for t in todo if (t[0], t[1], t[2]) not in finished]
    lock = threading.Lock()

    def save() -> None:  # after every row, atomically: an interrupted run keeps what it finished
        for path, text in ((args.json, json.dumps({"method": __doc__.strip().splitlines()[0], "args": vars(args),
                                                    "rows": rows}, indent=1)),
                           (os.path.splitext(args.json)[0] + ".md", table(rows) + "\n")):
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)

    def run(t: tuple) -> None:
        result = row(*t)
        with lock:
            rows.append(result)
            save()

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(run, todo))
    print(table(rows))


if __name__ == "__main__":
    main()
