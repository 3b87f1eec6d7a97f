import threading

import numpy as np
import pytest
from conftest import TINY_STYLE
from PIL import Image

import nbart
from nbart import cli, executor, images, styletransfer
from nbart.params import ParamError, StyleParams
from nbart.styletransfer import style_run


@pytest.fixture
def content(gradient_image):
    return gradient_image


@pytest.fixture
def style():
    rng = np.random.default_rng(3)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[::4] = (250, 200, 30)
    stripes[1::4] = (20, 60, 200)
    return Image.fromarray(np.clip(stripes + rng.integers(0, 30, stripes.shape), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_run_streams_events_and_lowers_the_loss(content, style, optimizer):
    run = style_run(content, style, **{**TINY_STYLE, "sizes": (40, 64), "steps": 4, "optimizer": optimizer})
    events = list(run)
    assert [e.step for e in events] == list(range(1, 9)) and run.total == 8
    assert [e.stage for e in events] == [0] * 4 + [1] * 4
    assert events[-1].done and run.completed
    assert events[0].image().shape == (53, 64, 3)  # always at the output size
    assert set(events[0].metrics) == {"content", "style", "tv"}
    assert events[3].loss < events[0].loss


def test_output_size_follows_sizes_or_max_size(content, style):
    assert style_run(content, style, **{**TINY_STYLE, "sizes": (40, 80)}).start_image.size == (80, 67)
    p = {k: v for k, v in TINY_STYLE.items() if k != "sizes"}
    assert style_run(content, style, **p, max_size=64).start_image.size == (64, 53)
    # A content smaller than max_size is not upscaled
    assert style_run(content, style, **p, max_size=512).start_image.size == (96, 80)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_stop_mid_run_keeps_the_last_image_and_ends_the_optimizer(content, style, optimizer):
    run = style_run(content, style, **{**TINY_STYLE, "steps": 50, "optimizer": optimizer})
    for event in run:
        if event.step == 3:
            run.stop()
    assert run.latest.step == 3 and run.outcome == "stopped"
    assert run.image().size == (48, 40)
    assert not [t for t in threading.enumerate() if t.name == "nbart-lbfgs"]  # L-BFGS's helper thread is gone


def test_closing_a_run_mid_lbfgs_ends_its_thread(content, style):
    run = style_run(content, style, **{**TINY_STYLE, "steps": 50})
    next(run)
    next(run)
    run.close()
    assert not [t for t in threading.enumerate() if t.name == "nbart-lbfgs"]
    assert run.image().size == (48, 40)


def test_seed_makes_noise_init_reproducible(content, style):
    kw = {**TINY_STYLE, "init": "noise"}
    a, b = nbart.style_transfer(content, style, **kw), nbart.style_transfer(content, style, **kw)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_style_and_content_start_differently(content, style):
    first = {}
    for init in ("content", "style", "noise"):
        run = style_run(content, style, **{**TINY_STYLE, "init": init, "steps": 1})
        first[init] = next(run).image().astype(float)
    assert np.abs(first["content"] - np.asarray(content.resize((48, 40)), float)).mean() < 20
    assert np.abs(first["style"] - first["content"]).mean() > 20
    assert np.abs(first["noise"] - first["content"]).mean() > 20


def test_preserve_colors_keeps_the_contents_chroma(content, style):
    out = nbart.style_transfer(content, style, **{**TINY_STYLE, "preserve_colors": True, "steps": 5})
    ref = content.resize(out.size, Image.Resampling.LANCZOS)
    chroma = lambda im: np.asarray(im.convert("YCbCr"), float)[..., 1:]  # noqa: E731
    assert np.abs(chroma(out) - chroma(ref)).mean() < 2.0  # Pillow's own YCbCr; rounding and clipping only
    plain = nbart.style_transfer(content, style, **{**TINY_STYLE, "steps": 5})
    assert np.abs(chroma(plain) - chroma(ref)).mean() > 2 * np.abs(chroma(out) - chroma(ref)).mean()


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(0).random((5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(styletransfer.ycbcr_to_rgb(styletransfer.rgb_to_ycbcr(rgb)), rgb, atol=1e-5)


def test_several_styles_blend(content, style):
    run = style_run(content, [style, "sample:the_scream"], **{**TINY_STYLE, "style_blend": (3, 1)})
    assert len(list(run)) == 3
    with pytest.raises(ParamError, match=r"style_blend needs one weight per style image \(2\) \(got 3\)"):
        style_run(content, [style, style], **{**TINY_STYLE, "style_blend": (1, 1, 1)})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sizes=(512, 256)), "sizes must increase from coarse to fine (got 512, 256)"),
        (dict(sizes=(16, 64)), "each of sizes must be >= 32 (got 16)"),
        (dict(model="inception_v3", sizes=(50, 100)), "sizes must be >= 75 px for inception_v3 (got 50)"),
        (dict(content_weight=0.0, style_weight=0.0), "content_weight and style_weight can't both be 0"),
        (dict(style_layers=("block5_conv4",)), "unknown layer 'block5_conv4' for vgg16"),
        (dict(content_layers=("block5_conv2:3",)), "channel selection is not allowed here"),
        (dict(style_layer_weights=(1.0,)), "style_layer_weights needs one weight per style layer (5) (got 1)"),
        (dict(optimizer="sgd"), "optimizer must be one of lbfgs, adam (got 'sgd')"),
        (dict(init="random"), "init must be one of content, noise, style, fast (got 'random')"),
        (dict(style_scale=0.0), "style_scale must be >= 0.05 (got 0)"),
        (dict(tv_weight=-1.0), "tv_weight must be >= 0 (got -1)"),
    ],
)
def test_bad_parameters_are_rejected_before_any_work(kwargs, message):
    with pytest.raises(ParamError) as info:
        StyleParams(**{"model": "vgg16", **kwargs})
    assert message in str(info.value)


