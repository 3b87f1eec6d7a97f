"""The inside view (nbart.inside, Run.inside): the reported terms add up to the loss, the gradient map and the
activation maps match ones computed separately, and with the view off a run traces and runs exactly what it did
before (counted: traced functions, their traces and their calls, not seconds)."""

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE

from nbart import deepdream, extractors, objectives, styletransfer
from nbart.errors import ParamError
from nbart.images import load_image, to_float
from nbart.quiet import tensorflow

tf = tensorflow()

RNG = np.random.default_rng(7)
CONTENT = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)  # the stage size of sizes=(48,): nothing is resized
STYLE = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)
START = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)


def _magnitude(gradient):
    return np.sqrt(np.sum(np.square(np.asarray(gradient, np.float64)), axis=-1))


class Counted:
    """A traced function wrapped to count its calls (each call is one forward and backward pass)."""

    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, *args):
        self.calls += 1
        return self.function(*args)


def _style_run(inside, **kw):
    run = styletransfer.style_run(CONTENT, STYLE, init_image=START, **{**TINY_STYLE, **kw})
    counts = {"loss": Counted(run.prepared.loss_and_gradient), "features": Counted(run.prepared.features)}
    run.prepared.loss_and_gradient, run.prepared.features = counts["loss"], counts["features"]
    variant = run.prepared.inside_step
    counts["inside"] = []

    def inside_step(request):
        counts["inside"].append(Counted(variant(request)))
        return counts["inside"][-1]

    run.prepared.inside_step = inside_step
    if inside:
        run.inside(**inside)
    events = list(run)
    return run, events, counts


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_style_terms_add_up_to_the_loss(optimizer):
    run, events, _ = _style_run({"layer": "block2_conv1"}, optimizer=optimizer)
    assert len(events) == 3
    for event in events:
        inside = event.inside
        assert set(inside.terms) == {"content", "style", "tv"}
        assert sum(inside.terms.values()) == pytest.approx(event.loss, rel=1e-5)
        assert sum(inside.style_layers.values()) == pytest.approx(inside.terms["style"], rel=1e-5)
        assert list(inside.style_layers) == list(run.prepared.style_layers)
        assert sum(inside.content_layers.values()) == pytest.approx(inside.terms["content"], rel=1e-5, abs=1e-12)
        # the unweighted parts the event always had are the terms over their weights
        p = run.params
        assert inside.terms["tv"] == pytest.approx(p.tv_weight * event.metrics["tv"], rel=1e-6)
        assert inside.terms["style"] == pytest.approx(p.style_weight * event.metrics["style"], rel=1e-6)


@pytest.mark.parametrize("style_loss", ["w2", "sliced_wasserstein"])
def test_the_inside_view_of_the_other_style_losses_adds_up_and_has_no_gram_pair(style_loss):
    """w2 and sliced_wasserstein runs go through the same terms; their statistics aren't Gram matrices, so the
    Gram pair is left out (the studio then draws none) rather than shown wrong."""
    try:
        for layer in ("block2_conv1", "block5_conv2"):  # a layer of its own, then the content layer
            run, events, counts = _style_run({"layer": layer}, style_loss=style_loss, optimizer="adam")
            assert events and counts["inside"]
            for event in events:
                inside = event.inside
                assert sum(inside.terms.values()) == pytest.approx(event.loss, rel=1e-5)
                assert sum(inside.style_layers.values()) == pytest.approx(inside.terms["style"], rel=1e-5)
                assert inside.grams is None and inside.activation_maps()[0].shape[0] > 0
    finally:  # the content layer's view was traced on the run's own extractor: later tests count its functions
        extractors.clear_cache()


