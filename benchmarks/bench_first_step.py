"""A studio's first seconds after Run: how long until the first step, and how true the first time estimate is.

Run from the repository root; writes ``benchmarks/results/first-step.json`` and ``.txt``::

    python benchmarks/bench_first_step.py                 # both studios, a few minutes on a busy 2-core CPU
    python benchmarks/bench_first_step.py --quick         # tiny sizes: checks that the harness runs
    python benchmarks/bench_first_step.py --uncalibrated  # as on a machine whose rate was never probed

Method
------
One fresh process, as a participant's kernel: ``import nbart`` (which in a kernel starts loading TensorFlow in the
background: ``nbart.quiet.preload``; ``--no-preload`` as before it), ``--gap`` seconds later a DreamStudio and then
a StyleStudio (thread mode, warm-up on as in a notebook, the style studio's fast preview on), each left open for
``--open`` seconds before Run is pressed (``studio.start()``, what the button calls). "first step" is from Run to
the first step event of the run (polled every 5 ms on ``studio.active_run.latest``). Every step event's estimate of
the seconds left is recorded: "shown" is what the status line shows (``StepEvent.seconds_left``), its truth the
run's real remaining time (the last step's ``elapsed`` minus this step's); the ratio estimate / truth is reported
for the first step that shows one and for the first that the engine's per-stage model (``StepEvent.eta``) gave. Then
the style studio's style images change (as a participant picks another painting), the fast preview of the change is
let finish, and Run is pressed again: its first step, and whether anything was built or traced again (networks
built, extractors and traced functions, the functions' tracing counts). Seconds depend on the machine and its load:
read them beside the CPU line, which gives the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
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
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
        simd = ", ".join(name for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if name in flags)
    except (OSError, StopIteration):
        simd = "flags unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = f"{os.cpu_count()} cores" if usable == os.cpu_count() else f"{usable} of {os.cpu_count()} cores (taskset)"
    return f"{model}, {cores}, {simd}"


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _uncalibrated_home() -> str:
    """Point KERAS_HOME at a new folder holding the present one's weights (a link) and its rate cache minus every
    measured rate: the studio's estimates and runs see a machine never probed, nothing else differs."""
    import shutil
    import tempfile

    # as nbart.weights.keras_home and nbart.cost.CACHE_FILE find them, without importing nbart before it is timed
    old = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    cache_file = "nbart_estimate.json"
    new = tempfile.mkdtemp(prefix="nbart-uncalibrated-")
    if os.path.isdir(os.path.join(old, "models")):
        os.symlink(os.path.join(old, "models"), os.path.join(new, "models"))
    if os.path.isfile(os.path.join(old, "keras.json")):
        shutil.copy(os.path.join(old, "keras.json"), new)
    try:
        with open(os.path.join(old, cache_file)) as f:
            cached = {k: v for k, v in json.load(f).items() if not k.startswith("rate|")}
    except (OSError, ValueError):
        cached = {}
    with open(os.path.join(new, cache_file), "w") as f:
        json.dump(cached, f)
    os.environ["KERAS_HOME"] = new
    return new


def _traces() -> dict:
    """What the process has built so far: networks, extractors, traced functions and their tracing counts."""
    from nbart import extractors

    counts = 0
    functions = 0
    for ext in extractors.cached_extractors.values():
        for pair in ext.functions.values():
            for f in pair:
                f = getattr(f, "function", f)  # the style loss is wrapped to keep its argument order
                if hasattr(f, "experimental_get_tracing_count"):
                    functions += 1
                    counts += f.experimental_get_tracing_count()
    return {"networks": len(extractors.cached_models), "extractors": len(extractors.cached_extractors),
            "functions": functions, "tracings": counts}


