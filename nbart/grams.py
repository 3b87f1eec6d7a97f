"""Gram matrices that cost less memory in the style step's backward pass: the same values and gradients as
:func:`nbart.objectives.gram_matrix` of the float32 activations, through custom gradients.

Why: in a style step the Gram's own backward pass is what sets the peak memory, not its arithmetic.
:func:`gram_of` keeps no float32 copy of bfloat16 activations; :func:`gram_junction` delays the Gram's share of the
gradient until the network's gradient reaches the layer, so the two are summed at once and never held through the
whole backward pass. :meth:`nbart.extractors.Extractor.features_and_grams` is the one place that wires them in.
Measurements: README "Memory" and benchmarks/results/style-memory.txt. Tests: tests/test_objectives.py compares
values and gradients with autodiff of the plain expression, eager and traced, in float32 and bfloat16.
"""

from __future__ import annotations

from typing import Any

from nbart import objectives
from nbart.quiet import tensorflow

tf = tensorflow()

__all__ = ["gram_of", "gram_junction", "layer_junction"]


@tf.autograph.experimental.do_not_convert  # autograph would convert the returned gradient function
@tf.custom_gradient
def gram_of(activations: Any) -> Any:
    """The Gram matrix (batch, C, C), float32, of ``activations`` (batch, H, W, C) of any float dtype.

    The same value and gradient as ``gram_matrix(tf.cast(activations, tf.float32))`` (the gradient within the
    activations' own rounding), but no float32 copy of the activations is kept for the backward pass, nor made in
    it: the gradient is the activations times a small (C, C) matrix, computed in their dtype. Under bfloat16 such a
    copy would be twice the size of the activations themselves, which are kept anyway (the ReLU's gradient needs
    them).
    """
    gram = objectives.gram_matrix(tf.cast(activations, tf.float32))
    return gram, lambda upstream: _gram_gradient(activations, upstream)


def gram_junction(activations: Any) -> tuple[Any, Any]:
    """``(activations, gram_of(activations))`` for a layer whose activations also go on through the network.

    The same values and gradient as passing the activations on and taking :func:`gram_of` beside them, but the
    Gram's share of the gradient (a tensor the size of the activations) is computed only once the network's
    gradient has come back down to this layer, where the two are summed. A gradient op is otherwise free to run as
    soon as its inputs exist, and the Gram's inputs exist right after the loss: the shares of the large early
    layers were then held through the whole backward pass, at its peak. Returns the activations (unchanged values,
    their dtype) and the Gram (batch, C, C) in float32.
    """

    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def junction(a: Any) -> Any:
        gram = objectives.gram_matrix(tf.cast(a, tf.float32))

        def gradient(onward: Any, upstream: Any) -> Any:
            if onward is None:  # the passed-on activations unused: only the Gram's share
                return _gram_gradient(a, upstream)
            with tf.control_dependencies([onward]):  # not before the network's gradient reaches this layer
                return onward + _gram_gradient(a, upstream)

        return (tf.identity(a), gram), gradient

    return junction(activations)


