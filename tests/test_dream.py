import threading

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

import nbart
from nbart import backbones, deepdream
from nbart.deepdream import dream_run, octave_sizes
from nbart.params import ParamError


def test_octave_sizes_run_coarse_to_full_and_skip_too_small_octaves():
    assert octave_sizes(300, 400, 3, 2.0) == [(75, 100), (150, 200), (300, 400)]
    assert octave_sizes(300, 400, 4, 2.0, min_size=75) == [(75, 100), (150, 200), (300, 400)]
    assert octave_sizes(80, 80, 5, 1.5, min_size=75) == [(80, 80)]
    assert octave_sizes(100, 100, 1, 1.4) == [(100, 100)]


def test_tiles_cover_the_image_in_near_equal_spans():
    assert deepdream.tiles(100, 512) == [(0, 100)]
    assert deepdream.tiles(1100, 512) == [(0, 367), (367, 733), (733, 1100)]
    for length, tile in [(513, 512), (2048, 512), (1000, 300)]:
        spans = deepdream.tiles(length, tile)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(tile / 2 <= b - a <= tile for a, b in spans)


def _gradient_fn(layers=(("block1_conv2", None),)):
    bb = backbones.get("vgg16")
    ext = backbones.extractor(bb, "none", "float32", tuple(dict.fromkeys(n for n, _ in layers)))
    return deepdream.traced_functions(ext, layers)[1]


def test_tiled_and_untiled_gradients_agree():
    import tensorflow as tf

    fn = _gradient_fn()
    coefficients = tf.constant([1.0])
    image = tf.constant(np.random.default_rng(0).random((96, 128, 3)), tf.float32)
    # An image that fits one tile: the tiled path is exactly the direct gradient.
    means, gradient = deepdream.tiled_gradient(fn, image, coefficients, 512, (0, 0))
    direct_means, direct = fn(image, coefficients)
    np.testing.assert_allclose(gradient.numpy(), direct.numpy())
    np.testing.assert_allclose(means, direct_means.numpy())
    # Split into 2x2 tiles (seams at row 48 and column 64): the mean activation is the same, and so is the
    # gradient except within 4 px of a seam, where a tile's zero padding changes what two 3x3 convs see.
    tiled_means, tiled = deepdream.tiled_gradient(fn, image, coefficients, 64, (0, 0))
    inner = np.ones((96, 128), bool)
    inner[44:52, :] = inner[:, 60:68] = False
    np.testing.assert_allclose(tiled.numpy()[inner], direct.numpy()[inner], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(tiled_means, direct_means.numpy(), rtol=0.02)


def test_tiled_dream_keeps_the_shape_and_stays_finite():
    run = dream_run(Image.new("RGB", (300, 140), (90, 120, 200)), **{**TINY, "max_size": 300, "tile_size": 128})
    events = list(run)
    assert events[-1].image().shape == (140, 300, 3)
    assert all(np.isfinite(e.loss) for e in events)


def test_events_count_steps_across_octaves_and_make_images_only_on_demand(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "max_size": 96, "octaves": 3, "octave_scale": 1.2})
    events = list(run)
    assert [e.step for e in events] == list(range(1, run.total + 1)) and run.total == 6
    assert [e.stage for e in events] == [0, 0, 1, 1, 2, 2]
    assert [e.done for e in events] == [False] * 5 + [True]
    assert all(e._pixels is None for e in events)  # nothing rendered until asked
    first = events[0].image()
    assert first.shape == (80, 96, 3) and first.dtype == np.uint8  # previews come at the output size
    assert run.completed and run.image().size == (96, 80)


def test_the_dream_raises_the_target_activation(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "steps": 6})
    losses = [e.loss for e in run]
    assert losses[-1] < losses[0]  # loss = -activation falls


def test_stop_mid_run_keeps_the_last_image(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "steps": 50})
    for event in run:
        if event.step == 3:
            run.stop()
    assert run.latest.step == 3 and run.stopped and run.finished and not run.completed
    assert run.image().size == run.start_image.size == (64, 53)


