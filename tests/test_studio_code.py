"""Show code reproduces the picture on show (issues 14, 16, 17): the code is RUN (exec in a fresh namespace, in the
kernel's working folder) and its picture compared pixel for pixel with the studio's, for a plain dream with a seed
the engine picked, a dream stopped and continued, a style run stopped and continued, a fast preview, an upload and an
image given in code. Tiny random-weight networks (weights="none"), so only the plumbing is tested."""

import io

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE

ipywidgets = pytest.importorskip("ipywidgets")

from nbart import images  # noqa: E402
from nbart.events import Outcome  # noqa: E402
from nbart.studio import DreamStudio, StyleStudio  # noqa: E402


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """The kernel's working folder ("beside the notebook") is a fresh folder: nothing lands in the tree."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_code(studio, **names):
    """Run what Show code shows, in a namespace holding ``names`` (what the notebook defined); its ``result``."""
    studio.buttons["code"].click()
    code = studio.code.value
    scope = dict(names)
    exec(compile(code, "<show code>", "exec"), scope)
    return code, scope["result"]


def same_pixels(a, b):
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def stop_at(studio, step):
    """Stop the studio's run once it has shown step ``step`` (the Stop button, pressed at a known moment)."""
    shown = studio.run_step

    def run_step(run, event, jpeg, frames):
        shown(run, event, jpeg, frames)
        if event.step >= step:
            studio.stop()

    studio.run_step = run_step


def test_a_plain_dream_with_the_engines_seed():
    s = DreamStudio(**{**TINY, "seed": None})
    assert s.start(block=True)
    entry = s.history[-1]
    assert isinstance(entry.outcome, Outcome) and entry.outcome == Outcome.COMPLETED
    assert isinstance(entry.params.seed, int) and entry.metadata["params"]["seed"] == entry.params.seed
    code, result = run_code(s)
    assert f"seed={entry.params.seed}" in code and "every run differs" not in code
    assert same_pixels(result, s.result)


def test_a_dream_stopped_then_continued_is_the_same_chain_in_code():
    s = DreamStudio(**{**TINY, "steps": 4, "seed": 5}, fps=1000)
    stop_at(s, 3)
    assert s.start(block=True)
    stopped = s.history[-1]
    assert stopped.outcome == Outcome.STOPPED and 3 <= stopped.steps_done < stopped.total == 8
    s.run_step = type(s).run_step.__get__(s)
    assert s.continue_run(2, block=True)
    entry = s.history[-1]
    assert entry.continued and entry.parent is stopped and entry.steps_done == 2
    code, result = run_code(s)
    assert "nbart.dream_run('sample:grace_hopper'" in code and "steps=4" in code
    assert f"if event.step == {stopped.steps_done}:" in code
    assert "result = nbart.dream(result," in code and "octaves=1" in code and "steps=2" in code
    assert same_pixels(result, s.result)
    # the chain's first picture, restored, gives its own code
    s.restore(0)
    _, first = run_code(s)
    assert same_pixels(first, stopped.image)


def test_a_style_run_stopped_then_continued():
    s = StyleStudio(**{**TINY_STYLE, "steps": 5}, fast_preview=False, fps=1000)
    stop_at(s, 2)
    assert s.start(block=True)
    stopped = s.history[-1]
    assert stopped.outcome == Outcome.STOPPED and stopped.steps_done < stopped.total
    s.run_step = type(s).run_step.__get__(s)
    assert s.continue_run(3, block=True)
    code, result = run_code(s)
    assert "run = nbart.style_run('sample:grace_hopper', 'sample:starry_night'" in code
    assert "init_image=result" in code and "steps=3" in code
    assert same_pixels(result, s.result)