def layer_junction(layer: Any, x: Any, halo: int | None = None, chunks: int = 1) -> tuple[Any, Any]:
    """``(a, gram_of(a))`` for ``a = layer(x)``, a layer whose activations also go on through the network, keeping
    only its input ``x`` for the backward pass: ``a`` is computed again there, when the network's gradient has come
    back down to the layer.

    The same values and gradient (with respect to ``x``) as :func:`gram_junction` of ``layer(x)``. Why: the style
    layers are each their block's first convolution, whose input (the pooled block before it, or the image) is a
    quarter to half the size of its output, or for VGG's ``block1_conv1`` the 3-channel image itself; the
    float32 activations kept otherwise were the largest part of a style step's peak memory. Costs one more
    forward pass of these layers per step. ``layer`` must be a function of ``x`` alone (weights are constants:
    they get no gradient).

    ``halo`` and ``chunks``: for a layer each of whose output rows depends only on the input rows within ``halo``
    of it (a stride-1 convolution with "SAME" padding and a (2 halo + 1)-high kernel, plus its activation; the
    caller vouches for this), the backward pass takes the image in ``chunks`` bands of rows, one after the other:
    the layer again on the band with its halo, the Gram's share and the network's gradient summed there, and the
    band's input gradient. The same gradient up to float rounding; why: otherwise the network's gradient at the
    layer, the activations computed again and the Gram's share (three tensors the size of the activations: 57 MB
    each for VGG's ``block1_conv1`` at 437x512) are held at once, the peak of a float32 style step.
    """

    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def junction(x: Any) -> Any:
        a = layer(x)
        gram = objectives.gram_matrix(tf.cast(a, tf.float32))

        def gradient(onward: Any, upstream: Any, variables: Any = None) -> Any:
            arrived = [g for g in (onward, upstream) if g is not None]
            with tf.control_dependencies(arrived):  # not before the network's gradient reaches this layer
                again = tf.identity(x)
            if halo is not None and chunks > 1:
                dx = _banded_gradient(layer, again, onward, upstream, halo, chunks)
                return dx, [None] * len(variables or ())
            with tf.GradientTape() as tape:
                tape.watch(again)
                a = layer(again)
            total = _gram_gradient(a, upstream) if upstream is not None else None
            if onward is not None:
                total = onward if total is None else onward + total
            dx = tape.gradient(a, again, output_gradients=total)
            return dx, [None] * len(variables or ())

        return (tf.identity(a), gram), gradient

    return junction(x)


def _banded_gradient(layer: Any, x: Any, onward: Any, upstream: Any, halo: int, chunks: int) -> Any:
    """The input gradient of ``layer`` at ``x`` (batch, H, W, C) for the output gradient ``onward`` plus the Gram's
    share (``upstream``), computed band by band of rows (see :func:`layer_junction`).

    Band k covers input rows [r0, r1); their gradient needs the output gradient at rows [r0 - halo, r1 + halo),
    whose activations need the input rows [r0 - 2 halo, r1 + 2 halo): the layer runs on those (its output rows
    within ``halo`` of a cut are wrong, and get no gradient), and only rows [r0, r1) of the band's input gradient are
    kept. Each band waits for the one before (a control dependency), so one band's tensors exist at a time."""
    shape = tf.shape(x)
    height = shape[1]
    mix = None
    if upstream is not None:  # the Gram's gradient is a (mix) per location, for the whole image's locations
        locations = tf.cast(shape[1] * shape[2], tf.float32)
        mix = (upstream + tf.linalg.matrix_transpose(upstream)) / locations
    pieces: list = []
    for k in range(chunks):
        with tf.control_dependencies(pieces[-1:]):  # one band at a time, in order
            r0, r1 = k * height // chunks, (k + 1) * height // chunks
            lo, hi = tf.maximum(r0 - 2 * halo, 0), tf.minimum(r1 + 2 * halo, height)
            band = x[:, lo:hi]
            with tf.GradientTape() as tape:
                tape.watch(band)
                a = layer(band)
            rows = tf.range(lo, hi)
            kept = tf.logical_and(rows >= r0 - halo, rows < r1 + halo)  # right values, and a gradient wanted
            total = onward[:, lo:hi] if onward is not None else tf.zeros_like(a)
            if mix is not None:
                total = total + tf.einsum("bijc,bcd->bijd", a, tf.cast(mix, a.dtype))
            total = tf.where(tf.reshape(kept, [1, -1, 1, 1]), total, tf.zeros([], total.dtype))
            dx = tape.gradient(a, band, output_gradients=total)
            pieces.append(dx[:, r0 - lo:r1 - lo])
    return tf.concat(pieces, axis=1)


def _gram_gradient(activations: Any, upstream: Any) -> Any:
    """The gradient of ``gram_matrix(cast(A, float32))`` for the upstream ``U``: A (U + U^T) / (H W), in A's dtype
    (only the small (C, C) factor is cast down)."""
    shape = tf.shape(activations)
    locations = tf.cast(shape[1] * shape[2], tf.float32)
    mix = (upstream + tf.linalg.matrix_transpose(upstream)) / locations
    return tf.einsum("bijc,bcd->bijd", activations, tf.cast(mix, activations.dtype))
