"""A dream's sizes (its octaves, pure: :mod:`nbart.cost` plans with them too) and the tiled evaluation of its layer
means and gradient: images larger than a tile are split into near-equal tiles whose results are computed one at a
time (bounded memory) and combined, weighted by each tile's area, as the TensorFlow Deep Dream tutorial's
``get_tiled_gradients`` does. A stop requested between tiles raises :class:`~nbart.events.Stopped`."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from nbart.events import Stopped

__all__ = ["octave_sizes", "tiles", "tiled_means", "tiled_gradient"]


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


def tiles(length: int, tile: int, min_size: int = 1) -> list[tuple[int, int]]:
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
    ys, xs = tiles(height, tile_size, min_size), tiles(width, tile_size, min_size)
    report = getattr(stop, "report", None)  # a Run's Control: the front-end shows tiles done / tiles
    if report is not None:
        report(0, len(ys) * len(xs))
    for y0, y1 in ys:
        row = []
        for x0, x1 in xs:
            if stop is not None and stop.is_set():
                raise Stopped
            share = (y1 - y0) * (x1 - x0) / (height * width)
            first, second = fn(image[y0:y1, x0:x1])
            total = total + share * first.numpy()
            row.append(None if second is None else second * share)
            if report is not None:
                report(len(rows) * len(xs) + len(row), len(ys) * len(xs))
        rows.append(row)
    return total, rows


def tiled_means(fn: Any, image: Any, tile_size: int, stop: threading.Event | None = None,
                min_size: int = 1) -> np.ndarray:
    """Layer means of ``image`` (H, W, 3), computed tile by tile when it exceeds ``tile_size`` (bounded memory).

    ``fn`` is a ``means`` function (see :func:`nbart.deepdream.traced_functions`).
    """
    if int(image.shape[0]) <= tile_size and int(image.shape[1]) <= tile_size:
        return fn(image).numpy()
    return _over_tiles(image, tile_size, min_size, stop, lambda tile: (fn(tile), None))[0]


def tiled_gradient(fn: Any, image: Any, coefficients: Any, tile_size: int, shift: tuple[int, int],
                   stop: threading.Event | None = None, min_size: int = 1) -> tuple[np.ndarray, Any]:
    """Layer means and gradient of ``image`` (H, W, 3), rolled by ``shift`` and computed tile by tile.

    ``fn`` is a ``means_and_gradient`` function (see :func:`nbart.deepdream.traced_functions`). Images that fit one
    tile take one call. Each tile's means and gradient are weighted by the tile's share of the area, so the result
    is that of the whole image's mean activations, up to what the tile borders hide from each tile. No tile is
    shorter than ``min_size``. A stop requested between tiles raises :class:`Stopped`.
    """
    from nbart.quiet import tensorflow
    tf = tensorflow()

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
