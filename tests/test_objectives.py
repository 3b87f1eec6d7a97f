import numpy as np
import pytest
import tensorflow as tf

from nbart import convgrad, grams, objectives


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


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_gram_of_has_the_value_and_gradient_of_gram_matrix_of_the_float32_cast(dtype):
    # gram_of keeps no float32 copy and computes its gradient in the activations' dtype: same numbers, within rounding.
    rng = np.random.default_rng(0)
    a = tf.cast(tf.constant(rng.standard_normal((1, 5, 7, 4)), tf.float32), dtype)
    target = tf.constant(rng.standard_normal((1, 4, 4)), tf.float32)

    def loss_and_gradient(gram):
        with tf.GradientTape() as tape:
            tape.watch(a)
            loss = objectives.style_loss(gram(a), target)
        return loss, tape.gradient(loss, a)

    expected, expected_gradient = loss_and_gradient(lambda x: objectives.gram_matrix(tf.cast(x, tf.float32)))
    loss, gradient = tf.function(loss_and_gradient)(grams.gram_of)  # traced, as in a style run
    assert gradient.dtype == dtype
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    gradient, expected_gradient = (tf.cast(g, tf.float32).numpy() for g in (gradient, expected_gradient))
    tolerance = 1e-5 if dtype == tf.float32 else 1e-2  # bfloat16: the gradient is rounded to 8 bits either way
    np.testing.assert_allclose(gradient, expected_gradient, rtol=tolerance,
                               atol=tolerance * np.abs(expected_gradient).max())


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("onward_used", [True, False])
def test_gram_junction_has_the_value_and_gradient_of_passing_on_beside_gram_of(dtype, onward_used):
    # (activations passed on, their Gram): the same loss and gradient as using the activations and gram_of beside them
    rng = np.random.default_rng(1)
    a = tf.cast(tf.constant(rng.standard_normal((1, 5, 7, 4)), tf.float32), dtype)
    target = tf.constant(rng.standard_normal((1, 4, 4)), tf.float32)
    onward_weights = tf.cast(tf.constant(rng.standard_normal((1, 5, 7, 4)), tf.float32), dtype)

    def loss_and_gradient(split):
        with tf.GradientTape() as tape:
            tape.watch(a)
            onward, gram = split(a)
            loss = objectives.style_loss(gram, target)
            if onward_used:  # the network's own use of the layer downstream
                loss += tf.reduce_sum(tf.cast(tf.nn.relu(onward) * onward_weights, tf.float32))
        return loss, tape.gradient(loss, a)

    expected, expected_gradient = loss_and_gradient(lambda x: (x, objectives.gram_matrix(tf.cast(x, tf.float32))))
    loss, gradient = tf.function(loss_and_gradient)(grams.gram_junction)  # traced, as in a style run
    assert gradient.dtype == dtype
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    gradient, expected_gradient = (tf.cast(g, tf.float32).numpy() for g in (gradient, expected_gradient))
    tolerance = 1e-5 if dtype == tf.float32 else 2e-2
    np.testing.assert_allclose(gradient, expected_gradient, rtol=tolerance,
                               atol=tolerance * np.abs(expected_gradient).max())


def _junction_loss(x, target, onward_weights, onward_used):
    """``split -> (loss, input gradient)``: a style loss on the Gram ``split(x)`` gives, plus (if ``onward_used``) a
    loss on the activations it passes on, as a style step sees a Gram junction."""
    def loss_and_gradient(split):
        with tf.GradientTape() as tape:
            tape.watch(x)
            onward, gram = split(x)
            loss = objectives.style_loss(gram, target)
            if onward_used:
                loss += tf.reduce_sum(tf.nn.relu(onward) * onward_weights)
        return loss, tape.gradient(loss, x)
    return loss_and_gradient


@pytest.mark.parametrize("onward_used", [True, False])
@pytest.mark.parametrize("traced", [True, False])
def test_layer_junction_has_the_value_and_gradient_of_the_layer_beside_gram_matrix(onward_used, traced):
    # the layer computed again in the backward pass (its weights a variable, as in a network): same loss and
    # input gradient as autodiff of the plain expression
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((1, 6, 7, 3)), tf.float32)
    kernel = tf.Variable(rng.standard_normal((3, 3, 3, 8)), dtype=tf.float32)
    target = tf.constant(rng.standard_normal((1, 8, 8)), tf.float32)
    onward_weights = tf.constant(rng.standard_normal((1, 6, 7, 8)), tf.float32)

    def layer(v):
        return tf.nn.relu(tf.nn.conv2d(v, kernel, 1, "SAME"))

    loss_and_gradient = _junction_loss(x, target, onward_weights, onward_used)

    expected, expected_gradient = loss_and_gradient(lambda v: (layer(v), objectives.gram_matrix(layer(v))))
    ours = tf.function(loss_and_gradient) if traced else loss_and_gradient
    loss, gradient = ours(lambda v: grams.layer_junction(layer, v))
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), rtol=1e-5,
                               atol=1e-5 * np.abs(expected_gradient.numpy()).max())


@pytest.mark.parametrize("kernel_height, bands", [(3, 2), (3, 3), (3, 9), (5, 2), (1, 4)])
@pytest.mark.parametrize("onward_used", [True, False])
def test_layer_junction_in_bands_of_rows_has_the_same_gradient(kernel_height, bands, onward_used):
    # the backward pass band by band (bands of 3 or 4 rows, more bands than rows, a 5-row kernel, a 1x1 one): the
    # same input gradient as autodiff of the plain expression, traced as in a style run
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((1, 8, 7, 3)), tf.float32)
    kernel = tf.constant(rng.standard_normal((kernel_height, 3, 3, 6)), tf.float32)
    bias = tf.constant(rng.standard_normal(6) * 0.5, tf.float32)
    target = tf.constant(rng.standard_normal((1, 6, 6)), tf.float32)
    onward_weights = tf.constant(rng.standard_normal((1, 8, 7, 6)), tf.float32)

    def layer(v):  # as the lean network runs VGG's block1_conv1: a fused ReLU keeping a 1-byte mask
        return convgrad.conv2d_relu(v, kernel, bias, "SAME")

    loss_and_gradient = _junction_loss(x, target, onward_weights, onward_used)

    plain = lambda v: tf.nn.relu(tf.nn.conv2d(v, kernel, 1, "SAME") + bias)  # noqa: E731
    expected, expected_gradient = loss_and_gradient(lambda v: (plain(v), objectives.gram_matrix(plain(v))))
    loss, gradient = tf.function(loss_and_gradient)(
        lambda v: grams.layer_junction(layer, v, halo=kernel_height // 2, chunks=bands))
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(), rtol=1e-5,
                               atol=1e-5 * np.abs(expected_gradient.numpy()).max())


@pytest.mark.parametrize("module", ["objectives", "errors"])
def test_docstring_examples_hold(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"nbart.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_the_submodules_are_reachable_from_import_nbart():
    # help(nbart.objectives) after `import nbart` raised AttributeError; submodules now load when first named.
    import nbart
    import nbart.objectives as objectives_module

    assert nbart.objectives is objectives_module and callable(nbart.objectives.gram_matrix)
    with pytest.raises(AttributeError, match="module 'nbart' has no attribute 'no_such_part'"):
        nbart.no_such_part  # noqa: B018
