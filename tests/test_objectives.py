import numpy as np
import pytest
import tensorflow as tf

from nbart import objectives


def test_gram_matrix_is_normalized_by_the_number_of_locations():
    # 2x2 locations, 2 channels: F rows are locations (1, 0), (0, 2), (1, 1), (3, 0)
    f = tf.constant([[[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [3.0, 0.0]]]])
    expected = np.array([[1 + 0 + 1 + 9, 0 + 0 + 1 + 0], [0 + 0 + 1 + 0, 0 + 4 + 1 + 0]]) / 4.0
    np.testing.assert_allclose(objectives.gram_matrix(f).numpy()[0], expected)


def test_gram_matrix_of_a_texture_does_not_depend_on_its_size():
    tile = np.random.default_rng(0).random((1, 4, 4, 3)).astype(np.float32)
    big = np.tile(tile, (1, 3, 5, 1))
    np.testing.assert_allclose(objectives.gram_matrix(tf.constant(tile)).numpy(),
                               objectives.gram_matrix(tf.constant(big)).numpy(), rtol=1e-5)


def test_content_and_style_losses_are_relative_mean_squares():
    target = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    x = tf.constant([[1.0, 2.0], [3.0, 6.0]])
    # mean((x - t)^2) = 4 / 4 = 1; mean(t^2) = 30 / 4 = 7.5
    assert float(objectives.content_loss(x, target)) == pytest.approx(1 / 7.5)
    assert float(objectives.style_loss(x, target)) == pytest.approx(1 / 7.5)
    assert float(objectives.content_loss(target, target)) == 0.0
    # Relative: scaling both by 100 (another backbone's activation scale) leaves the loss unchanged.
    assert float(objectives.content_loss(100 * x, 100 * target)) == pytest.approx(1 / 7.5, rel=1e-5)


def test_total_variation_by_hand():
    image = tf.constant([[[0.0] * 3, [1.0] * 3], [[0.0] * 3, [0.0] * 3]])  # 2x2, one bright pixel
    # vertical diffs: (0-0), (0-1) -> squares 0, 1 over 2x1x3 values -> mean 0.5; horizontal: (1-0), (0-0) -> 0.5
    assert float(objectives.total_variation(image)) == pytest.approx(1.0)
    assert float(objectives.total_variation(tf.zeros((5, 5, 3)))) == 0.0


def test_blend_weights_are_normalized():
    a, b = tf.constant([[2.0]]), tf.constant([[4.0]])
    assert float(objectives.blend_grams([a, b], [1.0, 1.0])[0, 0]) == pytest.approx(3.0)
    assert float(objectives.blend_grams([a, b], [3.0, 1.0])[0, 0]) == pytest.approx(2.5)
    assert float(objectives.blend_grams([a, b], [30.0, 10.0])[0, 0]) == pytest.approx(2.5)
