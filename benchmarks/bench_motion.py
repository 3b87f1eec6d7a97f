"""Moving pictures: a run timeline's memory bound, and video styling's memory against the clip's length.

Run from the repository root; each section writes ``benchmarks/results/motion-<section>.json`` and ``.txt``::

    python benchmarks/bench_motion.py timeline        # a synthetic 10,000-step run, ~1 min
    python benchmarks/bench_motion.py video           # fast-style a synthetic 300-frame clip and its first 30, ~2 min

Method
------
- Timeline: a :class:`nbart.events.Run` over a synthetic generator of 10,000 :class:`~nbart.events.StepEvent`
  whose ``render()`` makes a fresh 512x512 float image (a moving pattern): the real Run and Timeline, no network.
  Every 1,000 steps: the frames kept, their JPEG bytes (``Timeline.nbytes``) and the process's RSS; the same run
  with ``run.timeline = None`` in the same process gives the baseline. Also the frames encoded over the run and
  the mean cost of one (render + 256 px preview + JPEG encode) on this machine as loaded.
- Video: ``nbart fast-style CLIP.mp4 STYLE -o out.mp4`` (``--method optimize``: ``nbart style`` with a tiny
  random-weight VGG16 at 64 px, 2 steps a frame, for the plumbing's memory) in a fresh process (``cli.main``) on a
  synthetic 256x192 clip of 300 frames (a moving gradient, written by nbart.video) and on a 30-frame one; peak RSS
  (``VmHWM``) of each. Memory that does not grow with the clip's length shows as equal peaks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
sys.path.insert(0, ROOT)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores visible"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def synthetic_run(total: int, size: int = 512):
    from PIL import Image

    from nbart.events import Outcome, Run, StepEvent

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size

    def steps(stop):
        t0 = time.perf_counter()
        for step in range(1, total + 1):
            if stop.is_set():
                return Outcome.STOPPED
            phase = step / 50.0

            def render(phase=phase):
                return np.stack([0.5 + 0.5 * np.sin(6 * x + phase), y, 0.5 + 0.5 * np.cos(5 * y - phase)], -1)

            yield StepEvent(step=step, total=total, stage=0, stages=1, label="synthetic", loss=-step,
                            elapsed=time.perf_counter() - t0, size=(size, size), render=render, done=step == total)
        return Outcome.COMPLETED

    return Run("synthetic", None, steps, total, Image.new("RGB", (size, size)))


def bench_timeline(total: int) -> dict:
    rows = []
    base = synthetic_run(total)
    base.timeline = None
    t0 = time.perf_counter()
    for _ in base:
        pass
    base_seconds = time.perf_counter() - t0
    rss_base = rss_mb()

    import nbart.timeline as timeline_module

    encoded = [0]
    real_encode = timeline_module.encode

    def counting_encode(*a, **k):
        encoded[0] += 1
        return real_encode(*a, **k)

    timeline_module.encode = counting_encode
    run = synthetic_run(total)
    t0 = time.perf_counter()
    for event in run:
        if event.step % (total // 10) == 0:
            rows.append({"step": event.step, "frames": len(run.timeline), "jpeg_kb": run.timeline.nbytes / 1024,
                         "stride": run.timeline.stride, "rss_mb": round(rss_mb(), 1)})
    seconds = time.perf_counter() - t0
    frames = run.frames()
    timeline_module.encode = real_encode
    kept_total = sum(1 for _ in frames)
    return {"cpu": cpu_name(), "load": load_average(), "steps": total, "rows": rows,
            "final_frames": kept_total, "final_jpeg_kb": round(run.timeline.nbytes / 1024, 1),
            "max_side": max(max(f.pil().size) for f in frames),
            "rss_after_baseline_run_mb": round(rss_base, 1), "rss_after_timeline_run_mb": round(rss_mb(), 1),
            "peak_rss_mb": round(rss_mb("VmHWM"), 1),
            "seconds_without_timeline": round(base_seconds, 2), "seconds_with_timeline": round(seconds, 2),
            "frames_encoded": encoded[0]}


def write(name: str, data: dict, text: str) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"motion-{name}.json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(RESULTS, f"motion-{name}.txt"), "w") as f:
        f.write(text)
    print(text)


def timeline_text(d: dict) -> str:
    lines = [f"Run timeline memory: a synthetic {d['steps']}-step run of 512x512 frames through nbart.events.Run",
             f"CPU: {d['cpu']}; load average {d['load']}", "",
             "step    frames kept  stride  JPEG KB  RSS MB"]
    lines += [f"{r['step']:>6}  {r['frames']:>11}  {r['stride']:>6}  {r['jpeg_kb']:>7.0f}  {r['rss_mb']:>6.1f}"
              for r in d["rows"]]
    lines += ["", f"at the end: {d['final_frames']} frames, long side {d['max_side']} px, {d['final_jpeg_kb']:.0f} KB "
              f"of JPEG; RSS {d['rss_after_baseline_run_mb']} MB after the same run without a timeline, "
              f"{d['rss_after_timeline_run_mb']} MB after it with one (peak {d['peak_rss_mb']} MB)",
              f"cost: {d['frames_encoded']} frames rendered and encoded over the {d['steps']} steps "
              f"({100 * d['frames_encoded'] / d['steps']:.1f} %), the start image included; "
              f"{1000 * (d['seconds_with_timeline'] - d['seconds_without_timeline']) / d['frames_encoded']:.0f} ms "
              f"each on this loaded machine (a 512x512 float render, the 256 px preview and the JPEG: the synthetic "
              f"step itself costs nothing, {d['seconds_without_timeline']} s for all {d['steps']})"]
    return "\n".join(lines) + "\n"


def make_clip(path: str, frames: int, size=(256, 192)) -> None:
    from nbart.video import save_video

    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)

    def gen():
        for i in range(frames):
            rgb = np.stack([(x + 3 * i) % w / w, y / h, 0.5 + 0.5 * np.sin((x - 2 * i) / 17)], -1)
            yield (rgb * 255).astype(np.uint8)

    save_video(gen(), path, fps=24)


def child_video(clip: str, out: str, method: str) -> None:
    from nbart import cli

    argv = ["fast-style" if method == "fast" else "style", clip, STYLE, "-o", out, "--quiet"]
    if method == "optimize":
        argv += ["--model", "vgg16", "--weights", "none", "--sizes", "64", "--steps", "2", "--precision", "float32"]
    status = cli.main(argv)
    print(json.dumps({"status": status, "peak_rss_mb": rss_mb("VmHWM")}))


STYLE = os.path.join(ROOT, "nbart", "data", "starry_night.jpg")


def bench_video(tmp: str, method: str) -> dict:
    rows = []
    for n in (30, 300):
        clip = os.path.join(tmp, f"clip{n}.mp4")
        make_clip(clip, n)
        out = os.path.join(tmp, f"out{n}.mp4")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "child-video", clip, out, method], capture_output=True,
                              text=True, cwd=ROOT)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        from nbart.video import video_info

        rows.append({"frames": n, "peak_rss_mb": round(result["peak_rss_mb"], 1), "status": result["status"],
                     "seconds": round(time.perf_counter() - t0, 1), "frames_out": video_info(out)["frames"]})
    return {"cpu": cpu_name(), "load": load_average(), "method": method, "rows": rows}


def video_text(d: dict) -> str:
    command = "fast-style" if d["method"] == "fast" else "style (tiny random VGG16, 64 px, 2 steps a frame)"
    lines = [f"Video styling memory: `nbart {command} CLIP.mp4 starry_night.jpg -o out.mp4` in a fresh "
             f"process on a synthetic 256x192 clip", f"CPU: {d['cpu']}; load average {d['load']}", "",
             "frames in  frames out  peak RSS MB  wall s (loaded)"]
    lines += [f"{r['frames']:>9}  {r['frames_out']:>10}  {r['peak_rss_mb']:>11.1f}  {r['seconds']:>6}"
              for r in d["rows"]]
    a, b = d["rows"]
    growth = b["peak_rss_mb"] - a["peak_rss_mb"]
    lines += ["", f"peak RSS of the 300-frame clip minus the 30-frame clip: {growth:+.1f} MB"]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child-video":
        child_video(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("section", choices=["timeline", "video"])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--method", default="fast", choices=["fast", "optimize"])
    args = parser.parse_args()
    if args.section == "timeline":
        d = bench_timeline(args.steps)
        write("timeline", d, timeline_text(d))
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            d = bench_video(tmp, args.method)
        write(f"video-{args.method}", d, video_text(d))


if __name__ == "__main__":
    main()
