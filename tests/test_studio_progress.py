"""What a studio says before and during a run besides its frames: the progress within a long step (a tiled dream
step's tiles, polled from ``run.progress`` as the CLI's bar does)."""

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
