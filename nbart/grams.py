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


def layer_junction(layer: Any, x: Any) -> tuple[Any, Any]:
    """``(a, gram_of(a))`` for ``a = layer(x)``, a layer whose activations also go on through the network, keeping
    only its input ``x`` for the backward pass: ``a`` is computed again there, when the network's gradient has come
    back down to the layer.

    The same values and gradient (with respect to ``x``) as :func:`gram_junction` of ``layer(x)``. Why: the style
    layers are each their block's first convolution, whose input (the pooled block before it, or the image) is a
    quarter to half the size of its output, or for VGG's ``block1_conv1`` the 3-channel image itself; the
    float32 activations kept otherwise were the largest part of a style step's peak memory. Costs one more
    forward pass of these layers per step. ``layer`` must be a function of ``x`` alone (weights are constants:
    they get no gradient).
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


def _gram_gradient(activations: Any, upstream: Any) -> Any:
    """The gradient of ``gram_matrix(cast(A, float32))`` for the upstream ``U``: A (U + U^T) / (H W), in A's dtype
    (only the small (C, C) factor is cast down)."""
    shape = tf.shape(activations)
    locations = tf.cast(shape[1] * shape[2], tf.float32)
    mix = (upstream + tf.linalg.matrix_transpose(upstream)) / locations
    return tf.einsum("bijc,bcd->bijd", activations, tf.cast(mix, activations.dtype))
