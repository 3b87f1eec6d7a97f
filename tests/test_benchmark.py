"""Smoke test of benchmarks/bench.py at tiny sizes: the harness runs and its table renders. No timings asserted."""

import importlib.util
import json
import pathlib
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("nbart_bench", BENCH / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCH))


def test_dream_benchmark_runs_both_engines_and_reports_ratios(bench):
    result = bench.dream_speed(64, steps=1, repeats=1, model="vgg16")
    assert set(result["steps_per_s"]) == {"tutorial TiledGradients", "tutorial in-graph loop", "nbart auto",
                                          "nbart float32"}
    assert all(v > 0 for v in result["steps_per_s"].values()) and result["ratio_vs_tiled"] > 0
    preview = bench.preview_cost(64, model="vgg16")
    assert preview["frames"] >= 1 and 0 <= preview["fraction"] < 1
    text = bench.report({"machine": "test", "dream": [result], "preview": preview})
    assert "nbart/baseline" in text and "% of run time" in text


def test_tutorial_style_baseline_lowers_its_loss(bench):
    import numpy as np
    from tutorial import TutorialStyle

    from nbart import backbones

    rng = np.random.default_rng(0)
    content, style = rng.random((40, 48, 3)).astype(np.float32), rng.random((40, 48, 3)).astype(np.float32)
    baseline = TutorialStyle(backbones.model(backbones.get("vgg16"), "none"), content, style)
    before = baseline.loss(content)
    out = baseline.run(5)
    assert out.shape == content.shape and baseline.loss(out) < before
    baseline.total_variation_weight = 0.0  # as the benchmark compares
    baseline.rebalance(content_weight=1.0, style_weight=30.0)  # nbart's balance: content 1, style 30 (relative)
    ms = lambda t: float(np.mean(np.square(t)))  # noqa: E731
    image = out[None]
    outputs = baseline.extractor(image)
    expected = 1e4 * ms(outputs["content"]["block5_conv2"] - baseline.content_targets["block5_conv2"]) + \
        30 * 1e4 * ms(baseline.content_targets["block5_conv2"]) / 5 * sum(
            ms(outputs["style"][n] - baseline.style_targets[n]) / ms(baseline.style_targets[n])
            for n in baseline.style_layers)
    assert baseline.loss(out) == pytest.approx(expected, rel=1e-4)


def test_memory_rows_keeps_each_finished_row_and_resumes(tmp_path, monkeypatch):
    # rows are hours long on a loaded CPU: an interrupted run must keep the rows it finished, --resume run the rest
    spec = importlib.util.spec_from_file_location("nbart_memory_rows", BENCH / "memory_rows.py")
    rows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rows)
    out = tmp_path / "rows.json"
    ran = []

    def fake(kind, size, precision, steps):
        ran.append((kind, size, precision))
        if size == 1024:
            raise KeyboardInterrupt  # stopped during its third row
        return {"kind": kind, "size": size, "precision": precision, "asked_precision": precision, "steps": steps,
                "peak_rss_mb": float(size), "wall_s": 1.0, "cpu": "test", "cpu_bf16": False}

    monkeypatch.setattr(rows, "row", fake)
    argv = ["memory_rows.py", "--style", "256,512,1024", "--dream", "", "--precisions", "float32", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(KeyboardInterrupt):
        rows.main()
    saved = json.loads(out.read_text())["rows"]
    assert [r["size"] for r in saved] == [256, 512] and "| 512 |" in (tmp_path / "rows.md").read_text()
    ran.clear()
    monkeypatch.setattr(sys, "argv", argv[:-4] + ["--style", "256,512,768", "--precisions", "float32", "--resume",
                                                  "--json", str(out)])
    rows.main()
    assert ran == [("style-nbart", 768, "float32")]
    assert sorted(r["size"] for r in json.loads(out.read_text())["rows"]) == [256, 512, 768]
