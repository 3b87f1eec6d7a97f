"""The studios without a browser: controls from the spec, runs in a thread and in the foreground, Stop, errors in the
panel, history, Show code and Save. Runs against ipywidgets 8 + ipykernel 7 and against Colab's ipywidgets 7.7 +
ipykernel 6.17 (see .ci/run)."""

import os
import sys
import threading
import time
import types

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE

ipywidgets = pytest.importorskip("ipywidgets")

import nbart  # noqa: E402
from nbart import cli, deepdream, events, images  # noqa: E402
from nbart.params import DreamParams, StyleParams, fields_of  # noqa: E402
from nbart.studio import DreamStudio, StyleStudio  # noqa: E402
from nbart.studio.compat import uploaded_files  # noqa: E402


def tiny_studio(**kw):
    kwargs = {**TINY, **kw}
    return DreamStudio(kwargs.pop("image", None), **kwargs)


class Recorder:
    """Every value a widget trait takes, with the thread that set it."""

    def __init__(self, widget, trait="value"):
        self.changes = []
        widget.observe(lambda c: self.changes.append((c["new"], threading.current_thread())), names=trait)

    @property
    def values(self):
        return [v for v, _ in self.changes]


def jpeg_or_png(data):
    return "jpeg" if bytes(data[:3]) == b"\xff\xd8\xff" else "png" if bytes(data[:4]) == b"\x89PNG" else "?"


# ----------------------------------------------------------------------------------------------------------------
# controls


@pytest.mark.parametrize("studio_cls, params_cls", [(DreamStudio, DreamParams), (StyleStudio, StyleParams)])
def test_cli_flags_widget_controls_and_spec_fields_are_the_same_set(studio_cls, params_cls):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[studio_cls.task]
    inputs = {name for task in cli.TASKS if task.name == studio_cls.task for name, _ in task.inputs}
    flags = {a.dest for a in sub._actions} - {"help"} - inputs - set(cli.CLI_ONLY_FLAGS)
    fields = {f.name for f in fields_of(params_cls)}
    studio = studio_cls()
    assert set(studio.controls) == fields == flags
    assert studio.params() == params_cls(**studio_cls.starting)  # the spec's defaults, or quicker ones


def test_controls_start_from_the_keywords_and_read_back_as_params():
    s = DreamStudio("sample:starry_night", model="vgg16", layers=("block3_conv1", "block4_conv3:7"),
                    layer_weights=(1.0, 0.5), steps=250, step_size=0.02, seed=7, max_size=96)
    c = s.controls
    assert c["steps"].value == 250 and c["steps"].max >= 250  # beyond the slider's usual range: it widens
    assert c["layers"].value == ("block3_conv1", "block4_conv3:7")
    assert "block5_conv3" in c["layers"].options and "block4_conv3:7" in c["layers"].options
    assert c["layer_weights"].value == "1, 0.5" and c["seed"].value == "7"
    assert isinstance(c["model"], ipywidgets.Dropdown) and isinstance(c["octaves"], ipywidgets.IntSlider)
    assert s.params() == DreamParams(model="vgg16", layers=("block3_conv1", "block4_conv3:7"),
                                     layer_weights=(1.0, 0.5), steps=250, step_size=0.02, seed=7, max_size=96)
    assert s.pickers["image"].source().items == ("sample:starry_night",)


def test_layer_list_follows_the_model():
    s = DreamStudio(weights="none")  # no fallback: each model runs itself (offline, auto: see the test below)
    layers = s.controls["layers"]
    assert layers.options == nbart.backbones.get("inception_v3").layers
    assert layers.value == ("mixed3", "mixed5")
    s.controls["model"].value = "vgg19"
    assert layers.options == nbart.backbones.get("vgg19").layers
    assert layers.value == nbart.backbones.get("vgg19").dream_layers
    assert s.params().layers == ()  # the model's defaults
    layers.value = ("block1_conv1",)
    assert s.params().layers == ("block1_conv1",)
    s.controls["model"].value = "vgg16"  # block1_conv1 exists in vgg16 too: the pick stays
    assert layers.value == ("block1_conv1",)