def test_style_gradient_and_maps_match_a_separate_computation():
    run, events, _ = _style_run({"layer": "block2_conv1", "gram_layer": "block3_conv1"}, optimizer="adam")
    p, prepared = run.params, run.prepared
    ext = prepared.extractor
    n = len(prepared.content_layers)
    x = tf.constant(to_float(load_image(START)))  # Adam's first evaluation is at the start image
    content = ext(tf.constant(to_float(load_image(CONTENT)))[None])[:n]
    style = [objectives.gram_matrix(f) for f in ext(tf.constant(to_float(load_image(STYLE)))[None])[n:]]
    with tf.GradientTape() as tape:  # the paper's loss, plainly: no Gram junction, no traced function
        tape.watch(x)
        features = ext(x[None])
        c = tf.add_n([objectives.content_loss(f, t) for f, t in zip(features[:n], content)]) / n
        s = tf.add_n([float(w) * objectives.style_loss(objectives.gram_matrix(f), t)
                      for f, t, w in zip(features[n:], style, prepared.layer_weights)])
        loss = p.content_weight * c + p.style_weight * s + p.tv_weight * objectives.total_variation(x)
    expected = _magnitude(tape.gradient(loss, x))
    first = events[0].inside
    assert float(loss) == pytest.approx(events[0].loss, rel=1e-4)
    got = first.gradient_map(max_size=1000)
    assert got.shape == expected.shape == (40, 48)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * expected.max())
    small = first.gradient_map(max_size=24)  # at a preview size: the area mean of the full map
    assert small.shape == (20, 24)
    np.testing.assert_allclose(small, expected.reshape(20, 2, 24, 2).mean(axis=(1, 3)), rtol=1e-3,
                               atol=1e-4 * expected.max())
    # the layer's most active channels, as the network sees the picture (block2_conv1: half size, under MAP_SIDE)
    from nbart import backbones
    act = backbones.extractor(prepared.backbone, "none", "float32", ("block2_conv1",))(x[None])[0][0].numpy()
    maps, channels, means = first.activation_maps()
    order = np.argsort(-act.mean(axis=(0, 1)), kind="stable")[:8]
    assert sorted(channels.tolist()) == sorted(order.tolist()) and maps.shape == (8, 20, 24)
    np.testing.assert_allclose(maps, np.moveaxis(act[..., channels], -1, 0), rtol=1e-4, atol=1e-5 * act.max())
    assert np.all(np.diff(means) <= 0)
    # the Gram pair: the picture's and the style's Gram of block3_conv1 on the style's strongest channels
    picture, target, strongest = first.gram_pair(channels=6)
    g = prepared.style_layers.index("block3_conv1")
    expected_picture = objectives.gram_matrix(features[n + g]).numpy()[0]
    style_gram = style[g].numpy()[0]
    assert strongest.tolist() == np.argsort(-np.diag(style_gram), kind="stable")[:6].tolist()
    np.testing.assert_allclose(target, style_gram[np.ix_(strongest, strongest)], rtol=1e-5)
    np.testing.assert_allclose(picture, expected_picture[np.ix_(strongest, strongest)], rtol=1e-3,
                               atol=1e-5 * np.abs(expected_picture).max())


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_style_inside_off_traces_and_runs_the_same_steps(optimizer):
    """Off: the plain traced step runs once per evaluation, no variant is built or traced. On: the variant runs
    instead of it, as many times (one forward pass per evaluation either way), and the picture is the same."""
    run, off_events, off = _style_run(None, optimizer=optimizer)
    ext = run.prepared.extractor
    assert off["inside"] == [] and all(e.inside is None for e in off_events)
    assert not [k for k in ext.functions if "inside" in str(k[0])]
    plain = run.prepared.loss_and_gradient.function
    assert plain.function.experimental_get_tracing_count() == 1  # traced once whatever ran before
    assert off["features"].calls == 2  # the content's and the style's targets, once per stage
    if optimizer == "adam":
        assert off["loss"].calls == 3
    on_run, on_events, on = _style_run({"layer": "block1_conv2"}, optimizer=optimizer)
    assert on["loss"].calls == 0 and on["features"].calls == off["features"].calls
    assert sum(c.calls for c in on["inside"]) == off["loss"].calls
    assert plain.function.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(on_run.image(), run.image(), atol=1)  # uint8: the view doesn't change the picture
    assert [e.loss for e in on_events] == pytest.approx([e.loss for e in off_events], rel=1e-5)


