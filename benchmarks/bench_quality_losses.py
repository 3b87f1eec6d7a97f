"""Quality numbers for issue 21: each style loss's style match, content kept and wall time; dreams' std against
Laplacian-pyramid gradient normalization (activation gain per second); contact sheets to look at.

Run from the repository root (NBART_IMAGES: the shared test images; the bundled samples are always used)::

    python benchmarks/bench_quality_losses.py                 # style at 256 px (50 L-BFGS steps), dreams at 256 px
    python benchmarks/bench_quality_losses.py --quick         # tiny sizes: checks that the benchmark runs

Method
------
- Style: every content/style pair of {sample:grace_hopper, golden_gate.jpg, tubingen.jpg} x {starry_night.jpg,
  the_scream.jpg} (6 pairs; a shared image that is absent is skipped), each transferred with each ``style_loss`` at
  nbart's default schedule for the size (``max_size`` 256: one size; 50 L-BFGS steps, or ``--steps``; default
  weights, seed 0,
  ``weights="offline"``: VGG16, the only real features here), float32. The losses' order is rotated per pair so
  the machine's load falls on each alike; each loss's step is traced once before the clocks start.
- Scores, on the output image (uint8, as saved) with a fixed reference network (offline VGG16, float32), at
  nbart's VGG16 style layers (block1_conv1 .. block5_conv1): the sliced-Wasserstein distance to the style image's
  features (``objectives.sliced_wasserstein_loss`` with 4x channels directions of a fixed seed unrelated to the
  runs', the style's quantiles resampled to the result's count; relative, mean over layers): "style match"; also the
  Gram and W2 distances (each loss is best on its own measure; SW with other directions is the fairer judge of
  whole distributions). Content kept: ``objectives.content_loss`` at block5_conv2 against the photo. The style
  image is scored at the size the run saw it (its long side the output's).
- Dreams: ``normalize="std"`` and ``"laplacian"`` on the bundled sample and the shared photos, nbart's default
  schedule (4 octaves x 10 steps) at 256 px, VGG16 offline, seed 0; gain = the target layers' mean activation of
  the result over the original's (float32, full size); gain per second = (gain - 1) / wall time.
- Timings are wall-clock (``perf_counter``) on a shared, loaded CPU: compare ratios within one run only.
- Contact sheets: ``benchmarks/results/`` gets those of the bundled sample only; those of the shared photos go to
  ``build/`` (the photos must not enter the repository).
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

import numpy as np
from PIL import Image, ImageDraw

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = pathlib.Path(os.environ.get("NBART_IMAGES", ROOT.parent / "shared" / "images"))
RESULTS = ROOT / "benchmarks" / "results"
BUILD = ROOT / "build"
LOSSES = ("gram", "w2", "sliced_wasserstein")
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYER = "block5_conv2"


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def sources() -> tuple[list[tuple[str, str]], list[str]]:
    """(content name, source) pairs and style sources that exist here."""
    contents = [("grace_hopper", "sample:grace_hopper")]
    contents += [(n, str(SHARED / f"{n}.jpg")) for n in ("golden_gate", "tubingen") if (SHARED / f"{n}.jpg").is_file()]
    styles = [str(SHARED / f"{n}.jpg") if (SHARED / f"{n}.jpg").is_file() else f"sample:{n}"
              for n in ("starry_night", "the_scream")]
    return contents, styles


class Scorer:
    """The fixed reference network (offline VGG16, float32) and the scores of issue 21 item 4."""

    def __init__(self, directions_per_channel: int = 4):
        from nbart import extractors, registry

        self.ext = extractors.extractor(registry.get("vgg16"), "offline", "float32", STYLE_LAYERS + (CONTENT_LAYER,))
        self.k = directions_per_channel

    def features(self, rgb: np.ndarray) -> list:
        return self.ext(rgb[None].astype(np.float32))

    def style_scores(self, result: np.ndarray, style: np.ndarray) -> dict:
        import tensorflow as tf

        from nbart import objectives

        out, ref = self.features(result)[:-1], self.features(style)[:-1]
        sw, gram, w2 = [], [], []
        for index, (f, s) in enumerate(zip(out, ref)):
            c = int(f.shape[-1])
            v = tf.concat([objectives.random_projections(c, (12345, 100 * index + j)) for j in range(self.k)], 1)
            target = objectives.sorted_projections(s, v, int(f.shape[1] * f.shape[2]))
            sw.append(float(objectives.sliced_wasserstein_loss(f, v, target)))
            gram.append(float(objectives.style_loss(objectives.gram_matrix(f), objectives.gram_matrix(s))))
            w2.append(float(objectives.w2_loss(objectives.feature_mean(f), objectives.gram_matrix(f),
                                               objectives.w2_target(objectives.feature_mean(s),
                                                                    objectives.gram_matrix(s)))))
        return {"sw": float(np.mean(sw)), "gram": float(np.mean(gram)), "w2": float(np.mean(w2))}

    def content_score(self, result: np.ndarray, content: np.ndarray) -> float:
        from nbart import objectives

        return float(objectives.content_loss(self.features(result)[-1], self.features(content)[-1]))


def _float(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), np.float32) / 255.0


def _done_rows(resume: pathlib.Path | None, kind: str) -> dict:
    """Rows of an earlier, interrupted run of the same settings (its ``.jsonl``), by their key."""
    rows = {}
    if resume is not None and resume.is_file():
        for line in resume.read_text().splitlines():
            row = json.loads(line)
            if row.get("kind") == kind:
                name, variant = row.get("content") or row.get("image"), row.get("loss") or row.get("normalize")
                key = (name, row.get("style"), variant)
                rows[key] = row
    return rows


def _keep(log: pathlib.Path | None, row: dict) -> None:
    print(json.dumps(row), flush=True)
    if log is not None:
        with open(log, "a") as f:
            f.write(json.dumps(row) + "\n")


def style_bench(size: int, steps: int | None, scorer: Scorer, pairs: int = 6,
                log: pathlib.Path | None = None, start_pair: int = 1,
                only: tuple[str, ...] = LOSSES) -> tuple[list[dict], dict]:
    import nbart
    from nbart import images

    contents, styles = sources()
    rows, pictures = [], {}
    done = _done_rows(log, "style")
    traced: set[str] = set()
    for pair_index, ((cname, csrc), ssrc) in enumerate([(c, s) for c in contents for s in styles][:pairs]):
        sname = pathlib.Path(ssrc.replace("sample:", "")).stem
        content_img = images.fit(images.load_image(csrc, max_size=size), size, 32)
        order = LOSSES[pair_index % 3:] + LOSSES[:pair_index % 3]
        for loss in order:
            if (cname, sname, loss) in done:  # kept from an interrupted run; its picture is in build/
                rows.append(done[(cname, sname, loss)])
                saved = BUILD / f"quality-{cname}-{sname}-{loss}-{size}.png"
                if saved.is_file():
                    pictures[(cname, sname, loss)] = Image.open(saved)
                continue
            if pair_index + 1 < start_pair or loss not in only:
                continue  # another process runs these (--start-pair, --losses)
            kw = dict(max_size=size, weights="offline", model="vgg16", seed=0, precision="float32", style_loss=loss)
            if steps:
                kw["steps"] = steps
            if loss not in traced:  # trace the loss's step once, outside the clock
                nbart.style_transfer(contents[0][1], styles[0], **{**kw, "steps": 1})
                traced.add(loss)
            t0, c0 = time.perf_counter(), time.process_time()
            load = os.getloadavg()[0]
            result = nbart.style_transfer(csrc, ssrc, **kw)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            result.save(BUILD / f"quality-{cname}-{sname}-{loss}-{size}.png")
            out = _float(result)
            style_img = images.fit(images.load_image(ssrc, max_size=max(result.size)), max(result.size), 32)
            content = _float(content_img.resize(result.size, Image.Resampling.LANCZOS))
            scores = scorer.style_scores(out, _float(style_img))
            row = dict(kind="style", content=cname, style=sname, loss=loss, wall_s=round(wall, 2),
                       cpu_s=round(cpu, 2), load=round(load, 1),
                       content_loss=round(scorer.content_score(out, content), 4),
                       **{f"style_{k}": round(v, 4) for k, v in scores.items()})
            _keep(log, row)
            rows.append(row)
            pictures[(cname, sname, loss)] = result
    return rows, pictures


def dream_bench(size: int, scorer: Any, quick: bool, log: pathlib.Path | None = None) -> tuple[list[dict], dict]:
    import nbart
    from nbart import extractors, images, registry

    bb = registry.get("vgg16")
    ext = extractors.extractor(bb, "offline", "float32", bb.dream_layers)
    contents, _ = sources()
    rows, pictures = [], {}
    kw = dict(model="vgg16", weights="offline", max_size=size, seed=0, precision="float32")
    if quick:
        kw.update(octaves=2, steps=2)

    def activation(rgb: np.ndarray) -> float:
        return float(np.mean([float(np.mean(a)) for a in ext(rgb[None])]))

    for mode in ("std", "laplacian"):  # trace outside the clock
        nbart.dream(contents[0][1], normalize=mode, **{**kw, "octaves": 1, "steps": 1})
    done = _done_rows(log, "dream")
    for index, (cname, csrc) in enumerate(contents):
        start = _float(images.fit(images.load_image(csrc, max_size=size), size, bb.min_size))
        for mode in (("std", "laplacian") if index % 2 == 0 else ("laplacian", "std")):
            saved = BUILD / f"quality-dream-{cname}-{mode}-{size}.png"
            if (cname, None, mode) in done and saved.is_file():  # kept from an interrupted run
                rows.append(done[(cname, None, mode)])
                pictures[(cname, mode)] = Image.open(saved)
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            result = nbart.dream(csrc, normalize=mode, **kw)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            result.save(saved)
            gain = activation(_float(result)) / activation(start)
            row = dict(kind="dream", image=cname, normalize=mode, wall_s=round(wall, 2), cpu_s=round(cpu, 2),
                       gain=round(gain, 4), gain_per_s=round((gain - 1) / wall, 5),
                       gain_per_cpu_s=round((gain - 1) / cpu, 5))
            _keep(log, row)
            rows.append(row)
            pictures[(cname, mode)] = result
    return rows, pictures


def sheet(rows_of_images: list[list[Image.Image]], labels: list[str], tile: int = 256) -> Image.Image:
    """A grid of images (each fitted in a tile x tile cell), with column labels on top."""
    cols = max(len(r) for r in rows_of_images)
    top = 18
    out = Image.new("RGB", (cols * tile, top + len(rows_of_images) * tile), "white")
    draw = ImageDraw.Draw(out)
    for c, label in enumerate(labels):
        draw.text((c * tile + 4, 3), label, fill="black")
    for r, row in enumerate(rows_of_images):
        for c, img in enumerate(row):
            img = img.convert("RGB")
            scale = tile / max(img.size)  # up or down: small results are shown at the cell's size
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
            out.paste(img, (c * tile + (tile - img.width) // 2, top + r * tile + (tile - img.height) // 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and steps: checks that the benchmark runs")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="L-BFGS steps per size (default: nbart's)")
    ap.add_argument("--pairs", type=int, default=6, help="the first N content/style pairs (of 6)")
    ap.add_argument("--start-pair", type=int, default=1, help="the first pair (1-6) this process runs: another "
                    "process can run the earlier ones into the same OUT.jsonl at once (one core each: "
                    "TF_NUM_INTRAOP_THREADS=1 and taskset); a later --resume run then writes the whole table")
    ap.add_argument("--losses", default=",".join(LOSSES), help="the style losses this process runs (comma-separated;"
                    " the others' rows are taken from OUT.jsonl with --resume)")
    ap.add_argument("--skip-style", action="store_true")
    ap.add_argument("--skip-dream", action="store_true")
    ap.add_argument("--out", default=None, help="results path without extension (default: benchmarks/results/"
                    "quality-losses, with -SIZE for another size than 256)")
    ap.add_argument("--resume", action="store_true", help="keep the rows of an interrupted run (OUT.jsonl, pictures "
                    "in build/) and run only the missing ones")
    args = ap.parse_args()
    size, steps = (64, 2) if args.quick else (args.size, args.steps)
    from nbart import images

    scorer = Scorer()
    report: dict[str, Any] = dict(cpu=cpu_name(), float="float32", size=size, steps=steps or "default (50)",
                                  note=f"shared 2-core machine, load average {os.getloadavg()[0]:.1f} at the "
                                  "start (per row in the JSON): compare ratios")
    BUILD.mkdir(exist_ok=True)
    out = pathlib.Path(args.out or RESULTS / ("quality-losses" + ("" if size == 256 else f"-{size}")))
    log = None if args.quick else out.with_suffix(".jsonl")  # one line a row, as it finishes
    if log is not None and not args.resume:
        log.unlink(missing_ok=True)
    if not args.skip_style:
        rows, pictures = style_bench(size, steps, scorer, args.pairs, log, args.start_pair,
                                     tuple(args.losses.split(",")))
        report["style"] = rows
        for cname in sorted({k[0] for k in pictures}):
            grid = [[images.load_image(f"sample:{s}" if s in ("starry_night", "the_scream") else s)]
                    + [pictures[(cname, s, loss)] for loss in LOSSES] for s in sorted({k[1] for k in pictures})
                    if all((cname, s, loss) in pictures for loss in LOSSES)]  # whole pairs only
            if not grid:
                continue
            where = RESULTS if cname == "grace_hopper" and not args.quick else BUILD  # no shared photos in the repo
            suffix = "" if size == 256 and not steps else f"-{size}"
            sheet(grid, ["style"] + list(LOSSES)).save(where / f"style-losses-{cname}{suffix}.jpg", quality=88)
    if not args.skip_dream:
        rows, pictures = dream_bench(size, scorer, args.quick, log)
        report["dream"] = rows
        for cname in sorted({k[0] for k in pictures}):
            where = RESULTS if cname == "grace_hopper" and not args.quick else BUILD
            sheet([[pictures[(cname, "std")], pictures[(cname, "laplacian")]]], ["std", "laplacian"]).save(
                where / f"dream-normalize-{cname}.jpg", quality=88)
    if not args.quick:
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        os.replace(tmp, out.with_suffix(".json"))
        tmp = out.with_suffix(".md.tmp")
        tmp.write_text(markdown(report))
        os.replace(tmp, out.with_suffix(".md"))
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = [f"CPU: {report['cpu']} ({report['float']}; {report['note']}); size {report['size']} px, "
             f"steps {report['steps']}", ""]
    if "style" in report:
        lines += ["| style_loss | style match (SW, lower better) | Gram dist. | W2 dist. | content loss | wall s "
                  "| wall / gram | CPU s | CPU / gram |", "|---|---|---|---|---|---|---|---|---|"]
        rows = report["style"]
        gram_wall = {(r["content"], r["style"]): r["wall_s"] for r in rows if r["loss"] == "gram"}
        gram_cpu = {(r["content"], r["style"]): r.get("cpu_s") for r in rows if r["loss"] == "gram"}
        for loss in LOSSES:
            mine = [r for r in rows if r["loss"] == loss]
            if not mine:
                continue
            ratio = np.median([r["wall_s"] / gram_wall[(r["content"], r["style"])] for r in mine
                               if (r["content"], r["style"]) in gram_wall])
            cpus = [r["cpu_s"] for r in mine if r.get("cpu_s")]
            cpu_ratio = np.median([r["cpu_s"] / gram_cpu[(r["content"], r["style"])] for r in mine
                                   if r.get("cpu_s") and gram_cpu.get((r["content"], r["style"]))] or [np.nan])
            lines.append(f"| {loss} | {np.mean([r['style_sw'] for r in mine]):.4f} | "
                         f"{np.mean([r['style_gram'] for r in mine]):.4f} | "
                         f"{np.mean([r['style_w2'] for r in mine]):.4f} | "
                         f"{np.mean([r['content_loss'] for r in mine]):.4f} | "
                         f"{np.mean([r['wall_s'] for r in mine]):.1f} | {ratio:.2f} | "
                         f"{np.mean(cpus) if cpus else np.nan:.1f} | {cpu_ratio:.2f} |")
        lines += ["", f"Means over {len(rows) // len(LOSSES)} content/style pairs; wall / gram is the median of "
                  "the per-pair ratios.", ""]
        lines += ["| pair | " + " | ".join(f"{loss} SW / content" for loss in LOSSES) + " |",
                  "|---|" + "---|" * len(LOSSES)]
        for key in dict.fromkeys((r["content"], r["style"]) for r in rows):
            cells = [next((f"{r['style_sw']:.4f} / {r['content_loss']:.4f}" for r in rows
                           if (r["content"], r["style"], r["loss"]) == (*key, loss)), "-") for loss in LOSSES]
            lines.append(f"| {key[0]} + {key[1]} | " + " | ".join(cells) + " |")
        lines.append("")
    if "dream" in report:
        lines += ["| image | normalize | gain | wall s | (gain - 1) / s |", "|---|---|---|---|---|"]
        for r in report["dream"]:
            lines.append(f"| {r['image']} | {r['normalize']} | {r['gain']:.3f} | {r['wall_s']:.1f} | "
                         f"{r['gain_per_s']:.4f} |")
        by = {}
        for r in report["dream"]:
            by.setdefault(r["image"], {})[r["normalize"]] = r["gain_per_s"]
        ratios = [v["laplacian"] / v["std"] for v in by.values() if "std" in v and "laplacian" in v and v["std"]]
        if ratios:
            lines += ["", f"Gain per second, laplacian / std: median {np.median(ratios):.2f} over {len(ratios)} "
                      "images.", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