def test_a_bad_control_value_is_shown_in_the_panel_and_starts_nothing():
    s = tiny_studio()
    s.controls["seed"].value = "abc"
    assert s.start() is False
    assert "seed must be a whole number" in s.message.value and s.error.startswith("seed must be")
    assert not s.running and s.thread is None
    s.controls["seed"].value = ""
    s.controls["layer_weights"].value = "1, 2, 3"
    assert s.start() is False
    assert "layer_weights needs one weight per layer (2) (got 3)" in s.message.value


# ----------------------------------------------------------------------------------------------------------------
# running


def test_a_threaded_run_updates_the_preview_while_the_main_thread_is_free():
    s = tiny_studio(octaves=1, steps=40, fps=200)
    frames = Recorder(s.preview)
    progress = Recorder(s.progress)
    assert s.start() is True
    assert s.running and s.buttons["run"].disabled and not s.buttons["stop"].disabled
    # the main thread is not held: it gets here while the run is still going
    assert s.thread is not threading.current_thread() and s.thread.is_alive()
    assert s.wait(120) and not s.running
    jpegs = [v for v in frames.values if jpeg_or_png(v) == "jpeg"]
    assert len(set(map(bytes, jpegs))) >= 3  # several different live frames
    assert jpeg_or_png(frames.values[-1]) == "png" and s.preview.format == "png"  # PNG at the end
    assert all(t is s.thread for _, t in frames.changes[1:])  # set from the worker, never created there
    assert progress.values == sorted(progress.values) and s.progress.value == 40
    assert s.result.size == (55, 64) and len(s.history) == 1 and s.history[0].outcome == "completed"
    assert "completed: 40/40 steps" in s.status.value and "svg" in s.curve.value and "polyline" in s.curve.value
    assert not s.buttons["run"].disabled and s.buttons["stop"].disabled and not s.buttons["save"].disabled


def test_stop_lands_within_a_step_and_keeps_the_image():
    s = tiny_studio(octaves=1, steps=10000, max_size=96)
    assert s.start()
    deadline = time.monotonic() + 120
    def steps_done():
        run = s.active_run  # the engine's Run in progress
        return run.latest.step if run is not None and run.latest is not None else 0

    while steps_done() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.buttons["stop"].click()
    at_stop = s.active_run.latest.step  # read after the stop was asked: at most the step in flight may still finish
    assert s.wait(10)
    entry = s.history[-1]
    assert entry.outcome == "stopped" and at_stop <= entry.steps_done <= at_stop + 1 < entry.total
    assert s.result is entry.image and s.preview.format == "png"
    assert "stopped" in s.status.value and "picture is kept" in s.status.value


def test_a_second_run_never_starts_while_one_runs(monkeypatch):
    starts = []
    real = deepdream.dream_run
    import nbart.studio.dream as studio_dream

    monkeypatch.setattr(studio_dream, "dream_run", lambda *a, **k: starts.append(1) or real(*a, **k))
    s = tiny_studio(octaves=1, steps=10000)
    s.buttons["run"].click()
    s.buttons["run"].click()  # a queued second click while the first run works
    assert s.start() is False
    assert "in progress" in s.message.value
    s.stop()
    assert s.wait(60)
    assert len(starts) == 1 and len(s.history) <= 1


def test_a_bad_image_shows_an_error_in_the_panel_and_keeps_the_picture(tmp_path):
    s = tiny_studio()
    before = bytes(s.preview.value)
    s.pickers["image"].kind.value = "url"
    s.pickers["image"].url.value = "missing.jpg"
    assert s.start()
    assert s.wait(60)
    assert "no such file" in s.message.value and "Error" in s.message.value
    assert f"looked in {os.getcwd()}" in s.message.value  # the kernel's working folder, where a relative path points
    assert "Traceback" not in s.message.value  # plain words for an expected error
    assert bytes(s.preview.value) == before and s.history == [] and not s.running
    assert not s.buttons["run"].disabled


