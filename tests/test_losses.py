"""The style losses of issue 21 (nbart.objectives, nbart.stylelosses): Gram, Wasserstein-2, sliced Wasserstein.

Each is 0 at the style and grows with the distance; gradients match finite differences on tiny tensors; the
sliced-Wasserstein directions are seeded; blends are the mixture's statistics; each runs end to end on every
backbone, in float32 and bfloat16, with style blends and preserve_colors."""

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from conftest import TINY_STYLE

import nbart
from nbart import objectives, stylelosses
from nbart.params import ParamError, StyleParams

LOSSES = ("gram", "w2", "sliced_wasserstein")


def _features(seed, shape=(1, 6, 5, 4), dtype=tf.float32):
    # ReLU-like features: non-negative, a non-zero mean, correlated channels
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) @ rng.standard_normal((shape[-1], shape[-1])) + 0.5
    return tf.constant(np.maximum(x, 0.0) + 0.05 * rng.random(shape), dtype)


def _loss(name, features, style):
    """The per-layer loss ``name`` of ``features`` against the style features ``style`` (both (1, H, W, C))."""
    if name == "gram":
        return objectives.style_loss(objectives.gram_matrix(features), objectives.gram_matrix(style))
    if name == "w2":
        target = objectives.w2_target(objectives.feature_mean(style), objectives.gram_matrix(style))
        return objectives.w2_loss(objectives.feature_mean(features), objectives.gram_matrix(features), target)
    directions = objectives.random_projections(int(style.shape[-1]), (0, 1), style.dtype)
    target = objectives.sorted_projections(style, directions, int(features.shape[1] * features.shape[2]))
    return objectives.sliced_wasserstein_loss(features, directions, target)


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_is_zero_at_the_style_and_grows_with_the_distance(name):
    style = _features(0)
    other = _features(1)
    assert abs(float(_loss(name, style, style))) < 1e-5
    # along the way from the style to another texture, the loss grows
    path = [float(_loss(name, style + t * (other - style), style)) for t in (0.1, 0.3, 0.6, 1.0)]
    assert all(b > a > 0 for a, b in zip(path, path[1:])), path
    # relative: another backbone's activation scale leaves it unchanged; zero features give 1
    assert float(_loss(name, 100 * other, 100 * style)) == pytest.approx(path[-1], rel=1e-3)
    assert float(_loss(name, tf.zeros_like(style), style)) == pytest.approx(1.0, abs=0.01)


def test_w2_ignores_the_order_of_locations_and_sliced_wasserstein_too():
    # Both compare distributions of features over the locations: shuffling the locations changes nothing.
    style = _features(2, (1, 8, 8, 4))
    shuffled = tf.reshape(tf.random.shuffle(tf.reshape(style, (64, 4)), seed=1), (1, 8, 8, 4))
    for name in ("w2", "sliced_wasserstein"):
        assert abs(float(_loss(name, shuffled, style))) < 1e-5


def test_w2_sees_a_mean_shift_the_gram_matrix_confuses_with_a_covariance_change():
    # Two distributions with the same second raw moment (Gram) but different mean and covariance: the Gram loss
    # is 0, the Wasserstein-2 loss is not (why the W2 loss matches feature statistics better).
    rng = np.random.default_rng(0)
    a = rng.choice([-1.0, 1.0], size=(1, 16, 16, 1)) + 0.0  # mean 0, E[x^2] = 1
    b = np.ones((1, 16, 16, 1))  # mean 1, E[x^2] = 1
    a, b = tf.constant(a, tf.float32), tf.constant(b, tf.float32)
    assert float(_loss("gram", a, b)) == pytest.approx(0.0, abs=1e-6)
    assert float(_loss("w2", a, b)) > 0.5
    assert float(_loss("sliced_wasserstein", a, b)) > 0.5


def test_newton_schulz_square_root_matches_scipy():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    a = (q * np.logspace(0, -4, 16)) @ q.T  # eigenvalues 1 .. 1e-4: as a ridge-regularized feature covariance
    root, inverse_root = objectives.sqrtm_newton_schulz(tf.constant(a[None], tf.float64))
    np.testing.assert_allclose(root.numpy()[0], scipy.linalg.sqrtm(a).real, atol=1e-6)
    np.testing.assert_allclose(inverse_root.numpy()[0] @ root.numpy()[0], np.eye(16), atol=1e-5)
    assert float(objectives.trace_sqrtm(tf.constant(a[None], tf.float64))[0]) == \
        pytest.approx(np.sqrt(np.logspace(0, -4, 16)).sum(), rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_match_finite_differences(name):
    style = _features(3, (1, 3, 4, 3), tf.float64)
    x = _features(4, (1, 3, 4, 3), tf.float64)
    theoretical, numerical = tf.test.compute_gradient(lambda f: _loss(name, f, style), [x], delta=1e-5)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-4, atol=1e-7)


