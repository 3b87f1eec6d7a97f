"""A 2-D convolution whose input gradient is itself a forward convolution: the same gradient, without im2col.

TensorFlow's CPU kernel for the gradient of a float32 ``Conv2D`` with respect to its input
(``Conv2DBackpropInput``) first unfolds the whole output gradient into a column buffer of (output pixels) x
(kernel height x kernel width x output channels) floats: for VGG's ``block1_conv2`` at 437x512 px that is 516 MB,
allocated at every gradient; measured here (AMD EPYC, AVX2, TensorFlow 2.21), one such gradient peaks at 1318 MB
RSS against 828 MB for the forward convolution. The forward ``Conv2D`` kernel does not do that. For a stride-1,
undilated convolution the input
gradient *is* a forward convolution (Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016,
section 4: the transpose of a stride-1 convolution is a convolution with the kernel flipped in space and its input and
output channels swapped, padded by ``k - 1 - p``), so :func:`conv2d` computes it as one: the same values up to float
rounding, without the buffer, and faster on that CPU (0.18-0.36 s against 0.50-0.74 s at 437x512x64, 3x3).

It serves feature extractors, whose weights are constants: the kernel gets no gradient (``None``). Convolutions it
does not cover (strides or dilations other than 1, a non-float32 dtype, an even kernel with ``SAME`` padding) run
as plain ``tf.nn.conv2d`` with TensorFlow's own gradient.
"""

from __future__ import annotations

from typing import Any

__all__ = ["conv2d", "conv2d_relu", "max_pool_2x2", "covers", "flip"]


def _ones(value: Any) -> bool:
    values = value if isinstance(value, (list, tuple)) else (value,)
    return all(int(v) == 1 for v in values)


def covers(kernel_shape: Any, strides: Any, padding: str, dilations: Any, dtype: Any) -> bool:
    """Whether :func:`conv2d` computes this convolution's input gradient as a forward convolution.

    ``kernel_shape`` is (height, width, in channels, out channels); ``padding`` "SAME" or "VALID" (TensorFlow's
    meaning); strides and dilations an int or a sequence of ints (all must be 1); only float32 is covered (the
    16-bit types keep TensorFlow's gradient, which was not measured to need the column buffer).
    """
    from nbart.quiet import tensorflow

    tf = tensorflow()

    if tf.as_dtype(dtype) != tf.float32 or not _ones(strides) or not _ones(dilations):
        return False
    height, width = int(kernel_shape[0]), int(kernel_shape[1])
    if padding == "VALID":
        return True
    return padding == "SAME" and height % 2 == 1 and width % 2 == 1  # SAME pads odd kernels symmetrically


def conv2d(x: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilations: Any = 1,
           flipped: Any = None) -> Any:
    """``tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)`` (NHWC), with the input gradient computed
    as a forward convolution where :func:`covers` says so; the kernel then gets no gradient (``None``).

    ``x``: (batch, height, width, in channels); ``kernel``: (kh, kw, in channels, out channels), same dtype.
    ``flipped``: :func:`flip` of ``kernel``, made once ahead (see there), or None to flip it in each backward pass.
    Returns (batch, out height, out width, out channels).
    """
    from nbart.quiet import tensorflow

    tf = tensorflow()

    if not covers(kernel.shape, strides, padding, dilations, x.dtype):
        return tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)
    if flipped is not None:
        return _stride1(padding, ahead=True)(x, kernel, flipped)
    return _stride1(padding)(x, kernel)


def flip(kernel: Any) -> Any:
    """The kernel of a stride-1 convolution's input gradient: ``kernel`` (kh, kw, in, out) flipped in space, in and
    out channels swapped: (kh, kw, out, in), same dtype.

    Made in each backward pass, the flip waits for the layer's output gradient (else every layer's copy would be
    held through the whole pass), so the flips run one after another on the critical path: ~0.3 s of a VGG16 dream
    step at any size on a 2-core AVX2 EPYC, 2/3 of a step at 40 px (``benchmarks/results/flip-ahead.txt``). A
    network may flip its kernels once when built instead (``flipped=`` of :func:`conv2d` / :func:`conv2d_relu`),
    holding one more copy of them (~50 MB for VGG16 up to ``block5_conv2``)."""
    from nbart.quiet import tensorflow

    tf = tensorflow()
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


_functions: dict[str, Any] = {}


def _stride1(padding: str, ahead: bool = False) -> Any:
    """The custom-gradient stride-1 convolution for one padding ("SAME" with odd kernels, or "VALID"): ``(x,
    kernel)``, or with ``ahead`` ``(x, kernel, flipped)``."""
    key = (padding, ahead)
    if key in _functions:
        return _functions[key]
    from nbart.quiet import tensorflow

    tf = tensorflow()

    if ahead:
        @tf.autograph.experimental.do_not_convert  # autograph would convert the returned gradient function
        @tf.custom_gradient
        def conv(x: Any, kernel: Any, flipped: Any) -> Any:
            y = tf.nn.conv2d(x, kernel, 1, padding)

            def gradient(dy: Any) -> Any:
                return _input_gradient(dy, kernel, padding, flipped), None, None

            return y, gradient
    else:
        @tf.autograph.experimental.do_not_convert
        @tf.custom_gradient
        def conv(x: Any, kernel: Any) -> Any:
            y = tf.nn.conv2d(x, kernel, 1, padding)

            def gradient(dy: Any) -> Any:
                return _input_gradient(dy, kernel, padding), None

            return y, gradient

    _functions[key] = conv
    return conv