def test_an_engine_failure_mid_run_is_shown_with_details_and_the_last_frame_stays(monkeypatch):
    real_next = events.Run.__next__

    def failing(self):
        if self.latest is not None and self.latest.step == 3:
            raise RuntimeError("engine fault")
        return real_next(self)

    monkeypatch.setattr(events.Run, "__next__", failing)
    s = tiny_studio(octaves=1, steps=10, fps=1000)
    frames = Recorder(s.preview)
    assert s.start() and s.wait(60)
    assert "RuntimeError: engine fault" in s.message.value and "<details>" in s.message.value
    assert "engine fault" in s.error_details and "Traceback" in s.error_details
    assert "failed at step 3; the last picture stays" in s.status.value
    assert jpeg_or_png(frames.values[-1]) == "jpeg" and s.preview.value == frames.values[-1]
    assert not s.running and not s.buttons["run"].disabled


@pytest.fixture
def on_colab(monkeypatch):
    """A kernel that looks like Colab's: google.colab is imported (the real 'google' namespace, protobuf's, stays)."""
    colab = types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    return colab


def test_on_colab_the_run_happens_in_the_foreground_with_live_updates(on_colab):
    s = tiny_studio(octaves=1, steps=20, fps=1000)
    assert s.mode == "foreground" and "interrupt" in s.message.value
    frames = Recorder(s.preview)
    assert s.start() is True  # returns when the run has ended
    assert not s.running and s.thread is None and s.history[-1].outcome == "completed"
    main = threading.main_thread()
    assert len(frames.changes) >= 5 and all(t is main for _, t in frames.changes)
    # a double-click's second click, queued while the run held the kernel, arrives now: it starts nothing
    s.buttons["run"].click()
    assert len(s.history) == 1 and not s.running


def test_an_interrupt_in_the_foreground_stops_gracefully_and_keeps_the_image(on_colab, monkeypatch):
    real_next = events.Run.__next__

    def interrupted(self):
        if self.latest is not None and self.latest.step == 3:
            raise KeyboardInterrupt
        return real_next(self)

    monkeypatch.setattr(events.Run, "__next__", interrupted)
    s = tiny_studio(octaves=1, steps=10)
    assert s.start() is True  # the interrupt does not escape
    entry = s.history[-1]
    assert entry.outcome == "interrupted" and entry.steps_done == 3 and s.result is entry.image
    assert "interrupted: 3/10 steps" in s.status.value and "picture is kept" in s.status.value
    assert not s.running and not s.buttons["run"].disabled


def test_blocking_mode_runs_in_the_calling_thread():
    s = tiny_studio()
    assert s.mode == "thread"
    assert s.start(block=True) and s.thread is None and s.history[-1].outcome == "completed"


# ----------------------------------------------------------------------------------------------------------------
# after a run: continue, history, show code, save, reset


def test_continue_goes_on_from_the_picture_on_show(monkeypatch):
    seen = []
    real = deepdream.dream_run  # what the engine's deepdream.continue_run calls
    monkeypatch.setattr(deepdream, "dream_run", lambda image, p: seen.append((image, p)) or real(image, p))
    s = tiny_studio()
    assert not s.continue_run() and "press Run first" in s.message.value
    s.start(block=True)
    first = s.result
    s.more_steps.value = 3
    s.buttons["continue"].click()
    assert s.wait(60)
    image, params = seen[-1]
    assert image is first and params.octaves == 1 and params.steps == 3
    entry = s.history[-1]
    assert entry.continued and entry.total == 3 and entry.summary.startswith("+3/3 steps")
    assert s.result.size == first.size and not np.array_equal(np.asarray(s.result), np.asarray(first))


def test_show_code_reproduces_the_picture_exactly():
    s = tiny_studio(seed=3)
    s.start(block=True)
    s.buttons["code"].click()
    code = s.code.value
    assert s.code.layout.display != "none"
    assert "nbart.dream('sample:grace_hopper', model='vgg16', weights='none'" in code
    scope = {}
    exec(code, scope)
    assert np.array_equal(np.asarray(scope["result"]), np.asarray(s.result))


def test_a_random_seed_is_recorded_so_a_restored_result_reproduces():
    s = tiny_studio(seed=None)
    assert "every run differs" in s.code_text()
    s.start(block=True)
    seed = s.history[-1].params.seed
    assert isinstance(seed, int)
    s.restore(0)
    assert s.controls["seed"].value == str(seed) and "every run differs" not in s.code_text()