def test_style_inside_can_be_switched_on_and_off_during_a_run():
    run = styletransfer.style_run(CONTENT, STYLE, **{**TINY_STYLE, "steps": 4, "optimizer": "adam"})
    seen = []
    for event in run:
        seen.append(event.inside is not None)
        if event.step == 1:
            run.inside()
        if event.step == 2:
            run.inside(False)
    assert seen == [False, True, False, False]


def test_dream_terms_gradient_and_maps():
    kw = {**TINY, "octaves": 1, "steps": 2, "jitter": 0}
    image = to_float(load_image(START))
    run = deepdream.dream_run(START, **kw)
    prepared = run.prepared
    counted = Counted(prepared.gradient)
    prepared.gradient = counted
    run.inside(layer="block2_conv2")
    events = list(run)
    assert counted.calls == 0 and len(events) == 2
    first = events[0].inside
    names = [name for name, _ in prepared.specs]
    assert list(first.terms) == names == list(first.gains)
    for event in events:
        assert sum(event.inside.terms.values()) == pytest.approx(event.loss, rel=1e-5)
    weights = np.asarray(prepared.layer_weights, np.float32)
    assert first.terms[names[0]] == pytest.approx(-weights[0] * first.gains[names[0]], rel=1e-6)
    # the gradient of the step's objective at the start image, computed plainly
    x = tf.constant(image)
    means = prepared.means(x).numpy()
    coefficients = tf.constant(weights / (np.abs(means) + 1e-3))
    ext = prepared.extractor
    with tf.GradientTape() as tape:
        tape.watch(x)
        acts = ext(x[None])
        objective = tf.reduce_sum(coefficients * tf.stack([tf.reduce_mean(a) for a in acts]))
    expected = _magnitude(tape.gradient(objective, x))
    got = first.gradient_map(max_size=1000)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * expected.max())
    np.testing.assert_allclose([first.gains[n] for n in names], means, rtol=1e-5)
    from nbart import backbones
    act = backbones.extractor(prepared.backbone, "none", "float32", ("block2_conv2",))(x[None])[0][0].numpy()
    maps, channels, _ = first.activation_maps()
    assert set(channels.tolist()) == set(np.argsort(-act.mean(axis=(0, 1)), kind="stable")[:8].tolist())
    np.testing.assert_allclose(maps, np.moveaxis(act[..., channels], -1, 0), rtol=1e-4, atol=1e-5 * act.max())
    with pytest.raises(ValueError, match="style transfer only"):
        first.gram_pair()


def test_dream_inside_off_runs_the_plain_step():
    run = deepdream.dream_run(START, **{**TINY, "octaves": 1, "steps": 3})
    counted = Counted(run.prepared.gradient)
    run.prepared.gradient = counted
    events = list(run)
    assert counted.calls == 3 and all(e.inside is None for e in events)
    assert not [k for k in run.prepared.extractor.functions if "inside" in str(k[0])]


def test_tiled_dream_reports_terms_and_gradient_without_maps():
    big = (RNG.random((136, 160, 3)) * 255).astype(np.uint8)
    run = deepdream.dream_run(big, **{**TINY, "octaves": 1, "steps": 1, "max_size": 160, "tile_size": 128})
    run.inside(layer="block4_conv3")
    (event,) = list(run)
    assert sum(event.inside.terms.values()) == pytest.approx(event.loss, rel=1e-5)
    assert event.inside.gradient_map(max_size=80).shape == (68, 80)
    with pytest.raises(ValueError, match="tiled dream"):
        event.inside.activation_maps()


def test_bad_requests_say_what_is_allowed():
    style = styletransfer.style_run(CONTENT, STYLE, **TINY_STYLE)
    with pytest.raises(ParamError, match="unknown layer 'block9_conv1' for vgg16; choose from"):
        style.inside(layer="block9_conv1")
    with pytest.raises(ParamError, match="gram_layer must be one of the run's style layers block1_conv1"):
        style.inside(gram_layer="block4_conv2")
    request = style.inside()
    assert request.layer == "block5_conv2" and request.gram_layer == "block3_conv1"  # the defaults
    dream = deepdream.dream_run(START, **TINY)
    with pytest.raises(ParamError, match="gram_layer is for style transfer only"):
        dream.inside(gram_layer="block1_conv1")
    assert dream.inside().layer == "block4_conv3"