def _press_run(studio, timeout: float = 900) -> dict:
    """Press Run and follow the run to its end: the time to the first step and every step's estimate."""
    t0 = time.perf_counter()
    assert studio.start(), studio.message.value
    first = None
    seen: list[tuple[int, float, float, float]] = []  # step, elapsed, shown estimate, engine's estimate
    deadline = t0 + timeout
    while True:
        run = studio.active_run
        event = run.latest if run is not None else None
        if event is not None and (not seen or event.step != seen[-1][0]):
            if first is None:
                first = time.perf_counter() - t0
            seen.append((event.step, event.elapsed, event.seconds_left, event.eta))
        if not studio.running and studio.driver.thread is not None and not studio.driver.thread.is_alive():
            break
        if time.perf_counter() > deadline:
            studio.stop()
            raise TimeoutError("the run did not end")
        time.sleep(0.005)
    studio.wait(60)
    last = studio.history[-1]
    total_elapsed = seen[-1][1] if seen else float("nan")

    def ratio(pick: int) -> dict | None:
        for step, elapsed, shown, eta in seen:
            value = (shown, eta)[pick]
            if step < last.total and math.isfinite(value):
                truth = total_elapsed - elapsed
                return {"step": step, "estimate_s": value, "truth_s": truth, "ratio": value / truth}
        return None

    return {"first_step_s": first, "run_s": time.perf_counter() - t0, "engine_elapsed_s": total_elapsed,
            "steps": last.steps_done, "total": last.total, "first_shown_eta": ratio(0), "first_engine_eta": ratio(1),
            "estimates": seen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=float, default=5.0, help="seconds the panel is open before Run (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps: checks that the harness runs")
    parser.add_argument("--dream", default="max_size=320", help="dream keywords, k=v,k=v (default max_size=320)")
    parser.add_argument("--style", default="sizes=128+192,steps=10",
                        help="style keywords, k=v,k=v, tuples with + (default sizes=128+192,steps=10)")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="as on a machine whose rate was never probed: a private Keras folder (KERAS_HOME) with "
                             "the weights and the network tables, without any measured rate")
    parser.add_argument("--gap", type=float, default=0.0,
                        help="seconds from `import nbart` to the studio's creation: the quickstart imports nbart in "
                             "its first cell, and a participant reads on before running the studio's (default 0)")
    parser.add_argument("--no-preload", action="store_true",
                        help="as before nbart.quiet.preload: TensorFlow starts loading only with the studio's warm-up")
    parser.add_argument("--name", default="first-step", help="results file name, without extension")
    args = parser.parse_args(argv)
    if args.uncalibrated:
        _uncalibrated_home()

    def keywords(text: str) -> dict:
        out = {}
        for part in filter(None, text.split(",")):
            key, value = part.split("=", 1)
            items = [int(v) if v.isdigit() else v for v in value.split("+")]
            out[key] = tuple(items) if "+" in value else items[0]
        return out

    dream_kw, style_kw = keywords(args.dream), keywords(args.style)
    if args.quick:
        dream_kw.update(max_size=96, octaves=2, steps=3)
        style_kw.update(sizes=(64,), steps=3)
    os.environ.setdefault("NBART_OFFLINE", "1")  # auto weights fall back at once (no network here)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # as in a Jupyter kernel, where `import nbart` starts loading TensorFlow (this process is not one)
    os.environ["NBART_PRELOAD"] = "0" if args.no_preload else "1"
    cpu, load_before = _cpu(), _load()
    t = time.perf_counter()
    import nbart
    from nbart.studio import DreamStudio, StyleStudio
    imported = time.perf_counter() - t
    time.sleep(max(0.0, args.gap - imported))

    result: dict = {"cpu": cpu, "load_before": load_before, "open_s": args.open, "import_s": imported,
                    "gap_s": args.gap, "preload": not args.no_preload, "dream_params": dream_kw,
                    "style_params": style_kw, "nbart": nbart.__file__}
    dream = DreamStudio(mode="thread", warm_up=True, **dream_kw)
    time.sleep(args.open)
    result["dream_warm_at_run"] = not dream.warm_up_thread.is_alive()
    result["dream"] = _press_run(dream)

    style = StyleStudio(mode="thread", warm_up=True, fast_preview=True, **style_kw)
    time.sleep(args.open)
    result["style_warm_at_run"] = not style.warm_up_thread.is_alive()
    result["style"] = _press_run(style)
    before = _traces()
    style.pickers["style"].sample.value = ("the_scream",)  # another painting: only the images change
    time.sleep(0.5)
    style.fast.wait(120)  # its fast preview, as a participant would see it before pressing Run again
    result["style_again"] = _press_run(style)
    result["built_before_change"], result["built_after_change"] = before, _traces()
    result["load_after"] = _load()

    def eta_line(r: dict) -> str:
        parts = []
        for key, name in (("first_shown_eta", "first estimate shown"), ("first_engine_eta", "first per-stage")):
            e = r[key]
            if e:
                parts.append(f"{name} (step {e['step']}) {e['estimate_s']:.1f} s left, truly "
                             f"{e['truth_s']:.1f} s: x{e['ratio']:.2f}")
        return "; ".join(parts)

    result["uncalibrated"] = args.uncalibrated
    lines = [f"A studio's first seconds after Run; {cpu}; load average {load_before} before, "
             f"{result['load_after']} after; panel open {args.open:g} s before Run; "
             + (f"`import nbart` (TensorFlow loading in the background) {args.gap:g} s before the studio"
                if not args.no_preload else "no preload: TensorFlow loads with the studio's warm-up")
             + ("; this machine's rate never probed (empty rate cache)" if args.uncalibrated else ""),
             f"dream {dream_kw}: first step {result['dream']['first_step_s']:.2f} s after Run (warm-up done: "
             f"{result['dream_warm_at_run']}); {result['dream']['steps']} steps in "
             f"{result['dream']['engine_elapsed_s']:.1f} s; {eta_line(result['dream'])}",
             f"style {style_kw}: first step {result['style']['first_step_s']:.2f} s after Run (warm-up done: "
             f"{result['style_warm_at_run']}); {result['style']['steps']} steps in "
             f"{result['style']['engine_elapsed_s']:.1f} s; {eta_line(result['style'])}",
             f"style again after changing only the style image: first step "
             f"{result['style_again']['first_step_s']:.2f} s; built before the change {before}, after "
             f"{result['built_after_change']}; {eta_line(result['style_again'])}"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.name + ("-quick" if args.quick else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
