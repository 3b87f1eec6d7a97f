"""The studios' Inside panel without a browser (ipywidgets 8, and Colab's 7.7 pins under .ci/run): off by default
and asking nothing of the run; on, every view filled from the run's inside view, the curves recorded every step."""

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE
from PIL import Image

pytest.importorskip("ipywidgets")

import io  # noqa: E402

from nbart.studio import DreamStudio, StyleStudio  # noqa: E402
from nbart.studio.inside import curves_svg, gallery, heat_image  # noqa: E402

CONTENT = (np.random.default_rng(3).random((40, 48, 3)) * 255).astype(np.uint8)
STYLE = (np.random.default_rng(4).random((40, 48, 3)) * 255).astype(np.uint8)


def png_size(data):
    return Image.open(io.BytesIO(bytes(data))).size


def test_off_by_default_the_run_gets_no_inside_view():
    studio = StyleStudio(CONTENT, STYLE, fast_preview=False, mode="thread", **{**TINY_STYLE, "steps": 2})
    panel = studio.inside_panel
    assert panel.toggle.value is False and panel.body.layout.display == "none"
    seen = []
    studio.run_event = lambda event: seen.append(event.inside)
    assert studio.start(block=True)
    assert seen == [None, None] and panel.curves.value == curves_svg([]) and panel.gradient.value == b""


def test_style_inside_panel_shows_every_view():
    studio = StyleStudio(CONTENT, STYLE, fast_preview=False, mode="thread", **{**TINY_STYLE, "steps": 3})
    panel = studio.inside_panel
    assert panel.layer.value == panel.gram_layer.value == "block3_conv1"  # the middle style layer
    panel.toggle.value = True
    panel.layer.value = "block2_conv1"
    panel.per_layer.value = True
    assert panel.body.layout.display is None
    assert studio.start(block=True)
    assert [step for step, _ in panel._history] == [1, 2, 3]  # every step, not only the frames shown
    assert "style · block1_conv1" in panel._history[0][1] and "tv" in panel._history[0][1]
    assert panel.curves.value.count("<polyline") == 3 + 5  # three terms and five style layers
    assert png_size(panel.gradient.value)[0] == 176
    assert png_size(panel.maps.value)[0] > 0 and "block2_conv1" in panel.maps_caption.value
    assert png_size(panel.grams.value)[0] > 0 and "block3_conv1" in panel.grams_caption.value
    panel.per_layer.value = False
    assert panel.curves.value.count("<polyline") == 3


def test_dream_inside_panel_switched_on_during_a_run():
    studio = DreamStudio(CONTENT, mode="thread", **{**TINY, "octaves": 1, "steps": 4})
    panel = studio.inside_panel
    assert panel.layer.value == "block4_conv3" and not hasattr(panel, "grams_caption") or panel.grams not in \
        panel.body.children

    def run_event(event, original=studio.run_event):
        original(event)
        if event.step == 1:
            panel.toggle.value = True  # the active run is asked from the next step on

    studio.run_event = run_event
    assert studio.start(block=True)
    assert [step for step, _ in panel._history] == [2, 3, 4]
    assert set(panel._history[0][1]) == {"block4_conv3", "block5_conv2"}
    assert "block4_conv3" in panel.maps_caption.value


def test_drawings():
    svg = curves_svg([(1, {"content": 1e-3, "style": 2.0}), (2, {"content": 2e-3, "style": 1.0, "tv": 0.0})])
    assert svg.count("<polyline") == 2 and ">0.001<" in svg and "tv" in svg  # tv 0: in the legend, no line
    image = heat_image(np.arange(12, dtype=np.float32).reshape(3, 4), 80)
    assert image.size == (80, 60)
    sheet = gallery(np.ones((8, 5, 6), np.float32), np.arange(8))
    assert sheet.size[0] > sheet.size[1] > 0


def test_the_inside_pickers_list_the_layers_of_the_backbone_that_will_run(monkeypatch):
    """Offline, the default inception_v3 with weights="auto" runs as the VGG16 (the layer controls list its layers):
    the Inside panel's pickers list the same, instead of failing to select a VGG16 layer among InceptionV3's (the
    quickstart's DreamStudio raised TraitError)."""
    monkeypatch.setenv("NBART_OFFLINE", "1")
    dream = DreamStudio("sample:grace_hopper", max_size=96, steps=2, warm_up=False, estimate=False)
    assert dream.inside_panel.layer.value in dream.inside_panel.layer.options
    assert "block4_conv3" in dream.inside_panel.layer.options and "mixed4" not in dream.inside_panel.layer.options
    style = StyleStudio(max_size=96, steps=2, warm_up=False, estimate=False, fast_preview=False)
    assert style.inside_panel.gram_layer.value in style.inside_panel.gram_layer.options