def _input_gradient(dy: Any, kernel: Any, padding: str, flipped: Any = None) -> Any:
    """The input gradient of a stride-1 ``conv2d(x, kernel, padding)`` for the output gradient ``dy``;
    ``flipped``: :func:`flip` of ``kernel`` made ahead, or None to make it here."""
    from nbart.quiet import tensorflow

    tf = tensorflow()
    if flipped is not None:
        transposed = flipped
    else:
        # not before dy exists: the graph's executor would otherwise flip every layer's kernel as soon as the
        # backward pass starts (the kernels are ready from the start) and hold the copies through it
        with tf.control_dependencies([dy]):
            transposed = flip(kernel)
    if padding == "SAME":
        return tf.nn.conv2d(dy, transposed, 1, "SAME")
    kh, kw = kernel.shape[0], kernel.shape[1]
    if kh == 1 and kw == 1:
        return tf.nn.conv2d(dy, transposed, 1, "VALID")
    # VALID pads nothing, so its transpose pads k - 1 on every side (a "full" convolution)
    full = [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]
    return tf.nn.conv2d(dy, transposed, 1, full)


def conv2d_relu(x: Any, kernel: Any, bias: Any, padding: str = "SAME", flipped: Any = None) -> Any:
    """``relu(bias_add(conv2d(x, kernel, 1, padding), bias))`` (NHWC, stride 1) whose backward pass keeps one
    byte per output value instead of four: only where the output is positive (all a ReLU's gradient needs), and
    the input gradient as in :func:`conv2d` (``flipped`` as there). Kernel and bias get no gradient (``None``).
    Where :func:`covers` says no (strides, dilations, a 16-bit dtype), the plain ops with TensorFlow's gradients.

    ``x``: (batch, height, width, in channels), ``kernel``: (kh, kw, in, out), ``bias``: (out,), one dtype.
    Returns (batch, out height, out width, out channels). Why: TensorFlow's ReLU gradient keeps the float32
    output of every layer through the backward pass, which with the Gram matrices and pooling is most of a style
    step's peak (see benchmarks/results/memory-avx2.md).
    """
    from nbart.quiet import tensorflow

    tf = tensorflow()

    if not covers(kernel.shape, 1, padding, 1, x.dtype):
        return tf.nn.relu(tf.nn.bias_add(conv2d(x, kernel, 1, padding), bias))
    if flipped is not None:
        return _relu_function(padding, ahead=True)(x, kernel, bias, flipped)
    return _relu_function(padding)(x, kernel, bias)


def _relu_function(padding: str, ahead: bool = False) -> Any:
    key = ("relu", padding, ahead)
    if key in _functions:
        return _functions[key]
    from nbart.quiet import tensorflow

    tf = tensorflow()

    def forward(x: Any, kernel: Any, bias: Any, flipped: Any) -> tuple[Any, Any]:
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, padding), bias))
        positive = y > 0  # ReLU's gradient is 1 where the output is positive, 0 elsewhere (TensorFlow's choice at 0)

        def gradient(dy: Any) -> Any:
            return _input_gradient(tf.where(positive, dy, tf.zeros([], dy.dtype)), kernel, padding, flipped)

        return y, gradient

    if ahead:
        @tf.autograph.experimental.do_not_convert
        @tf.custom_gradient
        def conv_relu(x: Any, kernel: Any, bias: Any, flipped: Any) -> Any:
            y, gradient = forward(x, kernel, bias, flipped)
            return y, lambda dy: (gradient(dy), None, None, None)
    else:
        @tf.autograph.experimental.do_not_convert
        @tf.custom_gradient
        def conv_relu(x: Any, kernel: Any, bias: Any) -> Any:
            y, gradient = forward(x, kernel, bias, None)
            return y, lambda dy: (gradient(dy), None, None)

    _functions[key] = conv_relu
    return conv_relu


def max_pool_2x2(x: Any) -> Any:
    """``tf.nn.max_pool2d(x, 2, 2, "VALID")`` (NHWC) whose backward pass keeps each window's winner as an int32
    index instead of the float32 input and output (3/8 of their size): the gradient goes to the window's
    maximum, as TensorFlow's does (:func:`tf.nn.max_pool_with_argmax`; ties in the window go to one of them).
    ``x``: (batch, height, width, channels) float32; returns (batch, height // 2, width // 2, channels)."""
    from nbart.quiet import tensorflow

    tf = tensorflow()
    if "pool" not in _functions:

        @tf.autograph.experimental.do_not_convert
        @tf.custom_gradient
        def pool(x: Any) -> Any:
            y, argmax = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID", include_batch_in_index=False)
            index, shape = tf.cast(argmax, tf.int32), tf.shape(x)  # flat (y * width + x) * channels + c: < 2^31

            def gradient(dy: Any) -> Any:
                # the zeros become the output (the kernel writes into its input's buffer where it can); made only
                # once dy exists: the executor would otherwise fill every pool's zeros during the forward pass and
                # hold them through the whole backward pass (they depend on nothing else)
                with tf.control_dependencies([dy]):
                    arrived = tf.identity(shape)  # a data input of the fill itself, not only of its constant
                return tf.raw_ops.MaxPoolGradWithArgmax(
                    input=tf.zeros(arrived, dy.dtype), grad=dy, argmax=tf.cast(index, tf.int64), ksize=[1, 2, 2, 1],
                    strides=[1, 2, 2, 1], padding="VALID", include_batch_in_index=False)

            return y, gradient

        _functions["pool"] = pool
    return _functions["pool"](x)