def test_history_restore_brings_back_the_image_and_its_settings():
    s = tiny_studio(steps=2)
    s.start(block=True)
    s.controls["steps"].value = 3
    s.controls["jitter"].value = 5
    s.start(block=True)
    assert [e.params.steps for e in s.history] == [2, 3]
    box, img, button = s.history_strip.slots[0]
    assert box.layout.display != "none" and s.history_strip.slots[2][0].layout.display == "none"
    assert "#1" in button.description and "steps=2" in button.tooltip
    button.click()
    assert s.controls["steps"].value == 2 and s.controls["jitter"].value == 32
    assert s.result is s.history[0].image and "restored #1" in s.status.value


def test_save_writes_a_png_with_its_settings_and_a_gif_and_offers_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = tiny_studio(octaves=1, steps=12, fps=1000)
    s.start(block=True)
    s.save_gif.value = True
    s.buttons["save"].click()
    meta = images.read_params(tmp_path / "dream-001.png")
    # the PNG records what ran (the layers named, not "the defaults"); the controls keep what was asked
    assert meta["task"] == "dream" and meta["params"] == s.history[-1].ran.to_dict()
    assert meta["params"] == s.history[-1].params.replace(layers=meta["params"]["layers"]).to_dict()
    assert meta["steps_done"] == 12 and meta["inputs"] == ["sample:grace_hopper"]
    from PIL import Image

    with Image.open(tmp_path / "dream-001.gif") as gif:
        assert gif.n_frames >= 5
    assert "download='dream-001.png'" in s.download.value and "data:image/png;base64," in s.download.value
    assert "data:image/gif;base64," in s.download.value and "saved dream-001.png" in s.message.value
    assert s.save() == "dream-002.png"  # the next free name


def test_reset_returns_to_the_starting_settings_and_picture():
    s = tiny_studio()
    source = bytes(s.preview.value)
    s.controls["steps"].value = 3
    s.start(block=True)
    s.reset()
    assert s.controls["steps"].value == TINY["steps"] and s.result is None
    assert bytes(s.preview.value) == source and s.buttons["continue"].disabled and len(s.history) == 1


# ----------------------------------------------------------------------------------------------------------------
# image sources


class FakeUpload:
    def __init__(self, value):
        self.value = value


def test_uploads_read_in_both_ipywidgets_formats():
    v7 = {"a.png": {"metadata": {"name": "a.png", "type": "image/png", "size": 3}, "content": b"abc"}}
    v8 = ({"name": "a.png", "type": "image/png", "size": 3, "content": memoryview(b"abc"),
           "last_modified": 0},)
    assert uploaded_files(FakeUpload(v7)) == uploaded_files(FakeUpload(v8)) == [("a.png", b"abc", 3)]


def _upload(picker, name, content, size=None):
    """Put a file in the picker's FileUpload as the browser does: a state message in this version's format."""
    size = len(content) if size is None else size
    if ipywidgets.__version__.startswith("7."):  # metadata, data, and a counter whose change makes the value
        picker.upload.set_state({"metadata": [{"name": name, "type": "image/jpeg", "size": size}],
                                 "data": [memoryview(content)], "_counter": picker.upload._counter + 1})
    else:
        picker.upload.set_state({"value": [{"name": name, "type": "image/jpeg", "size": size,
                                            "content": memoryview(content), "last_modified": 0}]})


def test_an_uploaded_image_is_dreamed_and_named_in_the_code(gradient_image, tmp_path, monkeypatch):
    import io

    monkeypatch.chdir(tmp_path)  # Show code saves the upload beside the notebook (the kernel's folder)
    data = io.BytesIO()
    gradient_image.save(data, format="JPEG")
    s = tiny_studio()
    picker = s.pickers["image"]
    picker.kind.value = "upload"
    _upload(picker, "photo.jpg", data.getvalue())
    assert picker._thumb_widgets[0].layout.display != "none"  # a thumbnail of the upload
    assert "nbart.dream('photo.jpg'" in s.code_text() and "the file you uploaded" in s.code_text()
    assert s.start(block=True) and s.result.size == (64, 53)


