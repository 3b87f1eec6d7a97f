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

__all__ = ["conv2d", "covers"]


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


def conv2d(x: Any, kernel: Any, strides: Any = 1, padding: str = "SAME", dilations: Any = 1) -> Any:
    """``tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)`` (NHWC), with the input gradient computed
    as a forward convolution where :func:`covers` says so; the kernel then gets no gradient (``None``).

    ``x``: (batch, height, width, in channels); ``kernel``: (kh, kw, in channels, out channels), same dtype.
    Returns (batch, out height, out width, out channels).
    """
    from nbart.quiet import tensorflow

    tf = tensorflow()

    if not covers(kernel.shape, strides, padding, dilations, x.dtype):
        return tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)
    return _stride1(padding)(x, kernel)


_functions: dict[str, Any] = {}


def _stride1(padding: str) -> Any:
    """The custom-gradient stride-1 convolution for one padding ("SAME" with odd kernels, or "VALID")."""
    if padding in _functions:
        return _functions[padding]
    from nbart.quiet import tensorflow

    tf = tensorflow()

    @tf.autograph.experimental.do_not_convert  # autograph would convert the returned gradient function
    @tf.custom_gradient
    def conv(x: Any, kernel: Any) -> Any:
        y = tf.nn.conv2d(x, kernel, 1, padding)

        def gradient(dy: Any) -> Any:
            # flipped in space, in and out channels swapped: (kh, kw, out, in)
            transposed = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            if padding == "SAME":
                return tf.nn.conv2d(dy, transposed, 1, "SAME"), None
            kh, kw = kernel.shape[0], kernel.shape[1]
            if kh == 1 and kw == 1:
                return tf.nn.conv2d(dy, transposed, 1, "VALID"), None
            # VALID pads nothing, so its transpose pads k - 1 on every side (a "full" convolution)
            full = [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]
            return tf.nn.conv2d(dy, transposed, 1, full), None

        return y, gradient

    _functions[padding] = conv
    return conv
