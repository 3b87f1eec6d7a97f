"""The StyleStudio's fast preview (issue 15): the instant stylization of what is chosen appears before Run, made in
a background thread (the foreground on Colab), debounced so a burst of slider moves makes one stylization; the
history keeps it beside the refined run; a row of the bundled paintings picks the style. Counted, never timed."""

import sys
import threading
import types

import numpy as np
import pytest
from conftest import TINY_STYLE

ipywidgets = pytest.importorskip("ipywidgets")
pytest.importorskip("onnxruntime")

from nbart import fast, images  # noqa: E402
from nbart.backbones import WeightsError  # noqa: E402
from nbart.studio import StyleStudio  # noqa: E402


def fast_studio(**kw):
    return StyleStudio(**{**TINY_STYLE, **kw}, fast_preview=True, fps=1000)


@pytest.fixture
def calls(monkeypatch):
    """The strength of every fast stylization the studio asks the engine for, in order."""
    seen = []
    real = fast.fast_style_run

    def counted(content, style, params=None, **kw):
        seen.append(params.strength if params is not None else kw.get("strength", 1.0))
        return real(content, style, params, **kw)

    monkeypatch.setattr(fast, "fast_style_run", counted)
    return seen


def _png(data):
    return bytes(data[:4]) == b"\x89PNG"


def test_the_fast_preview_appears_without_run_from_a_background_thread():
    s = fast_studio()
    changes = []
    s.preview.observe(lambda c: changes.append(threading.current_thread()), names="value")
    assert s.fast.wait(120)
    entry = s.history[-1]
    assert len(s.history) == 1 and entry.label == "fast preview" and s.current is entry and s.result is entry.image
    assert s.thread is None and not s.running  # no run was started
    assert "fast preview" in s.status.value and "Continue refines it" in s.status.value  # init is the content's
    assert changes and all(t is s.fast.thread for t in changes) and s.fast.thread is not threading.main_thread()
    assert _png(s.preview.value) and s.preview.format == "png"
    # the content's aspect ratio, at the studio's output size or the preview's least (128 px)
    content = images.load_image("sample:grace_hopper")
    assert max(entry.image.size) == 128
    assert abs(entry.image.size[0] / entry.image.size[1] - content.size[0] / content.size[1]) < 0.03
    photo = np.asarray(images.load_image("sample:grace_hopper", max_size=128), np.float32)
    assert np.abs(np.asarray(entry.image, np.float32) - photo).mean() > 10  # painted, not the photo
    assert not s.buttons["save"].disabled and not s.buttons["continue"].disabled


def test_a_burst_of_slider_moves_makes_one_stylization(calls):
    s = fast_studio()
    assert s.fast.wait(120) and len(s.history) == 1
    before = len(calls)  # the first look, and the content painted in each painting's tile
    assert before == 1 + len(s.fast.tiles)
    for value in (0.9, 0.8, 0.7, 0.6, 0.5):  # a drag: five values well within the debounce delay
        s.fast.strength.value = value
    assert s.fast.wait(120)
    assert calls[before:] == [0.5] and len(s.history) == 2
    assert s.history[-1].params.strength == 0.5 and "strength 0.50" in s.status.value


def test_history_keeps_the_fast_preview_and_the_refined_run(tmp_path):
    s = fast_studio(init="fast")
    assert s.fast.wait(120) and "press Run to refine it" in s.status.value
    assert s.start(block=True)
    first, second = s.history
    assert first.label == "fast preview" and first.summary.startswith("fast preview, ")
    assert second.label == "" and second.outcome == "completed" and s.current is second
    assert "#1 restore" in s.history_strip.slots[0][2].description
    assert "nbart.fast_style(" in s.history_strip.slots[0][2].tooltip
    assert "nbart.style_transfer(" in s.history_strip.slots[1][2].tooltip
    s.fast.strength.value = 0.5  # a new preview (of the same sources) ...
    assert s.fast.wait(120) and len(s.history) == 3
    s.restore(0)  # ... and the first one back, with its strength, without making another
    assert s.result is first.image and s.fast.strength.value == 1.0 and "restored #1: fast preview" in s.status.value
    assert s.fast.wait(120) and len(s.history) == 3
    meta = images.read_params(s.save(str(tmp_path / "fast.png")))
    assert meta["task"] == "fast_style" and meta["params"]["strength"] == 1.0
    assert meta["inputs"] == ["sample:grace_hopper", "sample:starry_night"]
    assert s.continue_run(2, block=True)  # Continue refines the fast preview with the optimizer
    assert s.history[-1].continued and s.history[-1].image.size == first.image.size


def test_a_painting_tile_picks_the_style_and_shows_the_content_in_it(calls):
    s = fast_studio()
    img, button = s.fast.tiles["the_scream"]
    painting = bytes(img.value)  # the painting itself, until the content is painted in it
    assert s.fast.wait(120)
    assert bytes(img.value) != painting and _png(img.value)
    button.click()
    assert s.pickers["style"].source().items == ("sample:the_scream",)
    assert s.fast.wait(120)
    entry = s.history[-1]
    assert entry.sources["style"].items == ("sample:the_scream",) and entry.label == "fast preview"
    # one preview per choice: the first look, then the painting picked (the two tiles are painted once)
    assert len(s.history) == 2 and calls.count(1.0) == 2 + len(s.fast.tiles)


def test_run_overtakes_a_preview_in_the_making():
    s = fast_studio()  # a preview is asked for as the panel opens ...
    assert s.start(block=True)  # ... and Run is pressed at once: the run's picture stays on show
    assert s.fast.wait(120)
    assert [e.label for e in s.history] == [""] and s.current is s.history[0]
    assert "completed" in s.status.value


def test_on_colab_the_preview_is_made_in_the_foreground(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    s = fast_studio()
    assert s.mode == "foreground" and s.fast.thread is None
    assert len(s.history) == 1 and s.history[0].label == "fast preview"  # made before the constructor returned
    assert s.fast.strength.continuous_update is False  # one preview when the slider is let go
    s.fast.strength.value = 0.5
    assert len(s.history) == 2 and s.history[-1].params.strength == 0.5


def test_a_broken_fast_network_is_one_note_and_runs_still_work(monkeypatch):
    def broken(*_a, **_k):
        raise WeightsError("the fast style network arbitrary_transform.onnx is not a usable ONNX model")

    monkeypatch.setattr(fast, "fast_style_run", broken)
    s = fast_studio()
    assert s.fast.wait(120)
    assert "no fast preview: the fast style network" in s.message.value and s.history == []
    assert s.start(block=True) and s.history[-1].outcome == "completed"
