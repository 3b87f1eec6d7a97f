"""Deep Dream: gradient ascent on chosen layers' mean activations, over octaves, with jitter and tiling.

The algorithm of the original DeepDream notebook and the TensorFlow tutorial:

- each step computes the gradient of the layers' mean activations with respect to the image, normalizes it by
  its standard deviation and moves the image ``step_size`` along it (pixel values stay in [0, 1]);
- each layer's term is divided by its mean activation at the previous step (a constant for the gradient), so
  every layer contributes its *relative* gain and large-valued layers don't drown small ones; ``layer_weights``
  then mix them;
- octaves run from coarse to full size; the detail a dream added at one octave is upscaled and re-injected into
  the next octave's (sharp) image, as the original does;
- before each step the image is rolled by a random jitter; images larger than ``tile_size`` are split into tiles
  whose gradients are computed one at a time (bounded memory), the random roll hiding the tile seams.

Sign convention (all of nbart): objectives are losses to minimize. A dream's loss is the negative weighted mean
activation, so it falls as the dream grows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from nbart import backbones
from nbart.backbones import Backbone
from nbart.events import Run, StepEvent, Stopped, run_with_notices
from nbart.images import prepare, to_float
from nbart.params import DreamParams, takes

__all__ = ["dream", "dream_run", "octave_sizes"]


def octave_sizes(height: int, width: int, octaves: int, octave_scale: float,
                 min_size: int = 1) -> list[tuple[int, int]]:
    """The (height, width) of each octave, coarse to full, in pixels; octaves smaller than ``min_size`` are skipped."""
    sizes: list[tuple[int, int]] = []
    for i in range(octaves - 1, -1, -1):
        factor = octave_scale ** -i
        size = (max(1, round(height * factor)), max(1, round(width * factor)))
        if min(size) >= min_size and size not in sizes:
            sizes.append(size)
    return sizes or [(height, width)]


def _layer_specs(p: DreamParams, bb: Backbone, notices: list[str]) -> tuple[tuple[tuple[str, int | None], ...], tuple]:
    """The (layer, channel) pairs and weights a run uses; layers the fallback backbone lacks are replaced."""
    layers, weights = p.layers, p.layer_weights
    if bb.name != p.model and layers and not all(spec.partition(":")[0] in bb.layers for spec in layers):
        notices.append(f"layers {', '.join(layers)} don't exist in {bb.name}; using {', '.join(bb.dream_layers)}")
        layers, weights = (), ()
    layers = layers or bb.dream_layers
    weights = weights or (1.0,) * len(layers)
    total = sum(weights)
    return tuple(bb.parse_layer(s) for s in layers), tuple(w / total for w in weights)


def _functions(ext: backbones.Extractor, specs: tuple[tuple[str, int | None], ...]) -> tuple[Any, Any]:
    """The (means, means_and_gradient) pair of one (extractor, layer specs), serving every image size.

    ``means(image)`` gives each chosen layer's mean activation (of one channel, for a 'layer:N' spec);
    ``means_and_gradient(image, coefficients)`` also gives the gradient of ``sum(coefficients * means)`` with
    respect to the image (H, W, 3). The traced functions are keyed by the layers only: the channels enter as a
    tensor, so trying channel after channel of a layer never traces again.
    """
    import tensorflow as tf

    names = tuple(name for name, _ in specs)
    for name, channel in specs:
        if channel is not None and channel >= ext.channels[name]:
            from nbart.params import ParamError

            raise ParamError(f"layer {name} has channels 0..{ext.channels[name] - 1} (got {channel})")
    key = ("dream", names)
    if key not in ext.functions:
        ext.functions[key] = _trace(ext, names)
    means, means_and_gradient = ext.functions[key]
    channels = tf.constant([-1 if channel is None else channel for _, channel in specs], tf.int32)
    return (lambda image: means(image, channels),
            lambda image, coefficients: means_and_gradient(image, coefficients, channels))


def _trace(ext: backbones.Extractor, names: tuple[str, ...]) -> tuple[Any, Any]:
    import tensorflow as tf

    index = [ext.layers.index(name) for name in names]

    def layer_means(image: Any, channels: Any) -> Any:
        activations = ext(image[None])
        out = []
        for k, i in enumerate(index):
            per_channel = tf.reduce_mean(activations[i], axis=[0, 1, 2])
            channel = channels[k]  # -1: the whole layer
            out.append(tf.where(channel < 0, tf.reduce_mean(per_channel),
                                tf.gather(per_channel, tf.maximum(channel, 0))))
        return tf.stack(out)

    image_spec = tf.TensorSpec([None, None, 3], tf.float32)
    channel_spec = tf.TensorSpec([len(names)], tf.int32)

    @tf.function(input_signature=[image_spec, channel_spec])
    def means(image: Any, channels: Any) -> Any:
        return layer_means(image, channels)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([len(names)], tf.float32), channel_spec])
    def means_and_gradient(image: Any, coefficients: Any, channels: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            m = layer_means(image, channels)
            objective = tf.reduce_sum(coefficients * m)
        return m, tape.gradient(objective, image)

    return means, means_and_gradient


def _tiles(length: int, tile: int, min_size: int = 1) -> list[tuple[int, int]]:
    """Split [0, length) into near-equal spans of at most ``tile``; each is at least tile/2 long when split, and
    never shorter than ``min_size`` (the backbone's smallest input), even if a span then exceeds ``tile``."""
    n = max(1, min(math.ceil(length / tile), length // max(1, min_size)))
    edges = [round(i * length / n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _over_tiles(image: Any, tile_size: int, min_size: int, stop: threading.Event | None,
                fn: Any) -> tuple[np.ndarray, list[list[Any]]]:
    """Call ``fn(tile)`` on each tile; return the area-weighted sum of its first output and the rows of its
    second outputs, each weighted by the tile's share of the area. A stop requested between tiles raises
    :class:`Stopped`."""
    height, width = int(image.shape[0]), int(image.shape[1])
    rows, total = [], 0.0
    for y0, y1 in _tiles(height, tile_size, min_size):
        row = []
        for x0, x1 in _tiles(width, tile_size, min_size):
            if stop is not None and stop.is_set():
                raise Stopped
            share = (y1 - y0) * (x1 - x0) / (height * width)
            first, second = fn(image[y0:y1, x0:x1])
            total = total + share * first.numpy()
            row.append(None if second is None else second * share)
        rows.append(row)
    return total, rows


def tiled_means(fn: Any, image: Any, tile_size: int, stop: threading.Event | None = None,
                min_size: int = 1) -> np.ndarray:
    """Layer means of ``image`` (H, W, 3), computed tile by tile when it exceeds ``tile_size`` (bounded memory).

    ``fn`` is a ``means`` function (see :func:`_functions`).
    """
    if int(image.shape[0]) <= tile_size and int(image.shape[1]) <= tile_size:
        return fn(image).numpy()
    return _over_tiles(image, tile_size, min_size, stop, lambda tile: (fn(tile), None))[0]


def tiled_gradient(fn: Any, image: Any, coefficients: Any, tile_size: int, shift: tuple[int, int],
                   stop: threading.Event | None = None, min_size: int = 1) -> tuple[np.ndarray, Any]:
    """Layer means and gradient of ``image`` (H, W, 3), rolled by ``shift`` and computed tile by tile.

    ``fn`` is a ``means_and_gradient`` function (see :func:`_functions`). Images that fit one tile take one call.
    Each tile's means and gradient are weighted by the tile's share of the area, so the result is that of the whole
    image's mean activations, up to what the tile borders hide from each tile. No tile is shorter than ``min_size``.
    A stop requested between tiles raises :class:`Stopped`.
    """
    import tensorflow as tf

    height, width = int(image.shape[0]), int(image.shape[1])
    rolled = tf.roll(image, shift=list(shift), axis=[0, 1]) if any(shift) else image
    if height <= tile_size and width <= tile_size:
        means, gradient = fn(rolled, coefficients)
        means = means.numpy()
    else:
        means, rows = _over_tiles(rolled, tile_size, min_size, stop, lambda tile: fn(tile, coefficients))
        gradient = tf.concat([tf.concat(row, axis=1) for row in rows], axis=0)
    if any(shift):
        gradient = tf.roll(gradient, shift=[-shift[0], -shift[1]], axis=[0, 1])
    return means, gradient


def dream_run(image: Any, params: DreamParams | None = None, **kwargs: Any) -> Run:
    """Start a Deep Dream on ``image`` and return its :class:`~nbart.events.Run` (an iterator of step events).

    ``image`` is anything :func:`nbart.load_image` reads. Parameters come as a :class:`DreamParams` and/or
    keywords (see :func:`dream`). Bad parameters and unreadable images raise before any work; nothing is computed
    until the first event is pulled.
    """
    p = DreamParams.from_kwargs(params, **kwargs)
    resolved = backbones.resolve(p.model, p.weights)
    notices = [resolved.notice] if resolved.notice else []
    bb = resolved.backbone
    start, original = prepare(image, p.max_size, bb.min_size)
    if min(start.size) > round(min(original) * min(1.0, p.max_size / max(original))):  # beyond the downscale
        notices.append(f"image upscaled from {original[0]}x{original[1]} to {start.size[0]}x{start.size[1]} px, "
                       f"the smallest {bb.name} accepts")
    specs, layer_weights = _layer_specs(p, bb, notices)
    sizes = octave_sizes(start.size[1], start.size[0], p.octaves, p.octave_scale, bb.min_size)
    total = len(sizes) * p.steps

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        return _dream_steps(to_float(start), p, resolved, specs, layer_weights, sizes, stop, notices)

    return Run("dream", p, steps, total, start, notices)


def _dream_steps(original: np.ndarray, p: DreamParams, resolved: backbones.Resolved, specs: tuple,
                 layer_weights: tuple, sizes: list[tuple[int, int]], stop: threading.Event,
                 notices: list[str]) -> Iterator[StepEvent]:
    import tensorflow as tf

    t0 = time.perf_counter()
    precision = backbones.resolve_precision(p.precision)
    layer_names = tuple(dict.fromkeys(name for name, _ in specs))
    ext = backbones.extractor(resolved.backbone, resolved.weights, precision, layer_names)
    means_fn, gradient_fn = _functions(ext, specs)
    min_size = resolved.backbone.min_size
    weights = np.asarray(layer_weights, np.float32)
    rng = np.random.default_rng(p.seed)
    full = tf.constant(original)
    full_size = tuple(original.shape[:2])

    def resize(x: Any, size: tuple[int, int]) -> Any:
        return x if tuple(x.shape[:2]) == size else tf.image.resize(x, size, antialias=True)

    def composite(image: Any, base: Any) -> Any:
        """The dream at full size: the sharp original plus the upscaled detail the dream added."""
        if tuple(image.shape[:2]) == full_size:
            return image.numpy()
        return tf.clip_by_value(full + resize(image - base, full_size), 0.0, 1.0).numpy()

    small_originals: dict[tuple[int, int], Any] = {}

    def composite_small(image: Any, base: Any, size: tuple[int, int]) -> Any:
        """:func:`composite` made straight at a preview ``size``: the original and the detail, both resized."""
        if tuple(image.shape[:2]) == full_size:
            return None  # already full size: the event downsizes the full image, which is cheaper
        if size not in small_originals:
            small_originals.clear()
            small_originals[size] = resize(full, size)
        return tf.clip_by_value(small_originals[size] + resize(image - base, size), 0.0, 1.0).numpy()

    step, total, detail, means = 0, len(sizes) * p.steps, None, None
    for octave, size in enumerate(sizes):
        base = resize(full, size)
        image = base if detail is None else tf.clip_by_value(base + resize(detail, size), 0.0, 1.0)
        tiled = max(size) > p.tile_size
        for _ in range(p.steps):
            if stop.is_set():
                return
            shift = tuple(int(s) for s in rng.integers(-p.jitter, p.jitter + 1, size=2)) if p.jitter else (0, 0)
            if tiled:  # move the tile seams to a new random place at every step
                shift = (shift[0] + int(rng.integers(0, p.tile_size)), shift[1] + int(rng.integers(0, p.tile_size)))
            try:
                if means is None:  # tiled too: a big first octave must not run the network on the whole image
                    means = tiled_means(means_fn, image, p.tile_size, stop, min_size)
                # Each layer's weight over its current mean activation: every layer contributes its relative gain.
                coefficients = tf.constant(weights / (np.abs(means) + 1e-3), tf.float32)
                means, gradient = tiled_gradient(gradient_fn, image, coefficients, p.tile_size, shift, stop, min_size)
            except Stopped:
                return
            loss = -float(np.dot(weights, means))
            if not (math.isfinite(loss) and bool(tf.reduce_all(tf.math.is_finite(gradient)))):
                notices.append(f"stopped at step {step + 1}: the loss or gradient became non-finite; "
                               f"kept the last finite image")
                return "failed"
            gradient = gradient / (tf.math.reduce_std(gradient) + 1e-8)
            image = tf.clip_by_value(image + p.step_size * gradient, 0.0, 1.0)
            step += 1
            yield StepEvent(
                step, total, octave, len(sizes), f"octave {octave + 1}/{len(sizes)} · {size[1]}x{size[0]}",
                loss, time.perf_counter() - t0, full_size,
                render=lambda image=image, base=base: composite(image, base), done=step == total,
                metrics={"activation": -loss},
                render_small=lambda size, image=image, base=base: composite_small(image, base, size),
            )
        detail = image - base
    return "completed"


@takes(DreamParams)
def dream(image: Any, params: DreamParams | None = None, **kwargs: Any) -> Image.Image:
    """Deep-dream ``image`` and return the result as a PIL image (a notebook shows it).

    ``image`` is anything :func:`nbart.load_image` reads: a path, URL, ``"sample:grace_hopper"``, bytes, array or
    PIL image. Runs :func:`dream_run` to the end; its notices (such as a fallback to the offline backbone) are
    issued as warnings.
    """
    run = dream_run(image, params, **kwargs)
    return run_with_notices(run)
