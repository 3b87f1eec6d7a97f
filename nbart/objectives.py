"""Losses of style transfer: Gram matrices, content, style and total variation.

Sign convention (all of nbart): every objective is a loss to minimize.

Each loss is a mean, and content and style terms are relative to their target's own magnitude, so that
``content_weight``, ``style_weight`` and ``tv_weight`` mean the same thing whatever the image size, the layer or
the backbone's activation scale (ImageNet VGG19 and the offline VGG16 differ by orders of magnitude):

- Gram matrix: ``G = F^T F / (H W)`` for features F of shape (H W, C): normalized by the number of locations, so
  a texture has the same Gram matrix at any size.
- content loss: ``mean((F - P)^2) / mean(P^2)`` per layer, P the content's features.
- style loss: ``mean((G - A)^2) / mean(A^2)`` per layer, A the style's (blended) Gram matrix.
- total variation: mean squared difference of neighbouring pixels, in [0, 1] pixel units.

Functions take and return ``tf.Tensor`` s; they are traced into the style-transfer step. Source: Gatys, Ecker &
Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016), with the normalizations above; the
memory-saving forms of the Gram matrix used inside the traced step are in :mod:`nbart.grams`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbart.quiet import tensorflow

tf = tensorflow()

__all__ = ["gram_matrix", "content_loss", "style_loss", "total_variation", "blend_grams", "masked_gram"]

_EPS = 1e-12


def gram_matrix(features: Any) -> Any:
    """Gram matrix of features (batch, H, W, C) -> (batch, C, C), normalized by the number of locations H*W.

    >>> f = tf.ones((1, 4, 5, 3))
    >>> g = gram_matrix(f)
    >>> g.shape, float(g[0, 0, 1])
    (TensorShape([1, 3, 3]), 1.0)
    """
    shape = tf.shape(features)
    locations = tf.cast(shape[1] * shape[2], features.dtype)
    return tf.einsum("bijc,bijd->bcd", features, features) / locations


def content_loss(features: Any, target: Any) -> Any:
    """Mean squared feature difference, relative to the target's mean square: a scalar, for features and target
    of the same shape (batch, H, W, C). 0 when they are equal; 1 for zero features.

    >>> t = tf.fill((1, 2, 2, 3), 2.0)
    >>> float(content_loss(tf.zeros((1, 2, 2, 3)), t)), float(content_loss(t, t))
    (1.0, 0.0)
    >>> content_loss(tf.ones((1, 16, 12, 512)), tf.ones((1, 16, 12, 512))).shape  # one layer's (1, H, W, C): a scalar
    TensorShape([])
    """
    return tf.reduce_mean(tf.square(features - target)) / (tf.reduce_mean(tf.square(target)) + _EPS)


def style_loss(gram: Any, target_gram: Any) -> Any:
    """Mean squared Gram difference, relative to the target Gram's mean square: a scalar, for Gram matrices of
    the same shape (batch, C, C).

    >>> a = tf.eye(3)[None]
    >>> float(style_loss(3.0 * a, a)), float(style_loss(a, a))
    (4.0, 0.0)
    >>> g = gram_matrix(tf.ones((1, 32, 32, 64)))  # (1, C, C) whatever the layer's H and W
    >>> g.shape, style_loss(g, gram_matrix(tf.ones((1, 20, 24, 64)))).shape
    (TensorShape([1, 64, 64]), TensorShape([]))
    """
    return tf.reduce_mean(tf.square(gram - target_gram)) / (tf.reduce_mean(tf.square(target_gram)) + _EPS)


def total_variation(image: Any) -> Any:
    """Mean squared difference between neighbouring pixels of an image (H, W, 3) or (batch, H, W, 3), summed over
    the vertical and horizontal directions: a scalar, in squared pixel units (pixels in [0, 1]).

    >>> float(total_variation(tf.zeros((4, 4, 3))))
    0.0
    >>> stripes = tf.tile(tf.constant([0.0, 1.0])[None, :, None], (2, 2, 3))  # (2, 4, 3): columns 0,1,0,1
    >>> float(total_variation(stripes))
    1.0
    >>> total_variation(tf.zeros((1, 64, 48, 3))).shape  # a batch too: a scalar
    TensorShape([])
    """
    dy = image[..., 1:, :, :] - image[..., :-1, :, :]
    dx = image[..., :, 1:, :] - image[..., :, :-1, :]
    return tf.reduce_mean(tf.square(dy)) + tf.reduce_mean(tf.square(dx))


def blend_grams(grams: Sequence[Any], weights: Sequence[float]) -> Any:
    """Weighted mean of the Gram matrices (each (batch, C, C)) of several style images; the weights are
    normalized to sum to 1.

    >>> float(blend_grams([tf.ones((1, 1, 1)), tf.fill((1, 1, 1), 3.0)], [3.0, 1.0])[0, 0, 0])
    1.5
    """
    total = float(sum(weights))
    return tf.add_n([g * (w / total) for g, w in zip(grams, weights)])


def masked_gram(features: Any, masks: Any) -> Any:
    """Guided Gram matrices (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer", spatial
    control): for features (1, H, W, C) and masks (R, H, W) in [0, 1] on the same grid, the (R, C, C) Gram matrices
    of the features weighted by each mask, ``(T F)^T (T F) / sum(T^2)``: normalized by the mask's own weight, so a
    mask of ones gives :func:`gram_matrix`, and a region's Gram is that of its own texture whatever its area.

    >>> f = tf.concat([tf.ones((1, 2, 1, 1)), 3.0 * tf.ones((1, 2, 1, 1))], axis=2)  # left column 1, right 3
    >>> left = tf.constant([[[1.0, 0.0], [1.0, 0.0]]])
    >>> [float(v) for v in tf.reshape(masked_gram(f, tf.concat([left, 1.0 - left], 0)), [-1])]
    [1.0, 9.0]
    """
    weighted = features * masks[..., None]  # (R, H, W, C): batch 1 broadcast over the regions
    area = tf.reduce_sum(tf.square(masks), axis=[1, 2])[:, None, None]
    return tf.einsum("rijc,rijd->rcd", weighted, weighted) / (area + _EPS)
