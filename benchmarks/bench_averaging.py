"""Iterate averaging and the sqrt(2) scale ladder of the style run (issue 21 item 2): quality numbers and wall time
against today's defaults, and Adam's state across sizes (moments resized against reset).

Run from the repository root (NBART_IMAGES: the shared test images; the bundled samples are always used)::

    python benchmarks/bench_averaging.py                  # 6 pairs, 256 px output, default steps (50 per size)
    python benchmarks/bench_averaging.py --quick          # tiny sizes: checks that the benchmark runs
    python benchmarks/bench_averaging.py --summary        # the markdown and sheets again, from the JSON

The README's figures: ``--size 128 --adam-pairs 1 --variants "halves,halves+avg,sqrt2,adam sqrt2+avg resized,adam
sqrt2+avg reset"`` (stopped at the deadline; the rows it had measured are in benchmarks/results/style-averaging.*).

Method
------
- Pairs: {sample:grace_hopper, golden_gate.jpg, tubingen.jpg} x {starry_night.jpg, the_scream.jpg} (6; a shared
  image that is absent is skipped), offline VGG16 (the only real features here), float32, seed 0, nbart's default
  weights and steps (50 per size).
- The ladders at half the default scale: the default run at 512 px climbs one octave, 256 then 512 px; here the
  output is ``--size`` (256) px and both ladders climb one octave to it: ``halves`` = sizes (128, 256) and
  ``sqrt2`` = (128, 181, 256), the sizes ``ladder="sqrt2"`` gives at 512 px halved. Given as ``sizes`` because the
  ladders' floor (256 px) would leave one size at this output size.
- Variants: L-BFGS (nbart's default optimizer) with each ladder, without and with iterate averaging
  (``average_decay``; the average is shown, saved and carried to the next size); and Adam (the tutorial's
  optimizer, with the averaging of crowsonkb/style-transfer-pytorch) on the sqrt(2) ladder with its moments
  resized to the next size against reset at each size (``nbart.styletransfer.ADAM_ACROSS_SIZES``).
- Scores: ``bench_quality_losses.Scorer`` on the saved image (uint8): the sliced-Wasserstein distance to the style
  image's features at VGG16's style layers ("style match", lower is closer), the content loss at block5_conv2
  against the photo (lower keeps more), and the run's own objective (content 1 : style 30 : tv 10, nbart's
  relative losses, scored in float32 at the output size on the saved image with the output-size targets).
- Wall time: ``perf_counter`` around each run (every variant traced once before the clocks start; the order of
  the variants rotated per pair). The machine is a shared, loaded 2-core CPU: compare the per-pair ratios to the
  default run of the same pair (quoted as medians), not absolute seconds.
- Rows are appended to the JSON as they come (a stopped benchmark keeps what it measured); ``--summary`` rewrites
  the markdown from the JSON. Contact sheets: the bundled sample's go to ``benchmarks/results/``, the shared
  photos' to ``build/`` (the photos must not enter the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Any

import numpy as np
from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_quality_losses import BUILD, RESULTS, Scorer, cpu_name, sheet, sources  # noqa: E402

LBFGS_VARIANTS = ("halves", "halves+avg", "sqrt2", "sqrt2+avg")
ADAM_VARIANTS = ("adam sqrt2+avg resized", "adam sqrt2+avg reset")


def ladders(size: int) -> dict[str, tuple[int, ...]]:
    return {"halves": (size // 2, size), "sqrt2": (size // 2, int(size / 2 ** 0.5), size)}


def variant_kwargs(name: str, size: int, decay: float, adam_decay: float) -> tuple[dict, str]:
    """The style_run keywords of a variant and its ADAM_ACROSS_SIZES."""
    ladder = "sqrt2" if "sqrt2" in name else "halves"
    kw: dict[str, Any] = dict(sizes=ladders(size)[ladder])
    if name.startswith("adam"):
        kw.update(optimizer="adam", average_decay=adam_decay)
        return kw, "reset" if "reset" in name else "resize"
    if name.endswith("+avg"):
        kw["average_decay"] = decay
    return kw, "resize"


def objective_score(result: np.ndarray, content: np.ndarray, style: np.ndarray) -> float:
    """nbart's default objective (content 1, style 30, tv 10; Gram) of ``result`` at its size, float32, on the
    offline VGG16 with its default layers: the loss every variant minimizes, judged on the saved image."""
    from nbart import objectives, registry

    bb = registry.get("vgg16")
    ext = _objective_extractor()
    n = len(bb.content_layers)
    out, c, s = ext(result[None]), ext(content[None]), ext(style[None])
    content_loss = np.mean([float(objectives.content_loss(a, b)) for a, b in zip(out[:n], c[:n])])
    style_loss = np.mean([float(objectives.style_loss(objectives.gram_matrix(a), objectives.gram_matrix(b)))
                          for a, b in zip(out[n:], s[n:])])
    tv = float(objectives.total_variation(result.astype(np.float32)))
    return float(content_loss + 30.0 * style_loss + 10.0 * tv)


_EXTRACTOR: list = []


def _objective_extractor() -> Any:
    if not _EXTRACTOR:
        from nbart import extractors, registry

        bb = registry.get("vgg16")
        _EXTRACTOR.append(extractors.extractor(bb, "offline", "float32", bb.content_layers + bb.style_layers))
    return _EXTRACTOR[0]


def _float(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), np.float32) / 255.0


def run_all(size: int, variants: tuple[str, ...], pairs: int, adam_pairs: int, decay: float, adam_decay: float,
            steps: int | None, out_json: pathlib.Path) -> dict:
    """Each variant on each pair; rows appended to ``out_json`` as they come, results kept in build/."""
    import nbart
    from nbart import images, styletransfer

    contents, styles = sources()
    all_pairs = [(c, s) for c in contents for s in styles][:pairs]
    report = json.loads(out_json.read_text()) if out_json.exists() else {}
    report.update(cpu=cpu_name(), float="float32", size=size, ladders={k: list(v) for k, v in ladders(size).items()},
                  decay=decay, adam_decay=adam_decay, steps=steps or "default (50 per size)")
    report.setdefault("rows", [])
    done = {(r["content"], r["style"], r["variant"]) for r in report["rows"]}
    scorer = Scorer()
    base = dict(weights="offline", model="vgg16", seed=0, precision="float32")
    if steps:
        base["steps"] = steps
    for name in variants:  # trace each variant's functions once, outside the clock
        kw, _ = variant_kwargs(name, size, decay, adam_decay)
        nbart.style_transfer(all_pairs[0][0][1], all_pairs[0][1], **{**base, **kw, "steps": 1})
    for index, ((cname, csrc), ssrc) in enumerate(all_pairs):
        sname = pathlib.Path(ssrc.replace("sample:", "")).stem
        mine = [v for v in variants if not v.startswith("adam") or index < adam_pairs]
        order = mine[index % len(mine):] + mine[:index % len(mine)]
        for name in order:
            if (cname, sname, name) in done:
                continue
            kw, adam_mode = variant_kwargs(name, size, decay, adam_decay)
            styletransfer.ADAM_ACROSS_SIZES = adam_mode
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            result = nbart.style_transfer(csrc, ssrc, **{**base, **kw})
            wall = time.perf_counter() - t0
            styletransfer.ADAM_ACROSS_SIZES = "resize"
            out = _float(result)
            content = _float(images.fit(images.load_image(csrc, max_size=size), size, 32).resize(
                result.size, Image.Resampling.LANCZOS))
            style = _float(images.fit(images.load_image(ssrc, max_size=max(result.size)), max(result.size), 32))
            scores = scorer.style_scores(out, style)
            row = dict(content=cname, style=sname, variant=name, wall_s=round(wall, 2), load=round(load, 1),
                       content_loss=round(scorer.content_score(out, content), 4), style_sw=round(scores["sw"], 5),
                       style_gram=round(scores["gram"], 5),
                       objective=round(objective_score(out, content, style), 4))
            print(json.dumps(row), flush=True)
            report["rows"].append(row)
            _write(out_json, report)
            result.save(_picture(out_json, cname, sname, name))  # for the sheets, also of a stopped benchmark
    return report


def _picture(out_json: pathlib.Path, cname: str, sname: str, variant: str) -> pathlib.Path:
    """Where a result is kept: build/ (the shared photos' results must not enter the repository)."""
    folder = BUILD / f"{out_json.stem}-pictures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{cname}-{sname}-{variant.replace(' ', '_').replace('+', '-')}.png"


def sheets(out_json: pathlib.Path, variants: list[str], quick: bool) -> None:
    """Contact sheets, one per content (rows: styles; columns: variants), from the kept results."""
    report = json.loads(out_json.read_text())
    keys = {(r["content"], r["style"]) for r in report["rows"]}
    for cname in sorted({k[0] for k in keys}):
        names = [v for v in variants if any(_picture(out_json, cname, s, v).exists() for c, s in keys if c == cname)]
        grid = []
        for sname in sorted({s for c, s in keys if c == cname}):
            paths = [_picture(out_json, cname, sname, v) for v in names]
            if any(p.exists() for p in paths):  # a result not kept (measured before results were kept): blank
                grid.append([Image.open(p) if p.exists() else Image.new("RGB", (8, 8), "white") for p in paths])
        if grid:
            where = RESULTS if cname == "grace_hopper" and not quick else BUILD
            sheet(grid, names).save(where / f"{out_json.stem}-{cname}.jpg", quality=88)


def _write(path: pathlib.Path, report: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [f"CPU: {report['cpu']} ({report['float']}; shared 2-core machine, loaded: load average per row in "
             f"the JSON); output {report['size']} px, ladders {report['ladders']}, steps {report['steps']}, "
             f"average_decay {report['decay']} (L-BFGS) / {report['adam_decay']} (Adam)", "",
             "| variant | pairs with halves | style match (SW) | content loss | objective | wall / halves (median) |",
             "|---|---|---|---|---|---|"]
    base = {(r["content"], r["style"]): r for r in rows if r["variant"] == "halves"}
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for name in variants:  # means over the pairs measured with both this variant and halves: paired figures
        mine = [r for r in rows if r["variant"] == name and (r["content"], r["style"]) in base]
        if not mine:
            continue
        ratios = [r["wall_s"] / base[(r["content"], r["style"])]["wall_s"] for r in mine
                  if (r["content"], r["style"]) in base]
        ratio = f"{np.median(ratios):.2f}" if ratios else "-"
        lines.append(f"| {name} | {len(mine)} | {np.mean([r['style_sw'] for r in mine]):.5f} | "
                     f"{np.mean([r['content_loss'] for r in mine]):.4f} | "
                     f"{np.mean([r['objective'] for r in mine]):.4f} | {ratio} |")
    lines += ["", "Per pair: style match (SW) / content loss / objective, and how many pairs each variant beats "
              "`halves` on SW and on the objective:", ""]
    for name in variants:
        mine = [r for r in rows if r["variant"] == name and (r["content"], r["style"]) in base]
        sw = sum(r["style_sw"] < base[(r["content"], r["style"])]["style_sw"] for r in mine)
        ob = sum(r["objective"] < base[(r["content"], r["style"])]["objective"] for r in mine)
        lines.append(f"- {name}: lower SW in {sw}/{len(mine)}, lower objective in {ob}/{len(mine)}; " + "; ".join(
            f"{r['content']}+{r['style']} {r['style_sw']:.4f}/{r['content_loss']:.3f}/{r['objective']:.3f}"
            for r in mine))
    adam = {n: {(r["content"], r["style"]): r for r in rows if r["variant"] == n} for n in ADAM_VARIANTS}
    common = set(adam[ADAM_VARIANTS[0]]) & set(adam[ADAM_VARIANTS[1]])
    if common:
        better = sum(adam[ADAM_VARIANTS[0]][k]["objective"] < adam[ADAM_VARIANTS[1]][k]["objective"] for k in common)
        lines += ["", f"Adam across sizes: moments resized give the lower objective in {better}/{len(common)} "
                  "pairs than reset."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and steps: checks that the benchmark runs")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="steps per size (default: nbart's)")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--adam-pairs", type=int, default=3, help="pairs on which the Adam variants run")
    ap.add_argument("--decay", type=float, default=0.9, help="average_decay of the L-BFGS variants")
    ap.add_argument("--adam-decay", type=float, default=0.95, help="average_decay of the Adam variants")
    ap.add_argument("--variants", default=",".join(LBFGS_VARIANTS + ADAM_VARIANTS))
    ap.add_argument("--summary", action="store_true", help="only rewrite the markdown from the JSON")
    ap.add_argument("--out", default=str(RESULTS / "style-averaging"), help="results path without extension")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    if args.quick:
        out = BUILD / "style-averaging-quick"
        args.size, args.steps, args.pairs, args.adam_pairs = 96, 2, 1, 1
    BUILD.mkdir(exist_ok=True)
    if not args.summary:
        run_all(args.size, tuple(args.variants.split(",")), args.pairs, args.adam_pairs, args.decay,
                args.adam_decay, args.steps, out.with_suffix(".json"))
    sheets(out.with_suffix(".json"), args.variants.split(","), args.quick)
    report = json.loads(out.with_suffix(".json").read_text())
    text = markdown(report)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, out.with_suffix(".md"))
    print(text)


if __name__ == "__main__":
    main()