def test_a_fast_preview_and_the_run_that_refines_it():
    pytest.importorskip("onnxruntime")
    s = StyleStudio(**TINY_STYLE, fast_preview=True, fps=1000)
    assert s.fast.wait(120)
    preview = s.history[-1]
    assert preview.task == "fast_style"
    code, result = run_code(s)
    assert "result = nbart.fast_style('sample:grace_hopper', 'sample:starry_night'" in code
    assert same_pixels(result, preview.image)
    assert s.continue_run(2, block=True)  # Continue refines the preview
    code, result = run_code(s)
    assert "nbart.fast_style(" in code and "init_image=result" in code
    assert same_pixels(result, s.result)


def _upload(picker, name, content):
    size = len(content)
    if ipywidgets.__version__.startswith("7."):
        picker.upload.set_state({"metadata": [{"name": name, "type": "image/png", "size": size}],
                                 "data": [memoryview(content)], "_counter": picker.upload._counter + 1})
    else:
        picker.upload.set_state({"value": [{"name": name, "type": "image/png", "size": size,
                                            "content": memoryview(content), "last_modified": 0}]})


def _png_bytes(image):
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def test_an_upload_is_saved_beside_the_notebook_under_a_free_name(gradient_image, in_tmp):
    (in_tmp / "holiday photo.png").write_bytes(b"someone else's file")
    s = DreamStudio(**TINY)
    picker = s.pickers["image"]
    picker.kind.value = "upload"
    upload = _png_bytes(gradient_image)
    _upload(picker, "holiday photo.png", upload)
    assert s.start(block=True)
    code, result = run_code(s)
    assert "nbart.dream('holiday photo-1.png'" in code and same_pixels(result, s.result)
    assert (in_tmp / "holiday photo-1.png").read_bytes() == upload  # the bytes as sent
    assert (in_tmp / "holiday photo.png").read_bytes() == b"someone else's file"  # nothing overwritten
    assert "saved holiday photo-1.png beside the notebook" in s.status.value
    s.buttons["code"].click()  # again: the same file, not a third copy
    assert not (in_tmp / "holiday photo-2.png").exists()
    assert s.save("out.png") == "out.png"
    assert images.read_params(in_tmp / "out.png")["inputs"] == ["holiday photo-1.png"]
    # a different upload of the same name gets the next free name
    _upload(picker, "holiday photo.png", _png_bytes(gradient_image.rotate(90, expand=True)))
    assert s.start(block=True)
    code, result = run_code(s)
    assert "nbart.dream('holiday photo-2.png'" in code and same_pixels(result, s.result)


def test_an_upload_that_is_no_image_is_named_in_the_error():
    s = DreamStudio(**TINY)
    picker = s.pickers["image"]
    picker.kind.value = "upload"
    _upload(picker, "holiday.csv", b"date,place\n2024-08-01,Lisbon\n")
    assert s.start(block=True)
    assert "holiday.csv is not an image file" in s.message.value and "the image data" not in s.message.value


def test_an_image_given_in_code_is_called_by_the_notebooks_name(gradient_image, in_tmp):
    holiday = gradient_image.copy()  # its only name here is "holiday"
    s = DreamStudio(holiday, **TINY)
    assert s.start(block=True)
    code, result = run_code(s, holiday=holiday)
    assert "result = nbart.dream(holiday," in code and same_pixels(result, s.result)
    # the notebook 02 way: StyleStudio(content, style) with both loaded in code
    content = images.load_image("sample:grace_hopper", max_size=48)
    style = images.load_image("sample:starry_night", max_size=48)
    s = StyleStudio(content, style, **TINY_STYLE, fast_preview=False)
    assert s.start(block=True)
    code, result = run_code(s, content=content, style=style)
    assert "nbart.style_transfer(content, style," in code and same_pixels(result, s.result)
    # an image with no name in the notebook is saved beside it
    s = DreamStudio(gradient_image.rotate(180), **TINY)
    assert s.start(block=True)
    code, result = run_code(s)
    assert "nbart.dream('image.png'" in code and (in_tmp / "image.png").exists() and same_pixels(result, s.result)
