"""The style term of a style-transfer step for each ``style_loss``: what the style's features are summarized by,
how several styles blend, and the per-layer loss inside the traced step.

- ``gram``: Gram matrices (Gatys et al. 2016); a blend is the weighted mean of the Grams.
- ``w2``: mean and second raw moment (the Gram) per layer, compared as Gaussians by the Wasserstein-2 distance
  (crowsonkb/style-transfer-pytorch); a blend is the weighted mean of both moments (the mixture's moments).
- ``sliced_wasserstein``: the features themselves, projected on random directions and sorted (Heitz et al., CVPR
  2021); a blend is the mixture's quantiles: each style contributes sorted values in proportion to its weight.
  The directions are drawn once per stage (size) from the run's seed, the stage and the layer
  (``tf.random.stateless_normal``): the same seed gives the same run, and within a stage the loss is one fixed
  function, as L-BFGS's line search needs.

The losses themselves are in :mod:`nbart.objectives`; this module is the plumbing between them and
:mod:`nbart.styletransfer`. Each per-layer loss is relative (0 at the style, 1 for zero features), so
``style_weight`` means the same kind of thing for each, though not the same strength: see README "Style losses".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["target_specs", "summaries", "blend_targets", "layer_losses"]


def target_specs(style_loss: str, channels: Sequence[int]) -> list:
    """The ``tf.TensorSpec`` s of the style targets the traced step takes, one entry per style layer."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    if style_loss == "gram":
        return [tf.TensorSpec([1, c, c], tf.float32) for c in channels]
    if style_loss == "w2":  # (mean, covariance, covariance^(1/2), E|x|^2), see objectives.w2_target
        return [(tf.TensorSpec([1, c], tf.float32), tf.TensorSpec([1, c, c], tf.float32),
                 tf.TensorSpec([1, c, c], tf.float32), tf.TensorSpec([1], tf.float32)) for c in channels]
    if style_loss == "sliced_wasserstein":  # (directions, sorted target projections)
        return [(tf.TensorSpec([c, c], tf.float32), tf.TensorSpec([None, c], tf.float32)) for c in channels]
    raise ValueError(style_loss)


def summaries(style_loss: str, outputs: Sequence[Any]) -> list:
    """What an image's style-layer activations (each (1, H, W, C) float32) are summarized by, per layer: the Gram
    (gram), ``(mean, gram)`` (w2) or the activations themselves (sliced_wasserstein)."""
    from nbart import objectives

    if style_loss == "gram":
        return [objectives.gram_matrix(f) for f in outputs]
    if style_loss == "w2":
        return [(objectives.feature_mean(f), objectives.gram_matrix(f)) for f in outputs]
    return list(outputs)


def blend_targets(style_loss: str, per_style: Sequence[Sequence[Any]], blend: Sequence[float],
                  result_locations: Sequence[int], seed: int, stage: int) -> list:
    """The style targets of one stage, per layer, from each style's :func:`summaries` (``per_style[s][layer]``)
    blended by the weights ``blend``. ``result_locations[layer]`` is H*W of the result's activations at that layer
    (the number of sorted values sliced_wasserstein compares); ``seed`` and ``stage`` seed its directions."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    from nbart import objectives

    total = float(sum(blend))
    weights = [w / total for w in blend]
    layers = list(zip(*per_style))  # layers[l][s]
    if style_loss == "gram":
        return [objectives.blend_grams(g, blend) for g in layers]
    if style_loss == "w2":
        return [objectives.w2_target(tf.add_n([m * w for (m, _), w in zip(stats, weights)]),
                                     tf.add_n([g * w for (_, g), w in zip(stats, weights)])) for stats in layers]
    targets = []
    for index, (features, n) in enumerate(zip(layers, result_locations)):
        channels = int(features[0].shape[-1])
        directions = objectives.random_projections(channels, (seed, stage * 1000 + index))
        # the mixture's quantiles: n * w sorted values from each style, pooled and sorted again
        counts = _split_count(n, weights)
        parts = [objectives.sorted_projections(f, directions, k) for f, k in zip(features, counts) if k > 0]
        pooled = tf.sort(tf.concat(parts, axis=0), axis=0) if len(parts) > 1 else parts[0]
        targets.append((directions, pooled))
    return targets


def _split_count(n: int, weights: Sequence[float]) -> list[int]:
    """``n`` split in proportion to ``weights`` (largest remainders), summing to exactly ``n``."""
    exact = [n * w for w in weights]
    counts = [int(e) for e in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[:n - sum(counts)]:
        counts[i] += 1
    return counts


def layer_losses(style_loss: str, ext: Any, image: Any, n_content: int, n_style: int,
                 targets: Sequence[Any]) -> tuple[list, list]:
    """Inside the traced step: ``(features of the non-style layers, style losses)`` of ``image`` (1, H, W, 3) for an
    extractor whose layers are the content layers, the style layers, then any others; one relative style loss per
    style layer."""
    from nbart import objectives

    style = range(n_content, n_content + n_style)
    if style_loss == "gram":  # the Gram matrices at the lower memory peak of nbart.grams
        content, grams = ext.features_and_grams(image, style)
        return content, [objectives.style_loss(g, t) for g, t in zip(grams, targets)]
    if style_loss == "w2":
        content, moments = ext.features_and_moments(image, style)
        return content, [objectives.w2_loss(m, g, t) for (m, g), t in zip(moments, targets)]
    outputs = ext(image)  # the features of the other layers too (an inside view's layer follows the style layers)
    return [f for i, f in enumerate(outputs) if i not in style], [
        objectives.sliced_wasserstein_loss(f, d, t) for f, (d, t) in zip(outputs[n_content:], targets)]
