"""One explorer step, batched against one objective per call, timed interleaved (robust to a shared machine's drift).

Run from the repository root; writes ``benchmarks/results/explore-step.txt`` and ``.json``::

    python benchmarks/bench_explore_step.py [--size 128] [--rounds 3]

Method: VGG16 with the offline weights, float32, the bundled ``sample:grace_hopper`` at ``--size`` px; one gradient
step (forward and input gradient) of

- ``batched``: every objective in ONE call (:func:`nbart.explorer.batched_step`, the cascade on for layers);
- ``one per call``: the same objectives, one call each (the explorer with ``batch=1``);
- ``dream engine``: for layers, the dream's own traced gradient (``deepdream.prepare(...).gradient``) of a network
  cut after that layer, one call per layer (what ``nbart.dream_run`` does per step);

for the 5 VGG blocks (the last convolution of each) and for 8 channels of block4_conv3. Every function is traced
and run once before timing; then ``--rounds`` rounds, the order of the variants rotating each round; medians.
Ratios are against ``one per call`` of the same objectives, from the same run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.bench_explore import cpu_name  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="48 px, 1 round, 2 blocks, 2 channels; writes nothing")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.rounds = 48, 1
    import numpy as np

    from nbart import deepdream, explorer, images, registry
    from nbart.params import DreamParams
    from nbart.quiet import tensorflow

    tf = tensorflow()
    every = registry.get("vgg16").layers
    blocks = [name for k, name in enumerate(every) if k + 1 == len(every) or every[k + 1][:6] != name[:6]]
    n_channels = 8
    if args.quick:
        blocks, n_channels = blocks[:2], 2
    ex = explorer.explore_run("sample:grace_hopper", model="vgg16", weights="offline", layers=blocks,
                              size=args.size, precision="float32")
    ext = ex._prepared.extractor  # noqa: SLF001 (the benchmark times the exploration's own extractor)
    start = images.to_float(ex.start)
    ch_ex = explorer.explore_run("sample:grace_hopper", model="vgg16", weights="offline", layers="block4_conv3",
                                 channels=n_channels, size=args.size, precision="float32")
    ch_ext = ch_ex._prepared.extractor  # noqa: SLF001
    channels = [int(s.split(":")[1]) for s in ch_ex.specs]

    def batch_of(n: int):
        return tf.constant(np.repeat(start[None], n, axis=0))

    index = {name: ext.layers.index(name) for name in blocks}
    deep_first = sorted(blocks, key=lambda b: -index[b])
    layered = explorer.batched_step(ext, tuple(index[b] for b in deep_first))
    singles = {b: explorer.batched_step(ext, (index[b],)) for b in blocks}
    whole = tf.constant([-1] * len(blocks), tf.int32)
    one = tf.constant([-1], tf.int32)
    dream_fns = {}
    for b in blocks:
        prepared = deepdream.prepare(DreamParams(model="vgg16", weights="offline", layers=(b,), precision="float32"))
        dream_fns[b] = prepared.gradient
    image = tf.constant(start)
    coefficient = tf.constant([1.0], tf.float32)
    ch_index = ch_ext.layers.index("block4_conv3")
    ch_batched = explorer.batched_step(ch_ext, (ch_index,) * n_channels)
    ch_single = explorer.batched_step(ch_ext, (ch_index,))
    ch_all = tf.constant(channels, tf.int32)
    ch_dream = deepdream.prepare(DreamParams(model="vgg16", weights="offline", layers=("block4_conv3:0",),
                                             precision="float32"))

    def ch_dream_each() -> None:  # the dream's channel is a tensor: one traced function serves every channel
        for c in channels:
            fn = deepdream.traced_functions(ch_dream.extractor, (("block4_conv3", c),))[1]
            fn(image, coefficient)

    variants = {
        ("5 blocks" if not args.quick else "blocks", "batched"): lambda: layered(batch_of(len(blocks)), whole),
        ("5 blocks" if not args.quick else "blocks", "one per call"): lambda: [singles[b](batch_of(1), one)
                                                                               for b in blocks],
        ("5 blocks" if not args.quick else "blocks", "dream engine"): lambda: [dream_fns[b](image, coefficient)
                                                                               for b in blocks],
        (f"{n_channels} channels", "batched"): lambda: ch_batched(batch_of(n_channels), ch_all),
        (f"{n_channels} channels", "one per call"): lambda: [ch_single(batch_of(1), tf.constant([c], tf.int32))
                                                              for c in channels],
        (f"{n_channels} channels", "dream engine"): ch_dream_each,
    }
    for fn in variants.values():  # trace and warm every function
        fn()
    times: dict = {key: [] for key in variants}
    keys = list(variants)
    for r in range(args.rounds):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            t0 = time.perf_counter()
            variants[key]()  # eager CPU calls return when their result is there
            times[key].append(time.perf_counter() - t0)
        print(f"round {r + 1}: " + ", ".join(f"{k[0]} {k[1]} {times[k][-1]:.2f} s" for k in keys), flush=True)
    cpu = cpu_name()
    load = open("/proc/loadavg").read().split()[0]
    lines = [f"# One explorer step at {args.size} px, VGG16 offline, float32 — {cpu}; load {load} at the end; "
             f"medians of {args.rounds} interleaved rounds", "",
             "| objectives | variant | median s | speed vs one per call |", "|---|---|---|---|"]
    rows = []
    for (what, variant), ts in times.items():
        median = statistics.median(ts)
        base = statistics.median(times[(what, "one per call")])
        rows.append({"what": what, "variant": variant, "seconds": ts, "median": median})
        lines.append(f"| {what} | {variant} | {median:.2f} | {base / median:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "explore-step.txt").write_text(text)
        (RESULTS / "explore-step.json").write_text(json.dumps({"cpu": cpu, "size": args.size, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
