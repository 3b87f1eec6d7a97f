"""Creative control inside the traced steps: masks (spatial control) and guided dreams.

- Masked style transfer (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, "Controlling Perceptual Factors in
  Neural Style Transfer", section 4, spatial control with guided Gram matrices): each region ``r`` has a mask
  ``T_r`` (H, W) over the output; at each style layer it is resized to the layer's grid and the region's Gram
  matrix is that of the features weighted by it, ``G_r = (T_r F)^T (T_r F) / sum(T_r^2)`` (see
  :func:`nbart.objectives.masked_gram`), matched to its own style's Gram. A region's style has no say outside its
  mask, so regions do not bleed into each other; the content loss still holds everywhere, so where every mask is
  black the picture stays the content.
- Masked dream: each layer's mean activation is taken over the mask resized to that layer's grid (a weighted mean),
  and the step in pixels is multiplied by the mask (grey = a partial step, black = unchanged).
- Guided dream (the original DeepDream notebook's ``objective_guide``, Mordvintsev, Olah & Tyka 2015): at each
  position the layer's feature vector ``x`` is matched to the guide image's feature vector ``y`` with the largest
  dot product, and the objective is the mean of those dot products: the dream grows the guide's features.

The mask rides along as a fourth channel of the image (H, W, 4), so the dream's jitter (roll) and tiles move it
with the pixels; :mod:`nbart.tiling` needs no change. Functions are traced once per extractor and layers, for every
image size and number of regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nbart import backbones

__all__ = ["style_masked_loss", "dream_functions", "guide_features"]


def _resize_mask(tf: Any, mask: Any, shape: Any) -> Any:
    """Masks (R, H, W) resized to a layer's (h, w) grid: antialiased bilinear (a weighted average going down)."""
    return tf.image.resize(mask[..., None], shape, method="bilinear", antialias=True)[..., 0]