def test_a_broken_or_empty_upload_is_explained(on_colab):
    s = tiny_studio()
    picker = s.pickers["image"]
    picker.kind.value = "upload"
    assert not s.start() and "choose a file to upload first" in s.message.value
    _upload(picker, "big.jpg", b"", size=2_000_000)  # what Colab delivers for uploads >= 1 MB
    assert not s.start()
    assert "arrived empty" in s.message.value and "Upload (Colab)" in s.message.value
    _upload(picker, "notes.jpg", b"hello")
    assert s.start() and s.wait(30)
    assert "is not an image file" in s.message.value


def test_an_image_given_in_code_is_used(gradient_image):
    s = DreamStudio(gradient_image, **TINY)
    assert s.pickers["image"].kind.value == "given"
    assert "result = nbart.dream(gradient_image," in s.code_text()  # the name the caller gave it
    assert s.start(block=True) and s.result.size == (64, 53)


def test_the_engine_and_the_cli_never_import_ipywidgets():
    import subprocess

    code = ("import sys, nbart, nbart.cli, nbart.deepdream; nbart.cli.build_parser(); "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'; "
            "assert nbart.DreamStudio.__name__ == 'DreamStudio' and 'ipywidgets' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------------------------------------------
# the style studio: the same machinery, two sources, two layer lists


def test_style_studio_runs_live_in_a_thread_and_its_code_reproduces_the_picture():
    s = StyleStudio(**{**TINY_STYLE, "steps": 12}, fps=1000)
    assert s.pickers["content"].source().items == ("sample:grace_hopper",)
    assert s.pickers["style"].source().items == ("sample:starry_night",)
    frames = Recorder(s.preview)
    assert s.start() and s.wait(120)
    assert s.history[-1].outcome == "completed" and s.result.size == (41, 48)
    assert len({bytes(v) for v in frames.values if jpeg_or_png(v) == "jpeg"}) >= 3
    code = s.code_text()
    assert "nbart.style_transfer('sample:grace_hopper', 'sample:starry_night', model='vgg16'" in code
    scope = {}
    exec(code, scope)
    assert np.array_equal(np.asarray(scope["result"]), np.asarray(s.result))


def test_style_studio_layer_lists_follow_the_model_and_several_styles_blend():
    s = StyleStudio(**TINY_STYLE)
    c = s.controls
    vgg16 = nbart.backbones.get("vgg16")
    assert c["content_layers"].value == vgg16.content_layers and c["style_layers"].value == vgg16.style_layers
    c["sizes"].value = "96"  # inception_v3 takes 75 px and more
    c["model"].value = "inception_v3"
    inception = nbart.backbones.get("inception_v3")
    assert c["style_layers"].options == inception.layers and c["style_layers"].value == inception.style_layers
    assert s.params().style_layers == () and s.params().content_layers == ()
    c["model"].value, c["sizes"].value = "vgg16", "48"
    s.pickers["style"].sample.value = ("starry_night", "the_scream")
    c["style_blend"].value = "1, 3"
    assert "['sample:starry_night', 'sample:the_scream'], model='vgg16'" in s.code_text()
    assert s.start(block=True) and s.history[-1].params.style_blend == (1.0, 3.0)
    c["style_blend"].value = "1, 2, 3"  # one weight too many: the engine's message, in the panel
    assert s.start(block=True) and "style_blend needs one weight per style image (2) (got 3)" in s.message.value


def test_style_studio_continue_goes_on_from_the_picture_on_show(monkeypatch):
    from nbart import styletransfer

    seen = []
    real = styletransfer.style_run
    monkeypatch.setattr(styletransfer, "style_run", lambda *a, **k: seen.append((a, k)) or real(*a, **k))
    s = StyleStudio(**TINY_STYLE)
    s.start(block=True)
    first = s.result
    assert s.continue_run(4, block=True)  # through the engine's styletransfer.continue_run
    args, kwargs = seen[-1]
    assert np.array_equal(np.asarray(kwargs["init_image"]), np.asarray(first))
    assert args[2].steps == 4 and args[2].sizes == (48,)
    assert s.history[-1].continued and s.history[-1].steps_done == 4 and s.result.size == first.size


def test_on_colab_uploads_and_downloads_go_through_colabs_own_dialogs(on_colab, gradient_image, tmp_path,
                                                                     monkeypatch):
    import io

    data = io.BytesIO()
    gradient_image.save(data, format="PNG")
    downloads = []
    on_colab.files = types.SimpleNamespace(upload=lambda: {"big.png": data.getvalue()}, download=downloads.append)
    monkeypatch.chdir(tmp_path)
    s = tiny_studio()
    picker = s.pickers["image"]
    picker.kind.value = "upload"
    assert picker.colab_upload in picker.inputs.children  # offered on Colab only
    picker.colab_upload.click()
    assert "nbart.dream('big.png'" in s.code_text()
    assert s.start() and s.result.size == (64, 53)  # the foreground: done when start returns
    s.save("out.png")
    assert downloads == ["out.png"] and s.download.value == ""


def test_off_colab_there_is_no_colab_upload_button():
    picker = tiny_studio().pickers["image"]
    picker.kind.value = "upload"
    assert picker.colab_upload not in picker.inputs.children and picker.upload in picker.inputs.children


def test_style_studio_starts_quicker_than_the_engine_defaults_unless_told_a_size():
    assert StyleStudio().params().sizes == (256, 384) and StyleStudio().params().steps == 30
    assert "nbart.style_transfer('sample:grace_hopper', 'sample:starry_night', steps=30, sizes=(256, 384))" \
        in StyleStudio().code_text()  # written out, so the code makes the same picture
    assert StyleStudio(max_size=256).params().sizes == () and StyleStudio(steps=5).params().steps == 5


def test_a_studio_warms_its_network_up_in_the_background():
    from nbart import backbones

    backbones.clear_cache()
    studio = nbart.DreamStudio(np.zeros((48, 64, 3), np.uint8), model="vgg16", weights="none", max_size=64,
                               layers=("block2_conv1",), precision="float32", warm_up=True)
    assert studio.warm_up_thread is not None and studio.warm_up_thread.name == "nbart-warm-up"
    studio.warm_up_thread.join(120)
    assert not studio.warm_up_thread.is_alive()
    # built before any Run: a dream's extractor, kernels flipped ahead (DreamPrepared.flip_ahead)
    assert ("vgg16", "none", "float32", ("block2_conv1",), "flip_ahead") in backbones._extractors
    studio.controls["layers"].value = ("block3_conv1",)  # a new choice of layers warms its network up too
    studio.warm_up_thread.join(120)
    assert ("vgg16", "none", "float32", ("block3_conv1",), "flip_ahead") in backbones._extractors
    assert nbart.DreamStudio(warm_up=False).warm_up_thread is None


def test_offline_the_layer_lists_offer_the_layers_of_the_network_that_runs_and_the_model_control_says_so(monkeypatch):
    monkeypatch.setenv("NBART_OFFLINE", "1")  # inception_v3's ImageNet weights can't be had: the VGG16 runs
    s = DreamStudio(None, model="inception_v3", weights="auto")
    vgg = nbart.backbones.get("vgg16")
    layers = s.controls["layers"]
    assert set(vgg.layers) <= set(layers.options) and "mixed0" not in layers.options
    assert layers.value == tuple(vgg.dream_layers)
    note = s._controls.model_note.value
    assert "runs vgg16 here" in note and "inception_v3" in note
    layers.value = ("block4_conv3",)
    assert s.params().layers == ("block4_conv3",)  # accepted: a layer of the network that really runs
    s.controls["weights"].value = "none"  # no fallback: inception_v3 itself runs, with its own layers
    assert "mixed0" in layers.options and s._controls.model_note.value == ""
    s.controls["weights"].value = "auto"
    assert "mixed0" not in layers.options and "runs vgg16 here" in s._controls.model_note.value
    s2 = nbart.StyleStudio(None, None, model="vgg19", weights="auto")
    assert set(s2.controls["style_layers"].options) == set(vgg.layers)
    assert "runs vgg16 here" in s2._controls.model_note.value
