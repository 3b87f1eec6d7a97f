"""The inside view of a run: what the network sees and why the picture changes, step by step, on request.

A consumer asks with :meth:`nbart.events.Run.inside` (before or during a run); from the next step on, each
:class:`~nbart.events.StepEvent` carries a :class:`StepInside` in ``event.inside`` (None while the view is off):

- ``terms``: the loss's terms as contributions to ``event.loss`` (weights included, so they add up to it): a style
  transfer's ``content``, ``style`` and ``tv``; a dream's one per layer (minus its weight times its mean activation);
- ``style_layers`` / ``content_layers`` (style transfer): each layer's contribution to its term; ``gains`` (dream):
  each layer's mean activation, the quantity the dream raises;
- :meth:`StepInside.gradient_map`: the gradient of the loss with respect to the image as a per-pixel magnitude, at a
  preview size: where the optimizer is changing the picture;
- :meth:`StepInside.activation_maps`: the chosen layer's most active channels (:data:`CHANNELS` of them) as small
  maps; :meth:`StepInside.gram_pair` (style transfer): the Gram matrices of a chosen style layer for the picture and
  for the style, on the style's strongest channels.

These come from the step itself: with the view on, the task runs a variant of its traced step that also returns
them (one forward pass, as without the view); with it off, the step is the same traced function as ever and nothing
here runs. Maps and matrices are made small only when a consumer reads them. Sources of the teaching views: the d2l
chapter on style transfer (the loss terms as separate curves), the TensorFlow style-transfer tutorial (total
variation), the DeepDream notebooks (channel galleries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nbart import backbones
from nbart.params import ParamError

__all__ = ["Request", "StepInside", "request", "extractor_for", "top_maps", "CHANNELS", "MAP_SIDE"]

CHANNELS = 8  # the most active channels an activation view shows
MAP_SIDE = 96  # px: the long side an activation map is reduced to (area mean) inside the traced step


@dataclass(frozen=True)
class Request:
    """What an inside view shows: ``layer``, the layer whose activations are shown; ``gram_layer`` (style transfer
    only, else None), the style layer whose Gram matrices are compared."""

    layer: str
    gram_layer: str | None = None


def request(prepared: Any, layer: str | None = None, gram_layer: str | None = None) -> Request:
    """A checked :class:`Request` for a run's ``prepared`` task. ``layer`` defaults to the run's first content layer
    (style transfer) or first dream layer, ``gram_layer`` to the middle style layer; an unknown layer, or a
    ``gram_layer`` that is not one of the run's style layers, raises ParamError naming the choices."""
    bb = prepared.backbone
    style_layers = tuple(getattr(prepared, "style_layers", ()))
    if layer is None:
        layer = (getattr(prepared, "content_layers", ()) or prepared.layers())[0]
    name, _ = bb.parse_layer(str(layer))
    if not style_layers:
        if gram_layer is not None:
            raise ParamError(f"gram_layer is for style transfer only: a dream has no Gram matrices "
                             f"(got {gram_layer!r})")
        return Request(name)
    if gram_layer is None:
        gram_layer = style_layers[len(style_layers) // 2]
    if gram_layer not in style_layers:
        raise ParamError(f"gram_layer must be one of the run's style layers {', '.join(style_layers)} "
                         f"(got {gram_layer!r})")
    return Request(name, gram_layer)


def extractor_for(prepared: Any, layer: str, reuse: tuple[str, ...]) -> tuple[Any, int]:
    """The extractor an inside step runs and where ``layer``'s activations are among its non-Gram outputs.

    ``reuse``: the run's layers whose activations the step already has (content layers, dream layers). If ``layer``
    is one of them, the run's own extractor serves (index into ``reuse``); otherwise the run's layers plus ``layer``
    (the same cached network, cut one layer further where it is deeper), with its activations after ``reuse``.
    """
    if layer in reuse:
        return prepared.extractor, reuse.index(layer)
    ext = backbones.extractor(prepared.backbone, prepared.resolved.weights, prepared.precision,
                              prepared.layers() + (layer,), flip_ahead=prepared.flip_ahead)
    return ext, len(reuse)


def top_maps(activations: Any, k: int = CHANNELS, side: int = MAP_SIDE) -> tuple[Any, Any, Any]:
    """Traced: the ``k`` most active channels of ``activations`` (1, H, W, C) as maps (k, h, w), area-reduced so the
    long side is at most ``side`` (never enlarged); with their channel indices (k,) int32 and mean activations (k,).

    Most active = largest mean activation over the image (as the DeepDream notebooks pick channels to show).
    """
    from nbart.quiet import tensorflow
    tf = tensorflow()

    per_channel = tf.reduce_mean(activations[0], axis=[0, 1])
    k = min(k, int(activations.shape[-1]))
    means, index = tf.math.top_k(per_channel, k=k)
    maps = tf.gather(activations, index, axis=-1)  # (1, H, W, k)
    shape = tf.shape(maps)
    height, width = shape[1], shape[2]
    scale = tf.minimum(1.0, side / tf.cast(tf.maximum(height, width), tf.float32))
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale), tf.int32))
    maps = tf.image.resize(maps, size, method="area")
    return tf.transpose(maps[0], [2, 0, 1]), index, means


