"""What a studio says before and during a run besides its frames: the progress within a long step (a tiled dream
step's tiles, polled from ``run.progress`` as the CLI's bar does)."""

import html
import time

import pytest
from conftest import TINY

pytest.importorskip("ipywidgets")

from nbart import events  # noqa: E402
from nbart.studio import DreamStudio  # noqa: E402
from nbart.studio.driver import StepProgress  # noqa: E402


def statuses(studio):
    seen = []
    studio.status.observe(lambda change: seen.append(change["new"]), names="value")
    return seen


def test_a_tiled_dream_step_shows_its_tiles_in_the_status_line(monkeypatch, gradient_image):
    report = events.Control.report

    def slow_report(self, done, total):  # each tile lasts long enough for the poller to see it, however fast the CPU
        report(self, done, total)
        time.sleep(0.05)

    monkeypatch.setattr(events.Control, "report", slow_report)
    # 256x192 px in tiles of at most 128 px: 2 x 2 tiles per step
    studio = DreamStudio(gradient_image.resize((256, 192)), mode="thread",
                         **{**TINY, "max_size": 256, "tile_size": 128, "octaves": 1, "steps": 2})
    studio.driver.progress_seconds = 0.01
    seen = statuses(studio)
    studio.start(block=True)
    tiles = [text for text in seen if "tile " in text]
    assert any("step 1/2 · tile " in text for text in tiles) and any("step 2/2 · tile " in text for text in tiles)
    assert all("/4</div>" in text for text in tiles)
    assert studio.status.value.count("completed: 2/2 steps") == 1  # the end is never covered by a late tile


def test_step_progress_shows_changes_only_and_nothing_for_one_part_steps():
    class FakeRun:
        progress, finished = None, False

    run, shown = FakeRun(), []
    poller = StepProgress(run, lambda _run, done, parts: shown.append((done, parts)), 0.005)
    poller.start()
    for progress in [(0, 1), (1, 1), (0, 3), (1, 3), (1, 3), None, (2, 3)]:
        run.progress = progress
        time.sleep(0.05)
    run.finished = True
    run.progress = (3, 3)  # a run that ended mid-step: its last tile is not shown over its end
    time.sleep(0.05)
    poller.stop()
    assert shown == [(0, 3), (1, 3), (2, 3)]


# ---- the estimate next to Run ----

FAKE_RATE = {"s_per_gflop": 0.01, "call_s": 0.02, "build_s": 1.0, "trace_s": 0.5, "new_shape_s": 0.25}


def label_text(studio):
    assert studio.cost.wait(120)
    return html.unescape(studio.cost_label.value.split(">", 1)[1].split("<", 1)[0])


def test_the_estimate_next_to_run_follows_the_settings_and_builds_nothing(monkeypatch, gradient_image, tmp_path):
    from nbart import cost, extractors
    from nbart.studio import costlabel

    reads = []
    monkeypatch.setattr(costlabel, "load_image", lambda item, max_size=None: reads.append(max_size) or
                        gradient_image.resize((1200, 900)).copy())
    monkeypatch.setattr(cost, "_calibrations", {})
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no rate cached on disk by an earlier test: uncalibrated
    studio = DreamStudio(gradient_image, mode="thread", estimate=True, **{**TINY, "max_size": 128})
    first = label_text(studio)
    assert first.startswith("about ") and first.endswith(" GB") and " s," not in first  # uncalibrated: memory only
    assert studio.cost.estimate.stages[-1] == (96, 128)
    models = len(extractors.cached_models)

    studio.controls["max_size"].value = 1024
    bigger = label_text(studio)
    assert studio.cost.estimate.stages[-1] == (768, 1024)
    assert float(bigger.split()[1]) > float(first.split()[1])
    assert reads == [1024]  # read once, at 1024 px at the least
    bigger_peak = studio.cost.estimate.peak_bytes
    studio.controls["max_size"].value = 1536  # beyond what was read: read again, at that size (it is 1200 px whole)
    label_text(studio)  # (its text may round to the same GB)
    assert studio.cost.estimate.stages[-1] == (900, 1200) and studio.cost.estimate.peak_bytes > bigger_peak
    studio.controls["max_size"].value = 2048  # the whole image is known: no new read
    label_text(studio)
    assert reads == [1024, 1536]

    # what the warm-up does once the network is built: measure this machine's rate (a fake probe here), once
    probes = []
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no rate cached on disk
    monkeypatch.setattr(cost, "probe", lambda backbone, precision="float32", repeats=3, cancel=None:
                        probes.append(backbone) or dict(FAKE_RATE))
    studio.cost.calibrate(studio.params())
    timed = label_text(studio)
    studio.cost.calibrate(studio.params())
    assert probes == ["vgg16"]
    assert timed == studio.cost.estimate.short() and (" s, " in timed or " min, " in timed)
    studio.controls["max_size"].value = 512
    assert label_text(studio) != timed and len(reads) == 2  # smaller: no new read
    assert len(extractors.cached_models) == models  # no network built for an estimate

    from nbart import resources

    monkeypatch.setattr(resources, "memory_limit", lambda: resources.Limit(1_000_000, "cgroup limit"))
    studio.controls["steps"].value = 6
    assert "won't fit: this process may use 0.0 GB (cgroup limit)" in label_text(studio)
    assert "#b00020" in studio.cost_label.value
    studio.controls["force"].value = True
    assert "won't fit" not in label_text(studio)
    studio.controls["seed"].value = "not a number"  # a bad value: no estimate; Run names it
    assert label_text(studio) == ""


def test_a_url_is_not_fetched_for_an_estimate(monkeypatch):
    from nbart.studio import costlabel

    monkeypatch.setattr(costlabel, "load_image", lambda *a, **k: pytest.fail("an estimate fetched the URL"))
    studio = DreamStudio("https://example.com/photo.jpg", mode="thread", estimate=True, **TINY)
    assert label_text(studio) == "estimate when the URL is read (on Run)"