def test_stop_from_another_thread(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "steps": 200})
    first = threading.Event()
    seen = []

    def consume():
        for event in run:
            seen.append(event.step)
            first.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert first.wait(60)
    run.stop()
    worker.join(30)
    assert not worker.is_alive() and 1 <= len(seen) < 400


def test_stop_inside_a_tiled_step_returns_before_the_step_ends(monkeypatch):
    run = dream_run(Image.new("RGB", (300, 300), (90, 120, 200)), **{**TINY, "max_size": 300, "tile_size": 128})
    calls = []
    fn = run.prepared.gradient

    def wrapped(*args):
        calls.append(1)
        if len(calls) == 2:
            run.stop()
        return fn(*args)

    run.prepared.gradient = wrapped
    assert list(run) == []  # stopped during the first (9-tile) step: no step completed
    assert len(calls) == 2 and run.image().size == (300, 300)


def test_seed_makes_runs_reproducible(gradient_image):
    a = nbart.dream(gradient_image, **TINY)
    b = nbart.dream(gradient_image, **TINY)
    c = nbart.dream(gradient_image, **{**TINY, "seed": 1})
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_channel_selection_and_its_bounds(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "layers": ("block1_conv1:3",), "steps": 3})
    losses = [e.loss for e in run]
    assert losses[-1] < losses[0]
    with pytest.raises(ParamError, match=r"layer block1_conv1 has channels 0..63 \(got 99\)"):
        list(dream_run(gradient_image, **{**TINY, "layers": ("block1_conv1:99",)}))


def _mean_activation(layer, image):
    ext = backbones.extractor(backbones.get("vgg16"), "none", "float32", (layer,))
    return float(np.mean(ext(np.asarray(image, np.float32)[None] / 255.0)[0]))


def test_each_layer_contributes_its_relative_gain(gradient_image):
    """A low layer with small activations and a high layer with large ones both grow when dreamed together."""
    layers = ("block1_conv2", "block5_conv3")
    before = [_mean_activation(name, gradient_image) for name in layers]
    out = nbart.dream(gradient_image, **{**TINY, "layers": layers, "octaves": 1, "steps": 10, "jitter": 0})
    after = [_mean_activation(name, out) for name in layers]
    gains = [a / b for a, b in zip(after, before)]
    assert min(gains) > 1.05, gains


def test_non_finite_gradient_stops_and_keeps_the_last_finite_image(gradient_image, monkeypatch):
    import tensorflow as tf

    real = deepdream.tiled_gradient
    calls = []

    def poisoned(fn, image, *args, **kwargs):
        calls.append(1)
        means, gradient = real(fn, image, *args, **kwargs)
        return (means, gradient * np.nan) if len(calls) == 3 else (means, gradient)

    monkeypatch.setattr(deepdream, "tiled_gradient", poisoned)
    run = dream_run(gradient_image, **{**TINY, "steps": 5})
    events = list(run)
    assert [e.step for e in events] == [1, 2]
    assert "non-finite" in run.notices[-1]
    assert np.isfinite(np.asarray(run.image(), np.float32)).all()
    del tf


def test_fallback_replaces_layers_the_offline_backbone_lacks(gradient_image):
    with pytest.warns(UserWarning) as record:
        out = nbart.dream(gradient_image, model="inception_v3", layers=("mixed3",), octaves=1, steps=1,
                          max_size=96, precision="float32")
    messages = [str(w.message) for w in record]
    assert any("offline VGG16" in m for m in messages)
    assert any("mixed3 don't exist in vgg16" in m for m in messages)
    assert out.size == gradient_image.size


def test_tiny_images_are_upscaled_to_the_backbone_minimum_with_a_notice():
    run = dream_run(Image.new("RGB", (16, 16), (200, 10, 10)), **{**TINY, "model": "inception_v3", "max_size": 128})
    assert run.start_image.size == (75, 75)
    assert any("upscaled from 16x16 to 75x75" in n for n in run.notices)