@dataclass(eq=False)
class StepInside:
    """The inside view of one step (see the module's docstring). Floats are plain Python floats; the maps are made
    on first call, from tensors the step kept (its gradient, its reduced activations, its Gram matrices)."""

    terms: dict[str, float]
    layer: str | None = None
    style_layers: dict[str, float] = field(default_factory=dict)
    content_layers: dict[str, float] = field(default_factory=dict)
    gains: dict[str, float] = field(default_factory=dict)
    gram_layer: str | None = None
    note: str | None = None  # why a view is missing (a tiled dream has no activation maps)
    gradient: Any = field(default=None, repr=False)  # (H, W, 3) tensor: d loss / d image at the step's image
    maps: tuple[Any, Any, Any] | None = field(default=None, repr=False)  # top_maps' output
    grams: tuple[Any, Any] | None = field(default=None, repr=False)  # (picture, style) Gram (1, C, C) of gram_layer

    def gradient_map(self, max_size: int = 384) -> np.ndarray:
        """Per-pixel magnitude of the gradient (the L2 norm over RGB of d loss / d pixel), float32 (h, w), its long
        side at most ``max_size`` px (area mean of the step's size; never enlarged). Units: loss per pixel value."""
        from nbart.quiet import tensorflow
        tf = tensorflow()

        g = tf.convert_to_tensor(self.gradient, tf.float32)
        magnitude = tf.sqrt(tf.reduce_sum(tf.square(g), axis=-1, keepdims=True))
        height, width = int(g.shape[0]), int(g.shape[1])
        scale = min(1.0, max_size / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if size != (height, width):
            magnitude = tf.image.resize(magnitude, size, method="area")
        return magnitude.numpy()[..., 0]

    def activation_maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``layer``'s most active channels: maps (k, h, w) float32, channel indices (k,) int and their mean
        activations (k,), strongest first. Raises ValueError where the step has none (see ``note``)."""
        if self.maps is None:
            raise ValueError(self.note or "this step has no activation maps")
        maps, index, means = self.maps
        return np.asarray(maps), np.asarray(index), np.asarray(means)

    def gram_pair(self, channels: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The Gram matrices of ``gram_layer`` for the picture and for the style, restricted to the style's
        ``channels`` strongest channels (largest diagonal: mean squared activation): (n, n), (n, n) float32 and the
        channel indices (n,), strongest first. Raises ValueError for a dream."""
        if self.grams is None:
            raise ValueError("Gram matrices are shown for style transfer only")
        picture, style = (np.asarray(g)[0] for g in self.grams)
        order = np.argsort(-np.diag(style), kind="stable")[:channels]
        pick = np.ix_(order, order)
        return picture[pick], style[pick], order
