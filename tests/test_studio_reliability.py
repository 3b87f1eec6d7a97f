"""The studios under odd inputs and side by side (issue 8): every corpus file uploaded to a studio gives the right
picture or one plain error in the panel, with the worker thread ended and the panel ready again; two studios in one
kernel run, stop and fail without disturbing each other."""

import threading

import numpy as np
import pytest
from conftest import TINY
from corpus import Case, cases, check_points

ipywidgets = pytest.importorskip("ipywidgets")

from nbart.studio import DreamStudio, StyleStudio  # noqa: E402

CASES = cases()
# A dream that barely moves the pixels, so the picture on show can be checked against the corpus' colours.
STILL = dict(model="vgg16", weights="none", max_size=64, octaves=1, steps=1, step_size=1e-6, jitter=0, seed=0,
             precision="float32")


def _upload(picker, name: str, content: bytes) -> None:
    """Put a file in the picker's FileUpload as the browser does (ipywidgets 7 or 8 message format)."""
    if ipywidgets.__version__.startswith("7."):
        picker.upload.set_state({"metadata": [{"name": name, "type": "image/jpeg", "size": len(content)}],
                                 "data": [memoryview(content)], "_counter": picker.upload._counter + 1})
    else:
        picker.upload.set_state({"value": [{"name": name, "type": "image/jpeg", "size": len(content),
                                            "content": memoryview(content), "last_modified": 0}]})


def _ready(s) -> bool:
    return not s.running and not s.buttons["run"].disabled and (s.thread is None or not s.thread.is_alive())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_uploaded_to_a_studio(case: Case):
    s = DreamStudio(mode="thread", fps=1000, **STILL)
    picker = s.pickers["image"]
    picker.kind.value = "upload"
    _upload(picker, case.name, case.data)  # the thumbnail is made on the main thread: it must not raise either
    started = s.start()
    assert s.wait(120) and _ready(s)
    expected_error = case.error or case.fit_error
    if case.name == "empty.png":  # refused before a run starts, in the studio's own words
        assert not started and "arrived empty" in s.error
        return
    if expected_error:
        assert started and expected_error in s.error and "\n" not in s.error, s.error
        if case.error:  # a file that can't be read is named by its own name, not "the image data"
            assert case.name in s.error and "the image data" not in s.error, s.error
        assert s.error_details is None  # an expected error: plain words, no traceback
        assert "Error: " in s.message.value and s.history == []
        return
    assert started and s.error is None and s.history[-1].outcome == "completed"
    w, h = case.size
    scale = min(1.0, 64 / max(w, h))
    if min(w, h) * scale < 32:
        assert min(s.result.size) == 32 and "upscaled from" in s.message.value  # the notice is in the panel
    else:
        assert s.result.size == (round(w * scale), round(h * scale))
    check_points(s.result, case, tolerance=case.tolerance + 6)


def _tiny_dream(**kw):
    return DreamStudio("sample:starry_night", mode="thread", fps=1000, **{**TINY, "steps": 6, **kw})


def _tiny_style(**kw):
    return StyleStudio("sample:grace_hopper", "sample:the_scream", mode="thread", fps=1000,
                       **{"model": "vgg16", "weights": "none", "sizes": (48,), "steps": 4, "seed": 3,
                          "precision": "float32", **kw})


def test_two_studios_side_by_side_give_what_each_gives_alone():
    dream, style = _tiny_dream(layers=("block3_conv1",)), _tiny_style()
    for s in (dream, style):  # alone (the networks are cached from here on)
        assert s.start(block=True) and s.history[-1].outcome == "completed"
    alone = [np.asarray(dream.result), np.asarray(style.result)]
    assert dream.start() and style.start()  # together, each in its worker thread
    assert dream.wait(120) and style.wait(120) and _ready(dream) and _ready(style)
    assert dream.thread is not style.thread
    np.testing.assert_array_equal(np.asarray(dream.result), alone[0])
    np.testing.assert_array_equal(np.asarray(style.result), alone[1])
    assert [e.outcome for e in dream.history + style.history] == ["completed"] * 4


def test_stopping_or_breaking_one_studio_leaves_the_other_alone(tmp_path):
    quiet = _tiny_dream(seed=5)
    assert quiet.start(block=True)
    reference = np.asarray(quiet.result)

    busy, other = _tiny_dream(steps=10000, max_size=96), _tiny_dream(seed=5)
    started = threading.Event()
    busy.progress.observe(lambda change: change["new"] >= 1 and started.set(), names="value")  # a first step
    assert busy.start()
    assert started.wait(60)
    assert other.start()
    busy.stop()
    assert busy.wait(60) and other.wait(120) and _ready(busy) and _ready(other)
    assert busy.history[-1].outcome == "stopped" and other.history[-1].outcome == "completed"
    np.testing.assert_array_equal(np.asarray(other.result), reference)

    broken, fine = _tiny_dream(), _tiny_dream(seed=5)
    (tmp_path / "notes.jpg").write_text("not a picture")
    broken.pickers["image"].kind.value = "url"
    broken.pickers["image"].url.value = str(tmp_path / "notes.jpg")
    assert broken.start() and fine.start()
    assert broken.wait(60) and fine.wait(120) and _ready(broken) and _ready(fine)
    assert "is not an image file: it holds text" in broken.error and broken.history == []
    assert fine.error is None
    np.testing.assert_array_equal(np.asarray(fine.result), reference)
