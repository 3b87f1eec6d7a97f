"""Laplacian-pyramid normalization of a dream's gradient (``normalize="laplacian"``).

The original DeepDream notebook (Mordvintsev, Olah & Tyka, tensorflow/examples deepdream.ipynb, "Laplacian Pyramid
Gradient Normalization") splits the gradient into a Laplacian pyramid (a 5x5 binomial blur and a factor-2
subsampling per level), divides each level by its own root mean square and merges them back: the coarse levels,
whose gradient is weak, are amplified against the fine ones, so the dream grows large smooth patterns and colour
instead of pixel-level noise. Here the merged result is then divided by its standard deviation as the ``std`` mode
does, so ``step_size`` keeps its meaning: only how the step is spread over the frequencies changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["laplacian_normalize", "LEVELS"]

LEVELS = 4  # pyramid levels, as the notebook's lap_normalize(scale_n=4)

_BINOMIAL = np.outer([1.0, 4.0, 6.0, 4.0, 1.0], [1.0, 4.0, 6.0, 4.0, 1.0]).astype(np.float32)
_KERNEL = (_BINOMIAL / _BINOMIAL.sum())[:, :, None, None] * np.eye(3, dtype=np.float32)  # per colour channel


def _split(image: Any) -> tuple[Any, Any]:
    """(low, high) of an image (1, H, W, 3): the blurred half-size image and what it lacks at full size."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    low = tf.nn.conv2d(image, _KERNEL, [1, 2, 2, 1], "SAME")
    return low, image - tf.nn.conv2d_transpose(low, _KERNEL * 4.0, tf.shape(image), [1, 2, 2, 1])


def laplacian_normalize(gradient: Any, levels: int = LEVELS) -> Any:
    """The gradient (H, W, 3) with each of its ``levels`` Laplacian-pyramid levels (and the coarse rest) scaled to
    unit root mean square, merged, then divided by its standard deviation: (H, W, 3) float32. Images too small for
    all the levels use fewer (each level halves the size; a level stops at 1 px).

    >>> from nbart.quiet import tensorflow
    >>> g = laplacian_normalize(tensorflow().random.stateless_normal((32, 48, 3), seed=(1, 2)))
    >>> g.shape, round(float(tensorflow().math.reduce_std(g)), 3)
    (TensorShape([32, 48, 3]), 1.0)
    """
    from nbart.quiet import tensorflow
    tf = tensorflow()

    image = gradient[None]
    highs = []
    for _ in range(levels):
        if min(int(image.shape[1]), int(image.shape[2])) < 2:
            break
        image, high = _split(image)
        highs.append(high)
    merged = image / (tf.sqrt(tf.reduce_mean(tf.square(image))) + 1e-10)
    for high in reversed(highs):
        high = high / (tf.sqrt(tf.reduce_mean(tf.square(high))) + 1e-10)
        merged = tf.nn.conv2d_transpose(merged, _KERNEL * 4.0, tf.shape(high), [1, 2, 2, 1]) + high
    merged = merged[0]
    return merged / (tf.math.reduce_std(merged) + 1e-8)
