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

Functions take and return ``tf.Tensor`` s; they are traced into the style-transfer step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

__all__ = ["gram_matrix", "gram_of", "gram_junction", "content_loss", "style_loss", "total_variation", "blend_grams"]

_EPS = 1e-12


def gram_matrix(features: Any) -> Any:
    """Gram matrix of features (batch, H, W, C) -> (batch, C, C), normalized by the number of locations H*W."""
    shape = tf.shape(features)
    locations = tf.cast(shape[1] * shape[2], features.dtype)
    return tf.einsum("bijc,bijd->bcd", features, features) / locations


@tf.autograph.experimental.do_not_convert  # autograph would convert the returned gradient function
@tf.custom_gradient
def gram_of(activations: Any) -> Any:
    """:func:`gram_matrix` of ``activations`` cast to float32, for any float dtype, without keeping the float32 copy.

    The same value and gradient as ``gram_matrix(tf.cast(activations, tf.float32))`` (the gradient within the
    activations' own rounding), but no float32 copy of the activations is kept for the backward pass, nor made in
    it: the gradient is the activations times a small (C, C) matrix, computed in their dtype. Under bfloat16 such a
    copy is twice the size of the activations themselves (57 MB for VGG's block1_conv1 at 512 px), which are kept
    anyway (the ReLU's gradient needs them).
    """
    gram = gram_matrix(tf.cast(activations, tf.float32))
    return gram, lambda upstream: _gram_gradient(activations, upstream)


def gram_junction(activations: Any) -> tuple[Any, Any]:
    """``(activations, gram_of(activations))`` for a layer whose activations also go on through the network.

    The same values and gradient as passing the activations on and taking :func:`gram_of` beside them, but the
    Gram's share of the gradient (a tensor the size of the activations) is computed only once the network's
    gradient has come back down to this layer, where the two are summed. A gradient op is otherwise free to run as
    soon as its inputs exist, and the Gram's inputs exist right after the loss: VGG19's ``block1_conv1`` and
    ``block2_conv1`` shares (41 MB at 437x512 in bfloat16) were held through the whole backward pass, at its peak.
    """

    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def junction(a: Any) -> Any:
        gram = gram_matrix(tf.cast(a, tf.float32))

        def gradient(onward: Any, upstream: Any) -> Any:
            if onward is None:  # the passed-on activations unused: only the Gram's share
                return _gram_gradient(a, upstream)
            with tf.control_dependencies([onward]):  # not before the network's gradient reaches this layer
                return onward + _gram_gradient(a, upstream)

        return (tf.identity(a), gram), gradient

    return junction(activations)


def _gram_gradient(activations: Any, upstream: Any) -> Any:
    """The gradient of ``gram_matrix(cast(A, float32))`` for the upstream ``U``: A (U + U^T) / (H W), in A's dtype
    (only the small (C, C) factor is cast down)."""
    shape = tf.shape(activations)
    locations = tf.cast(shape[1] * shape[2], tf.float32)
    mix = (upstream + tf.linalg.matrix_transpose(upstream)) / locations
    return tf.einsum("bijc,bcd->bijd", activations, tf.cast(mix, activations.dtype))


def content_loss(features: Any, target: Any) -> Any:
    """Mean squared feature difference, relative to the target's mean square."""
    return tf.reduce_mean(tf.square(features - target)) / (tf.reduce_mean(tf.square(target)) + _EPS)


def style_loss(gram: Any, target_gram: Any) -> Any:
    """Mean squared Gram difference, relative to the target Gram's mean square."""
    return tf.reduce_mean(tf.square(gram - target_gram)) / (tf.reduce_mean(tf.square(target_gram)) + _EPS)


def total_variation(image: Any) -> Any:
    """Mean squared difference between neighbouring pixels of an image (H, W, 3) or (batch, H, W, 3)."""
    dy = image[..., 1:, :, :] - image[..., :-1, :, :]
    dx = image[..., :, 1:, :] - image[..., :, :-1, :]
    return tf.reduce_mean(tf.square(dy)) + tf.reduce_mean(tf.square(dx))


def blend_grams(grams: Sequence[Any], weights: Sequence[float]) -> Any:
    """Weighted mean of the Gram matrices of several style images (weights are normalized to sum to 1)."""
    total = float(sum(weights))
    return tf.add_n([g * (w / total) for g, w in zip(grams, weights)])
