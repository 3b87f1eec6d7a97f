"""The StyleStudio's fast preview: how long from a change of choice to the picture in the panel.

Run from the repository root; writes ``benchmarks/results/studio-fast-preview.json`` and ``.txt``::

    python benchmarks/bench_studio.py            # ~1 min
    python benchmarks/bench_studio.py --quick    # fewer repeats, checks that the harness runs

Method
------
A StyleStudio in thread mode with its starting settings (output 384 px: the preview has the run's size), warm-up
off, in a fresh process. "first": from the constructor's start to the first fast preview in the history (the
two ONNX networks loaded and their input made size-free, then one stylization of Grace Hopper in Starry Night).
"change": from setting the strength slider to the new preview in the history, a repeat each, warm networks; it
includes the :data:`~nbart.studio.fast.DEBOUNCE_S` wait, and ``engine`` is the stylization's own time. The table
quotes the median of the repeats; seconds depend on the machine and its load, so read them beside the CPU line.
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


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"


def _wait_for(studio, count: int, timeout: float = 120) -> float:
    deadline = time.perf_counter() + timeout
    while len(studio.history) < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no fast preview within {timeout} s: {studio.message.value}")
        time.sleep(0.005)
    return time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 7")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 7
    cpu = _cpu()

    from nbart.studio import StyleStudio
    from nbart.studio.fast import DEBOUNCE_S

    t0 = time.perf_counter()
    studio = StyleStudio(mode="thread", warm_up=False, fast_preview=True, weights="none")
    first = _wait_for(studio, 1) - t0
    size = studio.history[-1].image.size
    changes, engine = [], []
    for i in range(repeats):
        studio.fast.wait(60)
        t = time.perf_counter()
        studio.fast.strength.value = 0.5 if i % 2 == 0 else 1.0
        changes.append(_wait_for(studio, i + 2) - t)
        engine.append(studio.history[-1].seconds)
    result = {"cpu": cpu, "preview_size": list(size), "debounce_s": DEBOUNCE_S, "first_s": first,
              "change_s": changes, "engine_s": engine}
    lines = [
        f"StyleStudio fast preview, {size[0]}x{size[1]} px (Grace Hopper in Starry Night); {cpu}",
        f"first preview after the panel is built (networks loaded cold): {first:.2f} s",
        f"slider change to preview shown, median of {repeats}: {statistics.median(changes):.2f} s "
        f"(debounce {DEBOUNCE_S} s + stylization {statistics.median(engine):.2f} s + hand-over)",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "studio-fast-preview" + ("-quick" if args.quick else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