def style_masked_loss(ext: backbones.Extractor, n_content: int, n_style: int) -> Any:
    """The traced ``loss_and_gradient(image (H, W, 3), content_targets, region_targets, masks (R, H, W),
    region_weights (R,), loss_weights (content, style, tv), style_layer_weights (n_style,)) -> (loss, parts,
    gradient)`` of a masked style transfer. ``region_targets`` holds one (R, C, C) tensor per style layer (region
    r's target Gram); ``masks`` are in [0, 1] at the image's size; ``region_weights`` sum to 1. The style part is
    the weighted mean over regions of :func:`nbart.objectives.style_loss` between the region's guided Gram and its
    target, so ``style_weight`` means what it does without masks. Memory: the plain activations are kept (the Gram
    junctions of :mod:`nbart.grams` are not used), plus R weighted copies of each style layer's."""
    key = ("style-masked", n_content, n_style)
    if key in ext.functions:
        return ext.functions[key]
    from nbart import objectives
    from nbart.executor import SingleThreaded
    from nbart.quiet import tensorflow
    tf = tensorflow()

    content_specs = [tf.TensorSpec([1, None, None, ext.channels[name]], tf.float32)
                     for name in ext.layers[:n_content]]
    region_specs = [tf.TensorSpec([None, ext.channels[name], ext.channels[name]], tf.float32)
                    for name in ext.layers[n_content:]]

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32), content_specs, region_specs,
                                  tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None], tf.float32),
                                  tf.TensorSpec([3], tf.float32), tf.TensorSpec([n_style], tf.float32)],
                 autograph=False)
    def loss_and_gradient(image: Any, content_targets: Any, region_targets: Any, masks: Any, region_weights: Any,
                          weights: Any, style_layer_weights: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            outputs = ext(image[None])
            content = tf.add_n([objectives.content_loss(f, t) for f, t in zip(outputs[:n_content], content_targets)])
            content = content / n_content
            terms = []
            for f, targets, w in zip(outputs[n_content:], region_targets, tf.unstack(style_layer_weights)):
                grams = objectives.masked_gram(f, _resize_mask(tf, masks, tf.shape(f)[1:3]))
                per_region = tf.reduce_mean(tf.square(grams - targets), axis=[1, 2]) / (
                    tf.reduce_mean(tf.square(targets), axis=[1, 2]) + 1e-12)
                terms.append(w * tf.reduce_sum(region_weights * per_region))
            style = tf.add_n(terms)
            tv = objectives.total_variation(image)
            parts = tf.stack([content, style, tv])
            total = tf.reduce_sum(weights * parts)
        return total, parts, tape.gradient(total, image)

    ext.functions[key] = SingleThreaded(loss_and_gradient)
    return ext.functions[key]


def guide_features(ext: backbones.Extractor, names: tuple[str, ...], guide: np.ndarray) -> list[Any]:
    """The guide image's (H, W, 3 in [0, 1]) feature vectors at each of ``names``: one (positions, C) float32
    tensor per layer, for :func:`dream_functions`."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    outputs = ext(tf.constant(guide[None], tf.float32))
    return [tf.reshape(outputs[ext.layers.index(name)], [-1, ext.channels[name]]) for name in names]


def dream_functions(ext: backbones.Extractor, specs: tuple[tuple[str, int | None], ...],
                    guides: list[Any] | None) -> tuple[Any, Any]:
    """The (means, means_and_gradient) pair of a masked and/or guided dream, as
    :func:`nbart.deepdream.traced_functions` gives for a plain one, but on images (H, W, 4) whose fourth channel is
    the mask in [0, 1]: ``means(image4)`` -> each layer's mask-weighted mean activation (or, with ``guides``, mean
    best-match dot product with the guide's features), ``means_and_gradient(image4, coefficients)`` -> also the
    gradient of ``sum(coefficients * means)`` with respect to the image (H, W, 4; the mask's channel is 0)."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    names = tuple(name for name, _ in specs)
    guided = guides is not None
    key = ("dream-control", names, guided)
    if key not in ext.functions:
        ext.functions[key] = _trace_dream(tf, ext, names, guided)
    means, means_and_gradient = ext.functions[key]
    channels = np.asarray([-1 if channel is None else channel for _, channel in specs], np.int32)
    if guides is None:
        guides = [np.zeros((1, ext.channels[name]), np.float32) for name in names]
    return (lambda image: means(image, channels, guides),
            lambda image, coefficients: means_and_gradient(image, coefficients, channels, guides))


def _trace_dream(tf: Any, ext: backbones.Extractor, names: tuple[str, ...], guided: bool) -> tuple[Any, Any]:
    index = [ext.layers.index(name) for name in names]

    def objective(image4: Any, channels: Any, guides: Any) -> Any:
        image, mask = image4[..., :3], image4[..., 3]
        activations = ext(image[None])
        out = []
        for k, i in enumerate(index):
            a = activations[i][0]  # (h, w, C)
            if guided:  # objective_guide: each position's best-matching guide vector, the match held constant
                x = tf.reshape(a, [-1, tf.shape(a)[-1]])
                best = tf.argmax(tf.stop_gradient(tf.matmul(x, guides[k], transpose_b=True)), axis=1)
                per_position = tf.reshape(tf.reduce_sum(x * tf.gather(guides[k], best), axis=1), tf.shape(a)[:2])
            else:
                channel = channels[k]  # -1: the whole layer
                per_position = tf.where(channel < 0, tf.reduce_mean(a, axis=-1),
                                        tf.gather(a, tf.maximum(channel, 0), axis=-1))
            m = _resize_mask(tf, mask[None], tf.shape(a)[:2])[0]
            out.append(tf.reduce_sum(m * per_position) / (tf.reduce_sum(m) + 1e-6))
        return tf.stack(out)

    image_spec = tf.TensorSpec([None, None, 4], tf.float32)
    channel_spec = tf.TensorSpec([len(names)], tf.int32)
    guide_specs = [tf.TensorSpec([None, ext.channels[name]], tf.float32) for name in names]

    # autograph off, as nbart.deepdream's: no tensor-dependent Python control flow (``guided`` is a Python bool)
    @tf.function(input_signature=[image_spec, channel_spec, guide_specs], autograph=False)
    def means(image4: Any, channels: Any, guides: Any) -> Any:
        return objective(image4, channels, guides)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([len(names)], tf.float32), channel_spec, guide_specs],
                 autograph=False)
    def means_and_gradient(image4: Any, coefficients: Any, channels: Any, guides: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image4)
            m = objective(image4, channels, guides)
            total = tf.reduce_sum(coefficients * m)
        return m, tape.gradient(total, image4)

    return means, means_and_gradient
