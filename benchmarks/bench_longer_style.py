"""Does a longer style run make a better picture? Issue 21 item 5's question: nbart's default style run stops short of
the tutorial's 1000-step Adam loss; is the user better served by more iterations at the output size?

    NBART_IMAGES=/path/to/images python benchmarks/bench_longer_style.py [--pairs 2] [--chunks 3] [--chunk 50]

For each content/style pair (the first ``--pairs`` of ``bench_quality_losses``'s six), the default style run a user
gets (``max_size`` 512: 50 L-BFGS iterations at 256 px, then 50 at 512; offline VGG16, float32, seed 0; taken from
``build/quality-{content}-{style}-gram-512.png`` when ``bench_quality_losses.py --size 512`` left it there), then
``--chunks`` times Continue for ``--chunk`` more iterations at 512 px, as the studios' Continue does (each a fresh
L-BFGS from the picture). After each part, the picture is scored with ``bench_quality_losses``'s fixed reference
network: style match (sliced-Wasserstein distance at the style layers, lower is better) and content kept (content
loss at block5_conv2), and nbart's own objective (the run's last loss). Each part's CPU time is recorded (robust to
load and to a paused background job; its wall time is not). Pictures of the shared photos go to ``build/``; the
bundled sample's sheet to ``benchmarks/results/style-longer-grace_hopper.jpg``. Writes ``--out`` .json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_quality_losses import BUILD, RESULTS, Scorer, _float, cpu_name, sheet, sources  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=50, help="L-BFGS iterations per Continue")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default=str(RESULTS / "style-longer"))
    args = ap.parse_args()

    import nbart
    from nbart import images
    from nbart.params import StyleParams
    from nbart.styletransfer import continue_run

    scorer = Scorer()
    BUILD.mkdir(exist_ok=True)
    contents, styles = sources()
    pairs = [(c, s) for c in contents for s in styles][: args.pairs]
    params = StyleParams(max_size=args.size, weights="offline", model="vgg16", seed=0, precision="float32")
    rows, sheets = [], {}
    for (cname, csrc), ssrc in pairs:
        sname = pathlib.Path(ssrc.replace("sample:", "")).stem
        content_img = images.fit(images.load_image(csrc, max_size=args.size), args.size, 32)
        saved = BUILD / f"quality-{cname}-{sname}-gram-{args.size}.png"
        c0 = time.process_time()
        if saved.is_file():
            picture, cpu, loss = images.load_image(str(saved)), None, None
        else:
            run = nbart.style_run(csrc, ssrc, params)
            loss = [e.loss for e in run][-1]
            picture, cpu = run.image(), time.process_time() - c0
            picture.save(saved)
        pictures, done = [picture], 2 * params.steps
        for part in range(args.chunks + 1):
            if part:
                c0 = time.process_time()
                run = continue_run(picture, csrc, ssrc, params, args.chunk)
                loss = [e.loss for e in run][-1]
                picture, cpu = run.image(), time.process_time() - c0
                done += args.chunk
                pictures.append(picture)
            out = _float(picture)
            style_img = images.fit(images.load_image(ssrc, max_size=max(picture.size)), max(picture.size), 32)
            content = _float(content_img.resize(picture.size))
            row = dict(content=cname, style=sname, iterations=done,
                       part="default" if not part else f"+{part * args.chunk}",
                       cpu_s=None if cpu is None else round(cpu, 1), last_loss=loss,
                       style_sw=round(scorer.style_scores(out, _float(style_img))["sw"], 5),
                       content_loss=round(scorer.content_score(out, content), 4), load=round(os.getloadavg()[0], 1))
            print(json.dumps(row), flush=True)
            rows.append(row)
        sheets[(cname, sname)] = pictures
    report = dict(cpu=cpu_name(), float="float32", size=args.size, chunk=args.chunk, rows=rows)
    out = pathlib.Path(args.out)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, out.with_suffix(".json"))
    labels = ["default"] + [f"+{(i + 1) * args.chunk}" for i in range(args.chunks)]
    for (cname, sname), pictures in sheets.items():
        where = RESULTS if cname == "grace_hopper" and args.size == 512 else BUILD  # no shared photos in the repo
        sheet([pictures], labels).save(where / f"style-longer-{cname}-{sname}.jpg", quality=88)
    lines = [f"CPU: {report['cpu']} (float32), {args.size} px; CPU s = process CPU time of the part", "",
             "| pair | part | iterations | style match (SW) | content loss | last loss | CPU s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        last = "" if r["last_loss"] is None else f"{r['last_loss']:.4g}"
        cpu = "" if r["cpu_s"] is None else r["cpu_s"]
        lines.append(f"| {r['content']} + {r['style']} | {r['part']} | {r['iterations']} | {r['style_sw']:.4f} | "
                     f"{r['content_loss']:.4f} | {last} | {cpu} |")
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out.with_suffix(".md"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
