"""A studio's first seconds after Run (issue 16.5), checked by what is built and traced, never by seconds.

The seconds themselves (first step within 2 s of Run with the panel open a few seconds, the first estimate against
the truth) are measured by ``benchmarks/bench_first_step.py`` (results in ``benchmarks/results/first-step.*``).
"""

import math

import pytest
from conftest import TINY, TINY_STYLE

import nbart
from nbart import extractors
from nbart.studio.render import status_line


@pytest.fixture
def builds(monkeypatch):
    """Counts the networks built from here on (``extractors.model``'s weight loads)."""
    count = {"networks": 0}
    load = extractors.load_weights

    def counting(*args, **kwargs):
        count["networks"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(extractors, "load_weights", counting)
    extractors.clear_cache()
    return count


def _traced() -> dict:
    """Every cached traced function, by its extractor and key, with how many times it was traced."""
    out = {}
    for key, ext in extractors.cached_extractors.items():
        for fkey, pair in ext.functions.items():
            for i, f in enumerate(pair):
                f = getattr(f, "function", f)  # the style loss is wrapped to keep its argument order
                out[(key, fkey, i)] = f.experimental_get_tracing_count()
    return out


def test_the_first_estimate_shown_waits_for_the_engines_model(gradient_image):
    """After the first step (which also builds and traces) nothing is estimated; from the second on, the engine's
    per-stage estimate. The mean pace of the first step made the first estimate shown 3-15x too long."""
    events = list(nbart.dream_run(gradient_image, **TINY))
    assert math.isnan(events[0].seconds_left)
    assert "estimating the time left" in status_line(events[0])
    assert events[1].seconds_left == events[1].eta and math.isfinite(events[1].eta)
    assert status_line(events[1]).endswith(" left") and "estimating" not in status_line(events[1])
    assert "left" not in status_line(events[-1])  # the last step: nothing left


def test_a_warmed_up_dream_studio_runs_without_building_or_tracing_again(builds):
    """What the warm-up builds while the panel is open is what Run uses: the run builds and traces nothing more
    (its first step is then one step's work)."""
    studio = nbart.DreamStudio(**TINY, warm_up=True)
    studio.warm_up_thread.join(120)
    assert not studio.warm_up_thread.is_alive()
    warmed = _traced()
    assert builds["networks"] == 1 and warmed and all(n == 1 for n in warmed.values())
    assert studio.start(block=True)
    assert studio.current is not None and studio.current.steps_done == studio.current.total
    assert builds["networks"] == 1 and _traced() == warmed
    studio.pickers["image"].sample.value = "starry_night"  # another picture: nothing new to build
    assert studio.start(block=True)
    assert builds["networks"] == 1 and _traced() == warmed


def test_the_style_studio_reuses_what_it_built_when_only_the_images_change(builds):
    """Changing the content or the style images (a painting's tile, an upload) rebuilds no network, extractor or
    traced function; neither does Continue."""
    studio = nbart.StyleStudio(**{**TINY_STYLE, "sizes": (64,)})  # a landscape content fits at 64 px
    assert studio.start(block=True)
    built, traced = builds["networks"], _traced()
    assert built == 1 and traced and all(n == 1 for n in traced.values())
    studio.pickers["style"].sample.value = ("the_scream",)
    assert studio.start(block=True)
    studio.pickers["style"].sample.value = ("starry_night", "the_scream")  # two styles, blended
    studio.pickers["content"].sample.value = "starry_night"
    assert studio.start(block=True), studio.error
    assert studio.continue_run(2, block=True), studio.error
    assert len(studio.history) == 4 and studio.error is None
    assert builds["networks"] == built and _traced() == traced
