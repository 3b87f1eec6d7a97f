"""Dreams' Laplacian-pyramid gradient normalization (nbart.pyramid, ``normalize="laplacian"``; issue 21 item 3)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY

import nbart
from nbart.params import DreamParams, ParamError
from nbart.pyramid import laplacian_normalize


def _low_share(g):
    """The share of an image's energy in its coarse structure (an 8x8 block mean)."""
    g = np.asarray(g)
    h, w = g.shape[0] // 8 * 8, g.shape[1] // 8 * 8
    blocks = g[:h, :w].reshape(h // 8, 8, w // 8, 8, 3).mean(axis=(1, 3))
    return float(np.mean(blocks ** 2) / np.mean(g[:h, :w] ** 2))


def test_laplacian_normalization_lifts_the_coarse_levels_of_a_noisy_gradient():
    # White noise has little energy at coarse scales; each pyramid level normalized on its own gives them as much
    # as the fine ones: the coarse share rises from ~1/64 to several times that.
    noise = tf.random.stateless_normal((64, 96, 3), seed=(0, 1))
    out = laplacian_normalize(noise)
    assert out.shape == noise.shape
    assert float(tf.math.reduce_std(out)) == pytest.approx(1.0, rel=1e-3)  # step_size keeps its meaning
    assert _low_share(out) > 4 * _low_share(noise)


def test_a_smooth_gradient_keeps_its_shape():
    # A gradient that is one smooth ramp lives in the coarse levels: normalizing leaves it a ramp (correlated).
    y, x = np.mgrid[0:40, 0:56].astype(np.float32)
    ramp = np.repeat((x / 55.0 - 0.5)[..., None], 3, axis=-1)
    out = laplacian_normalize(tf.constant(ramp)).numpy()
    assert np.corrcoef(out.ravel(), ramp.ravel())[0, 1] > 0.9


def test_small_images_use_fewer_levels():
    out = laplacian_normalize(tf.random.stateless_normal((3, 5, 3), seed=(2, 3)))
    assert out.shape == (3, 5, 3) and bool(tf.reduce_all(tf.math.is_finite(out)))


def test_normalize_is_a_checked_parameter():
    assert DreamParams().normalize == "std"
    with pytest.raises(ParamError, match="normalize must be one of std, laplacian"):
        DreamParams(normalize="l2")


def test_a_laplacian_dream_runs_is_seeded_and_differs_from_std(gradient_image):
    first = np.asarray(nbart.dream(gradient_image, normalize="laplacian", **TINY))
    again = np.asarray(nbart.dream(gradient_image, normalize="laplacian", **TINY))
    std = np.asarray(nbart.dream(gradient_image, **TINY))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, std)
    assert first.shape == std.shape