def test_no_style_image_is_an_error(content):
    with pytest.raises(ParamError, match="give at least one style image"):
        style_run(content, [], **TINY_STYLE)


def test_cli_style_writes_the_result(tmp_path, content, style, capsys):
    c, s, out = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    content.save(c)
    style.save(s)
    argv = ["style", str(c), str(s), "sample:starry_night", "-o", str(out), "--style-blend=2,1", "--sizes=40,48",
            "--steps=2", "--model=vgg16", "--weights=none", "--preserve-colors", "--optimizer=adam", "--seed=1",
            "--precision=float32"]
    assert cli.main(argv) == 0
    meta = images.read_params(out)
    assert meta["task"] == "style" and meta["params"]["preserve_colors"] is True
    assert meta["inputs"] == [str(c), str(s), "sample:starry_night"]
    assert Image.open(out).size == (48, 40)
    assert cli.main(["style", str(c), "-o", str(out)]) == 2
    assert "the following arguments are required: style" in capsys.readouterr().err


def test_init_image_continues_from_an_earlier_result(content, style):
    grey = Image.new("RGB", content.size, (128, 128, 128))
    params = {**TINY_STYLE, "optimizer": "adam", "learning_rate": 0.001, "steps": 1}
    from_grey = np.asarray(next(iter(style_run(content, style, init_image=grey, **params))).image(), np.float32)
    from_content = np.asarray(next(iter(style_run(content, style, **params))).image(), np.float32)
    grey_small = np.asarray(grey.resize(from_grey.shape[1::-1]), np.float32)
    # one tiny Adam step moves each pixel by at most ~lr*255: the run started from the grey image, not the content
    assert np.abs(from_grey - grey_small).max() < 3
    assert np.abs(from_content - grey_small).max() > 50


def test_style_gradients_run_in_a_fixed_order_with_the_same_result(content, style):
    import tensorflow as tf

    prepared = styletransfer.prepare(StyleParams(model="vgg16", weights="none", precision="float32",
                                                 content_layers=("block2_conv1",),
                                                 style_layers=("block1_conv1", "block2_conv2")))
    features, loss_and_gradient = prepared.features, prepared.loss_and_gradient
    image = tf.constant(np.asarray(content, np.float32) / 255)
    content_targets, _ = features(image)
    _, grams = features(tf.constant(np.asarray(style.resize((96, 80)), np.float32) / 255))
    args = (image, content_targets, grams, tf.constant([1.0, 10.0, 1.0]), tf.constant([0.5, 0.5]))
    fixed = [t.numpy() for t in loss_and_gradient(*args)]
    assert loss_and_gradient.fixed_order  # this graph ran on the single-threaded executor: it was not refused
    default = [t.numpy() for t in loss_and_gradient.function(*args)]
    for a, b in zip(fixed, default):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert np.abs(fixed[2]).sum() > 0


def test_a_graph_the_single_threaded_executor_refuses_runs_on_the_default_one():
    import tensorflow as tf
    from tensorflow.python.eager import context

    executors: list = []

    def function(x):
        executors.append(context.context().function_call_options.executor_type or "default")
        if executors[-1] == "SINGLE_THREADED_EXECUTOR" and x == "refused":
            raise tf.errors.UnimplementedError(None, None, "Single-threaded executor does not support ...")
        return x

    call = executor.SingleThreaded(function)
    call.fixed_order = True  # as on a CPU
    assert call("fine") == "fine" and executors == ["SINGLE_THREADED_EXECUTOR"]
    assert call("refused") == "refused" and executors[1:] == ["SINGLE_THREADED_EXECUTOR", "default"]
    assert call("fine") == "fine" and executors[3:] == ["default"] and not call.fixed_order  # from then on


def test_a_network_without_the_lean_executor_gives_the_same_run(content, style, monkeypatch):
    # the Keras model's path takes the Gram matrices beside the network (gram_of), the lean one inside it (junctions)
    from nbart import backbones
    from nbart import lean as lean_module

    def final_loss():
        import keras

        backbones.clear_cache()
        keras.utils.set_random_seed(0)  # the same random weights for both networks
        run = style_run(content, style, **TINY_STYLE)
        return [e.loss for e in run][-1], run.notices

    lean, _ = final_loss()

    def unreadable(model):  # a network the lean executor can't read: the extractor falls back to the Keras model
        raise ValueError("not a Keras 3 functional model")

    monkeypatch.setattr(lean_module, "_consumers", unreadable)
    try:
        plain, notices = final_loss()
    finally:  # the fallen-back extractor must not serve later tests
        backbones.clear_cache()
    assert [n for n in notices if n.startswith("lean executor off for vgg16")]  # the run says so (issue 17)
    assert np.isfinite(lean) and plain == pytest.approx(lean, rel=1e-3)
