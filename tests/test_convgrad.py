"""nbart.convgrad: the stride-1 convolution whose input gradient is a forward convolution equals plain autodiff."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from nbart import convgrad  # noqa: E402

CASES = [((3, 3), "SAME"), ((1, 1), "SAME"), ((1, 7), "SAME"), ((5, 3), "SAME"),
         ((3, 3), "VALID"), ((1, 1), "VALID"), ((7, 1), "VALID")]


def _value_and_gradient(conv, x, kernel, padding, weights):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = conv(x, kernel, 1, padding)
        loss = tf.reduce_sum(tf.nn.relu(y) * weights)  # a ReLU, so the upstream gradient has zeros as in a network
    return y, tape.gradient(loss, x)


@pytest.mark.parametrize("kernel_size,padding", CASES)
@pytest.mark.parametrize("traced", [False, True])
def test_value_and_input_gradient_equal_autodiff(kernel_size, padding, traced):
    rng = np.random.default_rng(0)
    kh, kw = kernel_size
    x = tf.constant(rng.standard_normal((2, 9, 11, 4)), tf.float32)
    kernel = tf.constant(rng.standard_normal((kh, kw, 4, 5)), tf.float32)
    out = (9, 11) if padding == "SAME" else (9 - kh + 1, 11 - kw + 1)
    weights = tf.constant(rng.standard_normal((2, *out, 5)), tf.float32)
    assert convgrad.covers(kernel.shape, 1, padding, 1, tf.float32)
    ours = (tf.function(convgrad.conv2d, autograph=False) if traced else convgrad.conv2d)
    y_ref, g_ref = _value_and_gradient(lambda *a: tf.nn.conv2d(*a), x, kernel, padding, weights)
    y, g = _value_and_gradient(ours, x, kernel, padding, weights)
    assert y.shape == y_ref.shape and g.shape == x.shape
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())  # the forward pass is the same op
    scale = float(tf.reduce_max(tf.abs(g_ref)))
    assert scale > 0
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=0, atol=1e-5 * scale)


def test_kernel_gets_no_gradient():
    x = tf.ones((1, 5, 5, 2))
    kernel = tf.Variable(tf.ones((3, 3, 2, 2)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(convgrad.conv2d(x, kernel))
    assert tape.gradient(loss, kernel) is None


def test_dilated_convolutions_are_not_covered():
    assert not convgrad.covers((3, 3, 2, 2), 1, "SAME", 2, "float32")
    assert not convgrad.covers((3, 3, 2, 2), (1, 1), "VALID", (2, 1), "float32")


@pytest.mark.parametrize("kernel_shape,strides,padding,dilations,dtype", [
    ((3, 3, 2, 2), 2, "SAME", 1, "float32"),       # strided
    ((2, 2, 2, 2), 1, "SAME", 1, "float32"),       # even kernel: SAME pads it asymmetrically
    ((3, 3, 2, 2), 1, "SAME", 1, "bfloat16"),      # 16-bit types keep TensorFlow's gradient
])
def test_uncovered_convolutions_are_plain(kernel_shape, strides, padding, dilations, dtype):
    assert not convgrad.covers(kernel_shape, strides, padding, dilations, dtype)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((1, 8, 8, 2)), dtype)
    kernel = tf.constant(rng.standard_normal(kernel_shape), dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        y = convgrad.conv2d(x, kernel, strides, padding, dilations)
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    expected = tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)
    np.testing.assert_array_equal(tf.cast(y, tf.float32).numpy(), tf.cast(expected, tf.float32).numpy())
    assert tape.gradient(loss, kernel) is not None  # TensorFlow's own gradient, kernel included


@pytest.mark.parametrize("model, layers", [("inception_v3", ("mixed0", "mixed2")), ("vgg16", ("block1_conv1",
                                                                                             "block3_conv2"))])
def test_lean_extractor_input_gradient_matches_the_keras_model(model, layers):
    # the lean executor's stride-1 convolutions use convgrad.conv2d; the Keras model uses TensorFlow's gradient
    from nbart import backbones

    bb = backbones.get(model)
    backbones.clear_cache()
    lean = backbones.Extractor(bb, "none", "float32", layers)
    plain = backbones.Extractor(bb, "none", "float32", layers, lean=False)
    assert lean.lean is not None and plain.lean is None
    x = tf.constant(np.random.default_rng(2).random((1, 80, 96, 3)), tf.float32)
    gradients = []
    for ext in (lean, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.add_n([tf.reduce_mean(tf.square(a)) for a in ext(x)])
        gradients.append(tape.gradient(loss, x).numpy())
    scale = float(np.abs(gradients[1]).max())
    assert scale > 0
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=0, atol=1e-3 * scale)
    backbones.clear_cache()


def _autodiff_check(ours, plain, inputs, weights_shape, traced, atol=1e-5):
    """Values and input gradients of ``ours(x)`` equal those of ``plain(x)`` (a weighted sum as the loss)."""
    weights = tf.constant(np.random.default_rng(3).standard_normal(weights_shape), tf.float32)
    results = []
    for f in (ours, plain):
        def value_and_gradient(x, f=f):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
                loss = tf.reduce_sum(y * weights)
            return y, tape.gradient(loss, x)
        results.append((tf.function(value_and_gradient, autograph=False) if traced else value_and_gradient)(inputs))
    (y, g), (y_ref, g_ref) = results
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())  # the forward pass is the same ops
    scale = float(tf.reduce_max(tf.abs(g_ref)))
    assert scale > 0
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=0, atol=atol * scale)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("traced", [False, True])
def test_conv2d_relu_equals_autodiff(padding, traced):
    rng = np.random.default_rng(4)
    x = tf.constant(rng.standard_normal((2, 9, 11, 4)), tf.float32)
    kernel = tf.constant(rng.standard_normal((3, 3, 4, 5)), tf.float32)
    bias = tf.constant(rng.standard_normal(5), tf.float32)
    out = (9, 11) if padding == "SAME" else (7, 9)
    _autodiff_check(lambda v: convgrad.conv2d_relu(v, kernel, bias, padding),
                    lambda v: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(v, kernel, 1, padding), bias)),
                    x, (2, *out, 5), traced)


@pytest.mark.parametrize("size", [(8, 10), (9, 11)])  # odd sizes: the last row and column are not pooled
@pytest.mark.parametrize("traced", [False, True])
def test_max_pool_2x2_equals_autodiff(size, traced):
    x = tf.constant(np.random.default_rng(5).standard_normal((2, *size, 3)), tf.float32)
    _autodiff_check(convgrad.max_pool_2x2, lambda v: tf.nn.max_pool2d(v, 2, 2, "VALID"), x,
                    (2, size[0] // 2, size[1] // 2, 3), traced, atol=0)


def test_max_pool_2x2_makes_its_gradient_buffer_only_once_the_gradient_arrives():
    # A buffer the size of the pool's input, filled with zeros, becomes its gradient. It depends on nothing but the
    # input's shape, so without a control dependency on the arriving gradient the executor fills every pool's during
    # the forward pass and holds them all through the backward pass (104 MB of a VGG19 style step at 437x512 px).
    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 2], tf.float32)])
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(convgrad.max_pool_2x2(convgrad.max_pool_2x2(x)) ** 2)
        return tape.gradient(loss, x)

    graph = step.get_concrete_function().graph
    grads = [op for op in graph.get_operations() if op.type == "MaxPoolGradWithArgmax"]
    assert len(grads) == 2

    def ancestors(op):  # the ops op reads, directly or not (data inputs)
        seen, todo = set(), [op]
        while todo:
            for parent in [t.op for t in todo.pop().inputs]:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    for op in grads:
        buffer, arriving = op.inputs[0].op, op.inputs[1].op
        waits = {c for a in ancestors(buffer) | {buffer} for c in a.control_inputs}
        assert arriving in waits, f"the {buffer.type} feeding {op.name} does not wait for the gradient"
    x = np.random.default_rng(1).standard_normal((1, 8, 12, 2)).astype(np.float32)
    want = tf.function(lambda v: tf.gradients(tf.reduce_sum(tf.nn.max_pool2d(tf.nn.max_pool2d(v, 2, 2, "VALID"),
                                                                              2, 2, "VALID") ** 2), v)[0])(x)
    np.testing.assert_array_equal(step(x).numpy(), want.numpy())


@pytest.mark.parametrize("model, layers", [("vgg19", ("block5_conv2", "block1_conv1", "block2_conv1",
                                                      "block3_conv1")),
                                           ("inception_v3", ("mixed2", "mixed0", "mixed1"))])
def test_lean_style_step_gradient_matches_the_keras_model(model, layers):
    # features_and_grams on the lean network (ReLU masks, pooling indices, style layers computed again in the
    # backward pass) against the Keras model with TensorFlow's gradients, traced as in a style step
    import keras

    from nbart import backbones, extractors, objectives

    # InceptionV3 runs on random weights offline: seeded, so that no ReLU sits within float rounding of its kink in
    # one CI run and not another (a unit that flips between the two forward passes moves its whole receptive field's
    # gradient by ~1% of the largest: an unseeded CI run met one)
    keras.utils.set_random_seed(0)
    bb = backbones.get(model)
    backbones.clear_cache()
    lean = backbones.Extractor(bb, "none", "float32", layers)
    plain = backbones.Extractor(bb, "none", "float32", layers, lean=False)
    assert lean.lean is not None and plain.lean is None
    if model == "vgg19":  # block1_conv1 (3 channels in) is computed again in the backward pass, the others kept
        assert [lean.lean.small_input(i) for i in range(len(layers))] == [False, True, False, False]
        # and band by band of rows (3x3 "SAME" convolutions read one row above and below)
        assert lean.lean.row_halo(1) == 1 and extractors.JUNCTION_BANDS > 1
    x = tf.constant(np.random.default_rng(6).random((1, 83, 97, 3)), tf.float32)
    results = []
    for ext in (lean, plain):
        @tf.function(autograph=False)
        def step(x, ext=ext):
            with tf.GradientTape() as tape:
                tape.watch(x)
                features, grams = ext.features_and_grams(x, range(1, len(layers)))
                loss = tf.add_n([tf.reduce_mean(tf.square(f)) for f in features] +
                                [tf.reduce_mean(tf.square(g)) for g in grams])
            return features + grams, tape.gradient(loss, x)
        results.append(step(x))
    (values, g), (values_ref, g_ref) = results
    for v, v_ref in zip(values, values_ref):
        np.testing.assert_allclose(v.numpy(), v_ref.numpy(), rtol=0, atol=1e-3 * float(np.abs(v_ref).max()))
    scale = float(np.abs(g_ref.numpy()).max())
    assert scale > 0
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=0, atol=1e-3 * scale)
    assert objectives  # the Gram matrices are objectives.gram_matrix's on the Keras path
    backbones.clear_cache()


def test_large_buffers_are_given_back_on_glibc(monkeypatch):
    import platform

    from nbart import quiet

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert quiet.release_large_buffers() is expected
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")  # the user's own setting stands
    assert quiet.release_large_buffers() is False


@pytest.mark.parametrize("padding, kernel_shape", [("SAME", (3, 3, 4, 5)), ("VALID", (3, 3, 4, 5)),
                                                   ("VALID", (1, 1, 4, 5))])
@pytest.mark.parametrize("traced", [False, True])
def test_kernels_flipped_ahead_give_the_same_gradient(padding, kernel_shape, traced):
    # flip_ahead: the input gradient's kernel made once (convgrad.flip) instead of in the backward pass
    rng = np.random.default_rng(7)
    x = tf.constant(rng.standard_normal((2, 9, 11, 4)), tf.float32)
    kernel = tf.constant(rng.standard_normal(kernel_shape), tf.float32)
    bias = tf.constant(rng.standard_normal(5), tf.float32)
    flipped = convgrad.flip(kernel)
    assert flipped.shape == (kernel_shape[0], kernel_shape[1], 5, 4)
    kh, kw = kernel_shape[:2]
    out = (9, 11) if padding == "SAME" else (9 - kh + 1, 11 - kw + 1)
    _autodiff_check(lambda v: convgrad.conv2d(v, kernel, 1, padding, 1, flipped),
                    lambda v: tf.nn.conv2d(v, kernel, 1, padding), x, (2, *out, 5), traced)
    _autodiff_check(lambda v: convgrad.conv2d_relu(v, kernel, bias, padding, flipped),
                    lambda v: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(v, kernel, 1, padding), bias)),
                    x, (2, *out, 5), traced)


def test_a_dreams_extractor_flips_ahead_once_per_network_and_steps_the_same():
    # dreams flip their kernels once (DreamPrepared.flip_ahead), style runs don't; extractors cut from one network
    # share the flipped kernels; the gradient is the one flipping in the backward pass gives
    from nbart import backbones, deepdream, explorer, lean, styletransfer

    assert deepdream.DreamPrepared.flip_ahead and explorer._Prepared.flip_ahead
    assert not styletransfer.StylePrepared.flip_ahead
    bb = backbones.get("vgg16")
    backbones.clear_cache()
    ahead = backbones.extractor(bb, "none", "float32", ("block2_conv2",), flip_ahead=True)
    deeper = backbones.extractor(bb, "none", "float32", ("block3_conv1",), flip_ahead=True)
    late = backbones.extractor(bb, "none", "float32", ("block2_conv2",))
    assert ahead is not late and ahead.lean.flip_ahead and not late.lean.flip_ahead
    conv = ahead.model.get_layer("block1_conv2")
    assert len(lean._flipped[conv]) == 1  # one copy, shared by both flip-ahead extractors
    assert deeper.lean is not None
    x = tf.constant(np.random.default_rng(8).random((1, 40, 48, 3)), tf.float32)
    gradients = []
    for ext in (ahead, late):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.square(ext(x)[0]))
        gradients.append(tape.gradient(loss, x).numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=0, atol=1e-5 * float(np.abs(gradients[1]).max()))
    backbones.clear_cache()
