"""The studios' Explore tab (DreamStudio) and Compare tab (both): thumbnails fill in from the worker, a click sets
the layers or restores a result and its settings. Tiny random-weight VGG16; no timings asserted."""

import threading

import pytest
from conftest import TINY, TINY_STYLE

ipywidgets = pytest.importorskip("ipywidgets")

from nbart import explorer, registry  # noqa: E402
from nbart.studio import DreamStudio, StyleStudio  # noqa: E402


@pytest.fixture
def studio(gradient_image):
    explorer.clear_cache()
    s = DreamStudio(gradient_image, **{**TINY, "octaves": 1, "steps": 1}, mode="thread", warm_up=False)
    s.explore.size, s.explore.steps = 40, 1
    s.compare.size.value = 40
    return s


def _filled(thumbs, n):
    return [bool(thumbs.images[i].value) and not thumbs.buttons[i].disabled for i in range(n)]


def test_explore_fills_a_thumbnail_per_layer_in_the_worker_and_a_click_sets_the_layers(studio):
    tab = studio.explore
    titles = [tab_widget.get_title(i) for tab_widget in [_tabs(studio)] for i in range(len(tab_widget.children))]
    assert titles[-2:] == ["Explore", "Compare"]
    threads = set()
    tab.thumbs.images[0].observe(lambda _c: threads.add(threading.current_thread().name), names="value")
    assert tab.start() and tab.wait(300)
    layers = registry.get("vgg16").layers
    assert tab.specs == list(layers) and all(_filled(tab.thumbs, len(layers)))
    assert threads == {"nbart-explore"}  # filled from the worker, not the kernel's thread
    assert tab.thumbs.boxes[len(layers)].layout.display == "none"
    assert "13/13 done" in tab.status.value and not tab.go.disabled and tab.halt.disabled
    tab.pick(3)
    assert studio.params().layers == (layers[3],) and "press Run" in tab.status.value


def test_explore_channels_then_run_with_the_picked_channel(studio):
    tab = studio.explore
    tab.what.value, tab.layer.value, tab.count.value = "channels", "block2_conv1", 3
    assert tab.start(block=True)
    assert len(tab.specs) == 3 and all(s.startswith("block2_conv1:") for s in tab.specs)
    assert all(_filled(tab.thumbs, 3))
    tab.pick(1)
    assert studio.params().layers == (tab.specs[1],)
    assert studio.start(block=True) and studio.current.ran.layers == (tab.specs[1],)


def test_explore_says_why_it_cannot_start(studio):
    studio.controls["weights"].value = "missing.h5"  # a bad setting in the panel
    assert not studio.explore.start(block=True)
    assert "weights must be auto" in studio.explore.status.value


def test_compare_fills_every_combination_and_a_click_restores_it_with_its_settings(studio):
    tab = studio.compare
    tab.first.value, tab.first_values.value = "step_size", "0.01, 0.05"
    tab.second.value, tab.second_values.value = "jitter", "0, 4"
    assert tab.start() and tab.wait(300)
    assert all(_filled(tab.thumbs, 4)) and "4/4 done" in tab.status.value
    assert tab.thumbs.buttons[3].description == "step_size=0.05, jitter=4"
    tab.pick(3)
    p = studio.params()
    assert (p.step_size, p.jitter, p.max_size, p.seed) == (0.05, 4, 40, 0)
    assert studio.current is tab.entries[3] and studio.history[-1] is tab.entries[3]
    assert studio.result.size == tab.entries[3].image.size
    code = studio.code_text()
    assert "step_size=0.05" in code and "seed=0" in code and "max_size=40" in code
    tab.pick(3)  # twice: it joins the history once
    assert sum(e is tab.entries[3] for e in studio.history) == 1


def test_compare_refuses_bad_values_in_words(studio):
    tab = studio.compare
    tab.first.value, tab.first_values.value = "step_size", "0.01, abc"
    assert not tab.start(block=True) and "is not a number" in tab.status.value
    tab.first_values.value = ", ".join(str(0.01 * (i + 1)) for i in range(17))
    assert not tab.start(block=True) and "at most 16 combinations" in tab.status.value


def test_style_studio_compares_too(gradient_image):
    style = gradient_image.rotate(90, expand=True)
    s = StyleStudio(gradient_image, style, **TINY_STYLE, mode="thread", warm_up=False)
    assert not hasattr(s, "explore")
    tab = s.compare
    tab.first_values.value = "1, 100"  # style_weight
    tab.size.value = 48
    assert tab.start(block=True) and all(_filled(tab.thumbs, 2))
    tab.pick(1)
    assert s.params().style_weight == 100.0 and s.current is tab.entries[1]


def _tabs(studio):
    found = []

    def walk(w):
        if isinstance(w, ipywidgets.Tab):
            found.append(w)
        for c in getattr(w, "children", ()):
            walk(c)

    walk(studio)
    return found[0]


def test_the_explore_tab_shows_its_estimate_before_it_runs(monkeypatch, gradient_image, tmp_path):
    """Beside Explore: nbart.estimate("explore", ...) of what the button would run, following the tab's choice and
    the studio's calibration (a fake probe here); nothing where the studio shows no estimates."""
    import html

    from nbart import cost

    monkeypatch.setattr(cost, "_calibrations", {})
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no rate cached on disk: uncalibrated at first
    s = DreamStudio(gradient_image, **{**TINY, "octaves": 1, "steps": 1}, mode="thread", warm_up=False, estimate=True)
    tab = s.explore

    def text():
        assert s.cost.wait(60) and tab.cost.wait(60)
        return html.unescape(tab.cost_label.value.split(">", 1)[1].split("<", 1)[0])

    first = text()
    assert first.startswith("about ") and first.endswith(" GB") and " s," not in first  # memory only
    assert tab.cost.estimate.task == "explore" and tab.cost.estimate.parts["objectives"] == 13
    monkeypatch.setattr(cost, "probe", lambda backbone, precision="float32", repeats=3, cancel=None: {
        "s_per_gflop": 0.01, "call_s": 0.02, "build_s": 1.0, "trace_s": 0.5, "new_shape_s": 0.25})
    s.cost.calibrate(s.params())  # the warm-up's calibration: the studio's label changes, the tab's follows
    timed = text()
    assert " s, " in timed and timed == tab.cost.estimate.short()
    tab.what.value, tab.layer.value, tab.count.value = "channels", "block2_conv1", 3
    assert text() != timed and tab.cost.estimate.parts["objectives"] == 3
    off = DreamStudio(gradient_image, **TINY, mode="thread", warm_up=False, estimate=False)
    assert off.explore.cost_label.value == ""