def test_sliced_wasserstein_directions_are_seeded():
    a = objectives.random_projections(8, (5, 2)).numpy()
    assert np.array_equal(a, objectives.random_projections(8, (5, 2)).numpy())
    assert not np.allclose(a, objectives.random_projections(8, (6, 2)).numpy())
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0, rtol=1e-6)


def test_blends_are_the_mixtures_statistics():
    one, two = _features(5, (1, 4, 4, 3)), _features(6, (1, 4, 4, 3))
    both = tf.concat([one, two], axis=1)  # the two textures side by side: the 1:1 mixture
    # w2 (and gram): the blended moments are the mixture's moments
    summaries = [stylelosses.summaries("w2", [f]) for f in (one, two)]
    blended = stylelosses.blend_targets("w2", summaries, (1.0, 1.0), [0], 0, 0)[0]
    mixture = objectives.w2_target(objectives.feature_mean(both), objectives.gram_matrix(both))
    for got, expected in zip(blended, mixture):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    # sliced Wasserstein: the blend's sorted values are the mixture's (32 values: 16 from each)
    summaries = [stylelosses.summaries("sliced_wasserstein", [f]) for f in (one, two)]
    directions, target = stylelosses.blend_targets("sliced_wasserstein", summaries, (1.0, 1.0), [32], 7, 0)[0]
    np.testing.assert_allclose(target.numpy(), objectives.sorted_projections(both, directions).numpy(), rtol=1e-6)
    # weights 3:1 take 24 values of one and 8 of the other
    _, weighted = stylelosses.blend_targets("sliced_wasserstein", summaries, (3.0, 1.0), [32], 7, 0)[0]
    pooled = tf.concat([objectives.sorted_projections(one, directions, 24),
                        objectives.sorted_projections(two, directions, 8)], axis=0)
    np.testing.assert_allclose(weighted.numpy(), tf.sort(pooled, axis=0).numpy(), rtol=1e-6)


def test_style_loss_is_a_checked_parameter():
    assert StyleParams().style_loss == "gram"
    with pytest.raises(ParamError, match="style_loss must be one of gram, w2, sliced_wasserstein"):
        StyleParams(style_loss="histogram")


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_runs_with_a_blend_and_preserved_colours(name, gradient_image):
    # the 64-256-channel layers only: a 512-channel covariance's square root costs seconds on a loaded CI machine
    run = nbart.style_run(gradient_image, [gradient_image.rotate(90), "sample:starry_night"], style_loss=name,
                          style_blend=(2.0, 1.0), preserve_colors=True,
                          style_layers=("block1_conv1", "block2_conv1", "block3_conv1"), **TINY_STYLE)
    events = list(run)
    assert run.outcome.value == "completed", run.notices
    assert len(events) == TINY_STYLE["steps"] and all(np.isfinite(e.loss) for e in events)
    assert events[-1].metrics["style"] < events[0].metrics["style"] * 1.5  # optimizing, not diverging
    assert run.metadata()["params"]["style_loss"] == name


@pytest.mark.parametrize("name", ["w2", "sliced_wasserstein"])
@pytest.mark.parametrize("model,precision", [("vgg16", "bfloat16"), ("vgg19", "float32"),
                                             ("inception_v3", "float32")])
def test_each_loss_runs_on_each_backbone_and_precision(name, model, precision, gradient_image):
    size = 96 if model == "inception_v3" else 48  # InceptionV3 needs a 75 px short side
    # one Adam step: one evaluation of the loss and its gradient through every default style layer
    run = nbart.style_run(gradient_image, "sample:starry_night",
                          **{**TINY_STYLE, "model": model, "precision": precision, "sizes": (size,), "steps": 1,
                             "optimizer": "adam", "style_loss": name})
    events = list(run)
    assert run.outcome.value == "completed", run.notices
    assert all(np.isfinite(e.loss) for e in events)


def test_a_seeded_sliced_wasserstein_run_is_deterministic(gradient_image):
    kw = dict(TINY_STYLE, style_loss="sliced_wasserstein", steps=2)
    first = nbart.style_transfer(gradient_image, "sample:starry_night", **kw)
    again = nbart.style_transfer(gradient_image, "sample:starry_night", **kw)
    other = nbart.style_transfer(gradient_image, "sample:starry_night", **{**kw, "seed": 1})
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


@pytest.mark.parametrize("name", ["w2", "sliced_wasserstein"])
def test_warm_up_traces_each_loss(name):
    # what a studio does when it opens: build and trace the loss's step on a tiny image
    nbart.warm_up("style", model="vgg16", weights="none", precision="float32", style_loss=name,
                  style_layers=("block1_conv1", "block2_conv1"))
