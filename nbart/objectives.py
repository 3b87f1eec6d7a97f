"""Losses of style transfer: Gram matrices, content, style (Gram, Wasserstein-2, sliced Wasserstein) and total
variation.

Sign convention (all of nbart): every objective is a loss to minimize.

Each loss is a mean, and content and style terms are relative to their target's own magnitude, so that
``content_weight``, ``style_weight`` and ``tv_weight`` mean the same thing whatever the image size, the layer or
the backbone's activation scale (ImageNet VGG19 and the offline VGG16 differ by orders of magnitude):

- Gram matrix: ``G = F^T F / (H W)`` for features F of shape (H W, C): normalized by the number of locations, so
  a texture has the same Gram matrix at any size.
- content loss: ``mean((F - P)^2) / mean(P^2)`` per layer, P the content's features.
- style loss: ``mean((G - A)^2) / mean(A^2)`` per layer, A the style's (blended) Gram matrix.
- total variation: mean squared difference of neighbouring pixels, in [0, 1] pixel units.

- Wasserstein-2 style loss (``style_loss="w2"``): the squared W2 distance between Gaussians fitted to the features
  (mean and covariance), relative to the target's mean square ``E|x|^2``; the matrix square roots by Newton-Schulz
  iterations (matmuls only), as crowsonkb/style-transfer-pytorch does.
- sliced-Wasserstein style loss (``style_loss="sliced_wasserstein"``): features projected on random unit
  directions (one per channel), each projection's values sorted and compared with the target's sorted values
  (its quantiles): ``mean((sort(F V) - T)^2) / mean(T^2)``. Heitz, Vanhoey, Chambon & Belcour, "A Sliced
  Wasserstein Loss for Neural Texture Synthesis" (CVPR 2021).

Every style loss is 0 when the result's features match the style's and 1 for zero features.

Functions take and return ``tf.Tensor`` s; they are traced into the style-transfer step. Source: Gatys, Ecker &
Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016), with the normalizations above; the
memory-saving forms of the Gram matrix used inside the traced step are in :mod:`nbart.grams`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbart.quiet import tensorflow

tf = tensorflow()

__all__ = ["gram_matrix", "content_loss", "style_loss", "total_variation", "blend_grams", "STYLE_LOSSES",
           "feature_mean", "covariance", "sqrtm_newton_schulz", "trace_sqrtm", "w2_target", "w2_loss",
           "random_projections", "sorted_projections", "sliced_wasserstein_loss", "NEWTON_SCHULZ_ITERATIONS",
           "W2_EPS", "masked_gram"]

_EPS = 1e-12
STYLE_LOSSES = ("gram", "w2", "sliced_wasserstein")
# Newton-Schulz iterations for a matrix square root: a (ridge-regularized, see W2_EPS) feature covariance's
# eigenvalues span about 1e-4 of its largest; an eigenvalue x (scaled below 1) needs about log(1/x)/log(2.25)
# iterations to grow to O(1), then a few to converge quadratically (tests/test_losses.py checks against scipy).
NEWTON_SCHULZ_ITERATIONS = 20
# Ridge added to both covariances, relative to their Frobenius norm (about their largest variance): bounds the
# condition number of C_s^(1/2) C C_s^(1/2) near 1/W2_EPS^2, so its float32 rounding (~1e-7 of its norm) never makes
# an eigenvalue negative (Newton-Schulz diverges on one) and 20 iterations converge; directions with less variance
# than W2_EPS of the largest weigh less. Relative to the mean variance instead, random-weight InceptionV3 features
# (one channel dominating) gave negative eigenvalues and a non-finite loss.
W2_EPS = 1e-3


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


def feature_mean(features: Any) -> Any:
    """Mean of features (batch, H, W, C) over the locations: (batch, C).

    >>> feature_mean(tf.ones((1, 2, 3, 4))).shape
    TensorShape([1, 4])
    """
    return tf.reduce_mean(features, axis=[1, 2])


def covariance(mean: Any, second_moment: Any) -> Any:
    """Covariance (batch, C, C) from the mean (batch, C) and the second raw moment (batch, C, C) (the Gram matrix
    :func:`gram_matrix`, which is normalized by the locations): ``E[x x^T] - mu mu^T``.

    >>> m = tf.constant([[1.0, 2.0]])
    >>> float(covariance(m, tf.constant([[[2.0, 2.0], [2.0, 5.0]]]))[0, 0, 0])
    1.0
    """
    return second_moment - mean[:, :, None] * mean[:, None, :]


def _ridge(cov: Any) -> Any:
    """``cov + W2_EPS * |cov|_F * I`` (batch, C, C): see W2_EPS."""
    scale = tf.sqrt(tf.reduce_sum(tf.square(cov), axis=[-2, -1]))
    return cov + (W2_EPS * scale)[:, None, None] * tf.eye(tf.shape(cov)[-1], dtype=cov.dtype)


def sqrtm_newton_schulz(a: Any, iterations: int = NEWTON_SCHULZ_ITERATIONS) -> tuple[Any, Any]:
    """``(a^(1/2), a^(-1/2))`` of symmetric positive (semi)definite matrices ``a`` (batch, C, C), by the coupled
    Newton-Schulz iteration (Higham, "Functions of Matrices", 2008, eq. 6.35; Lin & Maji, "Improved Bilinear
    Pooling with CNNs", BMVC 2017): matmuls only, so it runs in any dtype on any accelerator.

    ``a`` is first divided by its Frobenius norm ``s`` (eigenvalues then lie in (0, 1], where the iteration
    converges); ``Y <- Y T, Z <- T Z`` with ``T = (3 I - Z Y) / 2`` from ``Y = a / s, Z = I``; then
    ``sqrt(s) Y -> a^(1/2)`` and ``Z / sqrt(s) -> a^(-1/2)``. Eigenvalues far below ``s`` converge last (see
    NEWTON_SCHULZ_ITERATIONS): regularize ``a`` first where they matter.

    >>> r, ri = sqrtm_newton_schulz(tf.constant([[[4.0, 0.0], [0.0, 9.0]]]))
    >>> [[round(float(v), 4) for v in tf.linalg.diag_part(m)[0]] for m in (r, ri)]
    [[2.0, 3.0], [0.5, 0.3333]]
    """
    norm = tf.sqrt(tf.reduce_sum(tf.square(a), axis=[-2, -1], keepdims=True)) + _EPS
    eye = tf.eye(tf.shape(a)[-1], batch_shape=tf.shape(a)[:-2], dtype=a.dtype)
    y, z = a / norm, eye
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    root = tf.sqrt(norm)
    return y * root, z / root


@tf.autograph.experimental.do_not_convert  # autograph would convert the returned gradient function
@tf.custom_gradient
def trace_sqrtm(a: Any) -> Any:
    """``tr(a^(1/2))`` (batch,) of symmetric positive definite ``a`` (batch, C, C), by :func:`sqrtm_newton_schulz`.

    Its gradient ``a^(-1/2) / 2`` is the iteration's other output, so the backward pass costs one multiply (no
    backpropagation through the iterations, nor a Lyapunov solve as a full matrix square root's gradient needs).

    >>> float(trace_sqrtm(tf.constant([[[4.0, 0.0], [0.0, 9.0]]]))[0])
    5.0
    """
    root, inverse_root = sqrtm_newton_schulz(a)

    def gradient(upstream: Any) -> Any:
        return upstream[:, None, None] * 0.5 * inverse_root

    return tf.linalg.trace(root), gradient


def w2_target(mean: Any, second_moment: Any) -> tuple[Any, Any, Any, Any]:
    """What :func:`w2_loss` compares with, from a style's feature mean (batch, C) and second raw moment (batch, C,
    C) (blend several styles by averaging both with their weights: the moments of the mixture):
    ``(mean, covariance, covariance^(1/2), E|x|^2)``, the covariance ridge-regularized (W2_EPS), ``E|x|^2`` of
    shape (batch,) (the scale the loss is relative to).

    >>> m, c, r, scale = w2_target(tf.zeros((1, 2)), tf.eye(2)[None])
    >>> round(float(r[0, 0, 0]), 2), float(scale[0])  # sqrt(1 + W2_EPS * sqrt(2)), E|x|^2 = tr I
    (1.0, 2.0)
    """
    cov = _ridge(covariance(mean, second_moment))
    root, _ = sqrtm_newton_schulz(cov)
    return mean, cov, root, tf.linalg.trace(second_moment)


def w2_loss(mean: Any, second_moment: Any, target: tuple[Any, Any, Any, Any]) -> Any:
    """Squared Wasserstein-2 distance between Gaussians fitted to the result's features (``mean`` (batch, C),
    ``second_moment`` (batch, C, C), the Gram matrix) and the style's (``target`` from :func:`w2_target`),
    relative to the style's ``E|x|^2``: a scalar, 0 for equal moments, 1 for zero features (within the ridge's
    W2_EPS).

    ``W2^2 = |mu - mu_s|^2 + tr(C + C_s - 2 (C_s^(1/2) C C_s^(1/2))^(1/2))`` (Dowson & Landau 1982; Givens & Shortt
    1984), both covariances ridge-regularized (W2_EPS), the inner square root's trace by :func:`trace_sqrtm`. As
    crowsonkb/style-transfer-pytorch's StyleLossW2, which matches the style's feature distribution (mean and
    covariance) where the Gram matrix matches only its second raw moment.

    >>> t = w2_target(tf.constant([[1.0, 0.0]]), tf.constant([[[2.0, 0.0], [0.0, 1.0]]]))
    >>> round(float(w2_loss(tf.constant([[1.0, 0.0]]), tf.constant([[[2.0, 0.0], [0.0, 1.0]]]), t)), 4)
    0.0
    >>> round(float(w2_loss(tf.zeros((1, 2)), tf.zeros((1, 2, 2)), t)), 2)  # zero features: (|mu_s|^2 + tr C_s) / 3
    1.0
    """
    target_mean, target_cov, target_root, scale = target
    cov = _ridge(covariance(mean, second_moment))
    inner = target_root @ cov @ target_root
    inner = 0.5 * (inner + tf.linalg.matrix_transpose(inner))  # symmetric, whatever the rounding
    distance = tf.reduce_sum(tf.square(mean - target_mean), axis=-1) + tf.linalg.trace(cov) + \
        tf.linalg.trace(target_cov) - 2.0 * trace_sqrtm(inner)
    return tf.reduce_mean(tf.maximum(distance, 0.0) / (scale + _EPS))


def random_projections(channels: int, seed: Any, dtype: Any = tf.float32) -> Any:
    """``channels`` random unit directions in feature space, as the columns of a (channels, channels) matrix:
    Gaussian, then normalized (uniform on the sphere). ``seed`` is a pair of integers (a stateless seed): the same
    seed gives the same directions on every machine and run, so a seeded run stays deterministic.

    >>> v = random_projections(3, (0, 1))
    >>> [round(float(n), 4) for n in tf.norm(v, axis=0)]
    [1.0, 1.0, 1.0]
    """
    v = tf.random.stateless_normal((channels, channels), seed=tf.constant(seed, tf.int64), dtype=tf.float32)
    return tf.cast(v / tf.norm(v, axis=0, keepdims=True), dtype)


def sorted_projections(features: Any, projections: Any, count: int | None = None) -> Any:
    """The features (batch, H, W, C) of a style projected on the directions (C, P) and sorted per direction:
    (count, P), the values pooled over the batch, resampled to ``count`` quantiles (default: all H*W*batch values)
    by linear interpolation, so a style of any size compares with a result of any size.

    >>> f = tf.constant([[[[3.0], [1.0]], [[2.0], [0.0]]]])  # four values of one channel
    >>> sorted_projections(f, tf.ones((1, 1)))[:, 0].numpy().tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> sorted_projections(f, tf.ones((1, 1)), 2)[:, 0].numpy().tolist()
    [0.5, 2.5]
    """
    values = tf.reshape(features, [-1, tf.shape(features)[-1]]) @ projections
    values = tf.sort(tf.transpose(values), axis=-1)  # (P, n)
    n = tf.shape(values)[-1]
    if count is None:
        return tf.transpose(values)
    # the quantile at q = (i + 1/2) / count, on the n sorted values (value j is the quantile (j + 1/2) / n)
    at = (tf.range(count, dtype=tf.float32) + 0.5) * tf.cast(n, tf.float32) / float(count) - 0.5
    at = tf.clip_by_value(at, 0.0, tf.cast(n - 1, tf.float32))
    low = tf.cast(tf.floor(at), tf.int32)
    high = tf.minimum(low + 1, n - 1)
    frac = tf.cast(at - tf.floor(at), values.dtype)
    out = tf.gather(values, low, axis=-1) * (1.0 - frac) + tf.gather(values, high, axis=-1) * frac
    return tf.transpose(out)


def sliced_wasserstein_loss(features: Any, projections: Any, target: Any) -> Any:
    """Sliced Wasserstein distance (squared, mean over directions) between the result's features (1, H, W, C) and
    a style's, relative to the style's mean square: a scalar, 0 for the same distribution, 1 for zero features.

    ``projections`` (C, P) are unit directions (:func:`random_projections`); ``target`` (H*W, P) the style's
    :func:`sorted_projections` with as many values as the result has locations. The result's projected values
    are sorted and matched in order with the target's (the optimal 1-D transport); the gradient goes back
    through the sort. Heitz et al., "A Sliced Wasserstein Loss for Neural Texture Synthesis" (CVPR 2021), eq. 7.
    A blend of styles is the mixture's quantiles (:func:`nbart.stylelosses.blend_targets`).

    >>> f = tf.constant([[[[3.0], [1.0]]]])
    >>> float(sliced_wasserstein_loss(f, tf.ones((1, 1)), tf.constant([[1.0], [3.0]])))
    0.0
    >>> float(sliced_wasserstein_loss(tf.zeros((1, 1, 2, 1)), tf.ones((1, 1)), tf.constant([[1.0], [3.0]])))
    1.0
    """
    values = sorted_projections(features, projections)
    return tf.reduce_mean(tf.square(values - target)) / (tf.reduce_mean(tf.square(target)) + _EPS)
