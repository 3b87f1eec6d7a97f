"""The studios' Regions control (nbart.studio.regions) and guide control, without a browser; on ipywidgets 8 and on
Colab's 7.7 pins (.ci/run)."""

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE

ipywidgets = pytest.importorskip("ipywidgets")

from nbart import images, masks  # noqa: E402
from nbart.studio import DreamStudio, StyleStudio  # noqa: E402
from nbart.studio.regions import save_mask  # noqa: E402


def _png(data):
    return bytes(data[:4]) == b"\x89PNG"


def test_style_regions_one_per_style_are_saved_used_and_in_the_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = StyleStudio(style=["sample:starry_night", "sample:the_scream"], **TINY_STYLE)
    r = s.regions
    assert [label for label, _ in r.region.options] == ["region 1 (style 1)", "region 2 (style 2)"]
    r.widget.selected_index = 0  # opening draws the overlay
    assert _png(r.view.value)
    r.kind.value = "rectangle"
    r.ys.value, r.xs.value = (0.0, 1.0), (0.0, 0.5)
    r.set_region()
    assert r.use() == [] and "set region 2 too" in r.note.value  # one mask per style image
    r.region.value = 1
    r.invert.value = True  # the other half
    r.set_region()
    paths = r.use()
    assert len(paths) == 2 and s.controls["mask"].value == ",".join(paths)
    left = masks.load_mask(paths[0])[0]
    assert left[:, : left.shape[1] // 2 - 1].min() == 1 and left[:, left.shape[1] // 2 + 1:].max() == 0
    s.start(block=True)
    assert s.history[-1].outcome == "completed" and s.history[-1].params.mask == tuple(paths)
    code = s.code_text()
    assert f"mask={tuple(paths)!r}" in code
    scope = {}
    exec(code, scope)
    assert np.array_equal(np.asarray(scope["result"]), np.asarray(s.result))
    r.clear()
    assert s.controls["mask"].value == "" and s.params().mask == ()


def test_dream_region_from_colour_clusters_and_the_guide_control(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = DreamStudio(**TINY)
    r = s.regions
    assert r.region.options == (("region", 0),)
    r.kind.value = "colour clusters"
    r.k.value = 3
    r.keep.value = (0,)  # the darkest
    m = r.candidate()
    assert m.shape[0] == 256 or m.shape[1] == 256
    assert 0 < m.mean() < 1
    (path,) = r.use()
    assert s.controls["mask"].value == path and (tmp_path / path).is_file()
    assert save_mask(m) == path  # named by its content: written once
    s.controls["guide"].value = "sample:starry_night"
    s.start(block=True)
    entry = s.history[-1]
    assert entry.outcome == "completed" and entry.params.guide == "sample:starry_night"
    saved = tmp_path / "out.png"
    s.save_name.value = str(saved)
    s.save()
    params = images.read_params(saved)["params"]
    assert params["mask"] == path and params["guide"] == "sample:starry_night"


def test_an_uploaded_mask_and_a_gradient_show_in_the_overlay(tmp_path, monkeypatch, gradient_image):
    import io

    from PIL import Image

    monkeypatch.chdir(tmp_path)
    s = DreamStudio(gradient_image, **TINY)
    r = s.regions
    r.kind.value = "gradient"
    r.angle.value = 90
    g = r.candidate()
    assert g[0].max() < g[-1].min()  # dark at the top, light at the bottom
    buf = io.BytesIO()
    Image.fromarray((masks.ellipse((20, 20)) * 255).astype(np.uint8)).save(buf, "png")
    r.kind.value = "upload"
    data = buf.getvalue()
    if ipywidgets.__version__.startswith("7."):  # as the browser sends it (see tests/test_studio.py's _upload)
        r.upload.set_state({"metadata": [{"name": "m.png", "type": "image/png", "size": len(data)}],
                            "data": [memoryview(data)], "_counter": r.upload._counter + 1})
    else:
        r.upload.set_state({"value": [{"name": "m.png", "type": "image/png", "size": len(data),
                                       "content": memoryview(data), "last_modified": 0}]})
    u = r.candidate()
    assert u.shape == g.shape and u[u.shape[0] // 2, u.shape[1] // 2] == 1 and u[0, 0] == 0
    assert r.view.value in (b"", None) or not _png(r.view.value)  # closed: nothing drawn
    r.widget.selected_index = 0
    assert _png(r.view.value)


def test_the_dream_studio_has_both_its_regions_and_animate_controls_and_takes_a_new_image():
    """Two branches each gave DreamStudio an ``_extras``; the second hid the first, so the Regions control was
    missing and choosing another image raised AttributeError."""
    s = DreamStudio(**TINY, warm_up=False, estimate=False)

    def tree(w):
        yield w
        for child in getattr(w, "children", ()):
            yield from tree(child)

    shown = list(tree(s))
    assert s.regions.widget in shown and s.animate in shown
    s.pickers["image"].sample.value = "starry_night"  # must not raise
    assert s.error is None
