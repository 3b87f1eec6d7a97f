"""Masks for spatial control: where a dream or a style applies. A mask is a float32 array (H, W) in [0, 1]:
white (1) = apply, grey = apply partly, black (0) = leave as it is.

Makers (each returns such an array):

- :func:`clusters` / :func:`cluster_labels`: colour clusters of an image by k-means (k chosen by the user) in
  CIELAB, numbered from dark to light, so "the sky" is a cluster a user picks;
- :func:`luminance_range`: the pixels whose luminance lies in a range;
- :func:`rectangle`, :func:`ellipse`, :func:`linear_gradient`: shapes, in fractions of the image's size;
- :func:`from_alpha`: an image's alpha channel (a cut-out made in any editor);
- :func:`invert`, :func:`feather` (Gaussian blur, sigma in pixels), :func:`combine` (union, the maximum).

:func:`load_mask` reads any mask a user gives (a path, URL, ``sample:NAME``, PIL image, array, or a maker's result)
at a run's size: a wrong size is resized (the notice says so); a mask that is all black, or empty, is refused with
one line. How the engine uses masks (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer",
spatial control): see :mod:`nbart.control`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from nbart.errors import ParamError
from nbart.images import ImageError, load_image
from nbart.images.load import open_stored

__all__ = ["clusters", "cluster_labels", "luminance_range", "rectangle", "ellipse", "linear_gradient", "from_alpha",
           "invert", "feather", "combine", "load_mask", "hold_images", "describe", "overlay",
           "naming"]

Size = tuple[int, int]  # (height, width) in pixels


def _size_of(like: Any) -> Size:
    """(height, width) of ``like``: a (height, width) pair, a PIL image, an array, or anything load_image reads."""
    if isinstance(like, (tuple, list)) and len(like) == 2 and all(isinstance(v, (int, np.integer)) for v in like):
        h, w = int(like[0]), int(like[1])
        if h < 1 or w < 1:
            raise ParamError(f"a mask's size must be positive (height, width) in pixels (got {tuple(like)})")
        return h, w
    if isinstance(like, Image.Image):
        return like.size[1], like.size[0]
    if isinstance(like, np.ndarray) and like.ndim >= 2:
        return int(like.shape[0]), int(like.shape[1])
    img = load_image(like)
    return img.size[1], img.size[0]


def _rgb(image: Any, max_size: int | None = None) -> np.ndarray:
    return np.asarray(load_image(image, max_size=max_size), np.float32) / 255.0


def _grid(size: Size) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as fractions of the height and width: (y, x), each (H, W) in (0, 1)."""
    h, w = size
    y = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w
    return np.broadcast_to(y, (h, w)), np.broadcast_to(x, (h, w))


def cluster_labels(image: Any, k: int = 3, seed: int = 0, max_size: int | None = 512) -> np.ndarray:
    """The colour cluster of each pixel of ``image``: int32 (H, W) in 0..k-1, clusters numbered by their mean
    luminance, darkest first, so the numbers mean the same from run to run.

    k-means (:func:`scipy.cluster.vq.kmeans2`, k-means++ start, ``seed``) on the pixels' CIELAB colours (a
    perceptual space: distances match seen differences), fitted on at most 20,000 of them. ``image`` is anything
    :func:`nbart.load_image` reads, downscaled to ``max_size`` first (None: as it is). Raises ParamError unless
    1 <= k <= 16.
    """
    from scipy.cluster.vq import kmeans2, vq
    from skimage.color import rgb2lab

    if not isinstance(k, (int, np.integer)) or not 1 <= k <= 16:
        raise ParamError(f"k (the number of colour clusters) must be an integer in 1..16 (got {k!r})")
    rgb = _rgb(image, max_size)
    lab = rgb2lab(rgb).reshape(-1, 3).astype(np.float64)
    rng = np.random.default_rng(seed)
    sample = lab[rng.choice(len(lab), size=min(len(lab), 20000), replace=False)]
    with warnings.catch_warnings():  # a flat picture has fewer colours than k: an empty cluster is no fault
        warnings.simplefilter("ignore")
        centroids, _ = kmeans2(sample, int(k), minit="++", seed=seed)
    labels, _ = vq(lab, centroids)
    order = np.argsort(centroids[:, 0])  # L*: dark to light
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels].reshape(rgb.shape[:2]).astype(np.int32)


def clusters(image: Any, k: int = 3, keep: int | Sequence[int] = 0, seed: int = 0,
             max_size: int | None = 512) -> np.ndarray:
    """A mask of the pixels of ``image`` whose colour cluster is in ``keep`` (see :func:`cluster_labels`: k
    clusters by k-means, numbered dark to light). (H, W) float32 of 0 and 1, at the image's size (after
    ``max_size``). Raises ParamError for a cluster number outside 0..k-1."""
    labels = cluster_labels(image, k, seed, max_size)
    keep = (keep,) if isinstance(keep, (int, np.integer)) else tuple(keep)
    bad = [c for c in keep if not 0 <= c < k]
    if bad or not keep:
        raise ParamError(f"keep must list clusters in 0..{k - 1} (got {list(keep)})")
    return np.isin(labels, keep).astype(np.float32)


def luminance_range(image: Any, low: float = 0.5, high: float = 1.0, softness: float = 0.0,
                    max_size: int | None = None) -> np.ndarray:
    """A mask of the pixels of ``image`` whose luminance (BT.601, in [0, 1]) lies in [low, high]; ``softness`` (in
    luminance units) ramps the edges linearly instead of cutting them. (H, W) float32 in [0, 1]."""
    if not 0.0 <= low <= high <= 1.0:
        raise ParamError(f"luminance_range needs 0 <= low <= high <= 1 (got low={low}, high={high})")
    if softness < 0:
        raise ParamError(f"softness must be >= 0 (got {softness})")
    y = _rgb(image, max_size) @ np.array([0.299, 0.587, 0.114], np.float32)
    if softness == 0:
        return ((y >= low) & (y <= high)).astype(np.float32)
    return np.clip(np.minimum((y - low) / softness + 1.0, (high - y) / softness + 1.0), 0.0, 1.0).astype(np.float32)


def _fractions(name: str, values: Sequence[float], count: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) != count or not all(np.isfinite(values)):
        raise ParamError(f"{name} must be {count} finite numbers, fractions of the image's size (got {values})")
    return values


def rectangle(size: Any, box: Sequence[float] = (0.25, 0.25, 0.75, 0.75)) -> np.ndarray:
    """A white rectangle on black: ``box`` = (top, left, bottom, right) as fractions of the height and width
    (0..1). ``size`` is (height, width) in pixels or an image whose size to take. (H, W) float32 of 0 and 1."""
    top, left, bottom, right = _fractions("box", box, 4)
    if not (top < bottom and left < right):
        raise ParamError(f"box must be (top, left, bottom, right) with top < bottom and left < right (got {box})")
    y, x = _grid(_size_of(size))
    return ((y >= top) & (y < bottom) & (x >= left) & (x < right)).astype(np.float32)


def ellipse(size: Any, center: Sequence[float] = (0.5, 0.5), radii: Sequence[float] = (0.3, 0.3)) -> np.ndarray:
    """A white ellipse on black: ``center`` = (y, x) and ``radii`` = (vertical, horizontal), as fractions of the
    height and width. ``size`` is (height, width) in pixels or an image. (H, W) float32 of 0 and 1."""
    cy, cx = _fractions("center", center, 2)
    ry, rx = _fractions("radii", radii, 2)
    if ry <= 0 or rx <= 0:
        raise ParamError(f"radii must be > 0 (got {tuple(radii)})")
    y, x = _grid(_size_of(size))
    return (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0).astype(np.float32)


def linear_gradient(size: Any, angle: float = 0.0, start: float = 0.0, end: float = 1.0) -> np.ndarray:
    """A ramp from black to white along the direction ``angle`` (degrees; 0: left to right, 90: top to bottom):
    0 before the fraction ``start`` of the way, 1 after ``end``, linear between. (H, W) float32 in [0, 1]."""
    if not 0.0 <= start < end <= 1.0:
        raise ParamError(f"linear_gradient needs 0 <= start < end <= 1 (got start={start}, end={end})")
    y, x = _grid(_size_of(size))
    a = np.deg2rad(float(angle))
    t = (x - 0.5) * np.cos(a) + (y - 0.5) * np.sin(a)  # position along the direction, centred
    half = 0.5 * (abs(np.cos(a)) + abs(np.sin(a)))  # the corners reach +-half
    t = (t + half) / (2 * half)  # 0..1 from the first corner to the last
    return np.clip((t - start) / (end - start), 0.0, 1.0).astype(np.float32)


def from_alpha(image: Any) -> np.ndarray:
    """The alpha channel of ``image`` as a mask: opaque = apply. ``image``: anything :func:`nbart.load_image`
    reads (a path, ``sample:NAME``, a URL, bytes, a PIL image) with its transparency, or an (H, W, 4) array. (H, W)
    float32 in [0, 1]. Raises ParamError for an image without transparency, ImageError for one that can't be
    read."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 4:
            raise ParamError(f"from_alpha needs an (H, W, 4) array (got shape {image.shape})")
        a = image[..., 3]
        return (a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)).clip(0, 1)
    img = image if isinstance(image, Image.Image) else open_stored(image)
    if "A" not in img.getbands() and "transparency" not in img.info:
        raise ParamError(f"from_alpha: the image has no alpha channel (mode {img.mode}); save it as a PNG with "
                         f"transparency, or use load_mask for a black-and-white mask")
    return np.asarray(img.convert("RGBA"), np.float32)[..., 3] / 255.0


def invert(mask: Any) -> np.ndarray:
    """1 - mask: apply where the mask left alone, and the other way round."""
    return (1.0 - _as_mask(mask)).astype(np.float32)


def feather(mask: Any, sigma: float = 4.0) -> np.ndarray:
    """The mask blurred by a Gaussian of ``sigma`` pixels (:func:`scipy.ndimage.gaussian_filter`), so a dream or a
    style fades in across the edge instead of stopping at it."""
    from scipy.ndimage import gaussian_filter

    if not sigma >= 0:
        raise ParamError(f"sigma must be >= 0 pixels (got {sigma})")
    return np.clip(gaussian_filter(_as_mask(mask), float(sigma), mode="nearest"), 0.0, 1.0).astype(np.float32)


def combine(*masks: Any) -> np.ndarray:
    """The union of masks of one size: their maximum at each pixel."""
    arrays = [_as_mask(m) for m in masks]
    if not arrays or len({a.shape for a in arrays}) != 1:
        raise ParamError(f"combine needs masks of one size (got {[a.shape for a in arrays]})")
    return np.maximum.reduce(arrays)


def _as_mask(mask: Any) -> np.ndarray:
    """A float (H, W) array in [0, 1] from a maker's result or an (H, W) array (bool, uint8, or floats in [0, 1])."""
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        if mask.size == 0:
            raise ParamError(f"the mask is empty (shape {mask.shape})")
        if mask.dtype == bool:
            return mask.astype(np.float32)
        if mask.dtype == np.uint8:
            return mask.astype(np.float32) / 255.0
        if mask.dtype.kind == "f":
            if not np.isfinite(mask).all():
                raise ParamError("the mask holds NaN or infinite values")
            low, high = float(mask.min()), float(mask.max())
            if low < -1e-3 or high > 1 + 1e-3:
                raise ParamError(f"a float mask must hold values in [0, 1] (got {low:.4g}..{high:.4g}); divide by "
                                 f"255 first?")
            return np.clip(mask, 0.0, 1.0).astype(np.float32)
    img = mask if isinstance(mask, Image.Image) else load_image(mask)
    return np.asarray(img.convert("L"), np.float32) / 255.0


def load_mask(source: Any, size: Size | None = None, what: str = "mask") -> tuple[np.ndarray, str | None]:
    """Read a mask and fit it to ``size`` (height, width): returns ((H, W) float32 in [0, 1], notice or None).

    ``source`` is a maker's result or an (H, W) array (bool, uint8, floats in [0, 1]), or anything
    :func:`nbart.load_image` reads (its luminance: white = apply). A mask of another size is resized (bilinear) to
    ``size``, and the notice says so. Raises ParamError, in one line, for a mask that is all black (it would apply
    nowhere) and ImageError for one that can't be read or is empty.
    """
    try:
        mask = _as_mask(source)
    except ParamError as e:
        raise ParamError(f"{what}: {e}") from None
    except ImageError as e:
        raise ImageError(f"{what}: {e}") from None
    notice = None
    if size is not None and mask.shape != tuple(size):
        h, w = size
        notice = (f"{what} resized from {mask.shape[1]}x{mask.shape[0]} to the image's {w}x{h} px"
                  + (" (its shape differs: stretched)" if abs(mask.shape[1] / mask.shape[0] - w / h) > 0.01 else ""))
        img = Image.fromarray(mask, mode="F").resize((w, h), Image.Resampling.BILINEAR)
        mask = np.clip(np.asarray(img, np.float32), 0.0, 1.0)
    if float(mask.max()) < 1.0 / 255:
        raise ParamError(f"{what} is all black, so it applies nowhere: white marks where to apply (masks.invert() "
                         f"swaps the two)")
    return mask, notice


def hold_images(kwargs: dict[str, Any], names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split image-valued keywords from the parameters: for each of ``names`` whose value is not text (an array,
    a PIL image, a maker's result; or a list holding one), the value is kept aside and the parameter gets its
    description (``"<ndarray>"``), which the run's metadata records. Returns (keywords for the params, held)."""
    kwargs, held = dict(kwargs), {}
    for name in names:
        value = kwargs.get(name)
        if value is None or isinstance(value, (str, os.PathLike)):
            if isinstance(value, os.PathLike):
                kwargs[name] = os.fspath(value)
            continue
        held[name] = value
        if isinstance(value, (list, tuple)):
            kwargs[name] = tuple(os.fspath(v) if isinstance(v, (str, os.PathLike)) else describe(v) for v in value)
        else:
            kwargs[name] = describe(value)
    return kwargs, held


def describe(value: Any) -> str:
    """How params and metadata name an image given in code: ``"<ndarray>"``, ``"<Image>"``."""
    return f"<{type(value).__name__}>"


def source_of(name: str, value: Any, held: dict[str, Any]) -> Any:
    """The image a run uses for the parameter ``name`` whose value is ``value``: the one held aside (see
    :func:`hold_images`) or the text (a path, URL, sample). Raises ParamError for a description left in the params
    without its image (a run's params re-used without the image given in code)."""
    if name in held:
        return held[name]
    texts = value if isinstance(value, tuple) else (value,)
    for text in texts:
        if text.startswith("<") and text.endswith(">"):
            raise ParamError(f"{name} {text} was an image given in code; give the image itself as {name}=")
    return value


@contextlib.contextmanager
def naming(name: str) -> Iterator[None]:
    """Word an image error raised inside as the parameter's: ``"guide: no such file: x.jpg"`` (one line that names
    the option, ``guide=`` in code and ``--guide`` on the command line), unless it names it already."""
    try:
        yield
    except (ParamError, ImageError) as e:
        text = " ".join(str(e).split())
        if text.startswith(name):
            raise
        cls = ImageError if isinstance(e, ImageError) else ParamError
        raise cls(f"{name}: {text}") from None


def overlay(image: Any, masks: Sequence[np.ndarray], alpha: float = 0.5) -> Image.Image:
    """``image`` with each mask tinted in its own colour (for a studio or a figure): an RGB PIL image."""
    palette = np.array([[1.0, 0.2, 0.2], [0.2, 0.5, 1.0], [0.2, 0.9, 0.3], [1.0, 0.8, 0.1], [0.8, 0.3, 1.0],
                        [0.1, 0.9, 0.9]], np.float32)
    rgb = _rgb(image)
    out = rgb.copy()
    for i, m in enumerate(masks):
        m = _as_mask(m)
        if m.shape != rgb.shape[:2]:
            m = np.asarray(Image.fromarray(m, mode="F").resize(rgb.shape[1::-1], Image.Resampling.BILINEAR))
        a = alpha * np.clip(m, 0, 1)[..., None]
        out = out * (1 - a) + palette[i % len(palette)] * a
    return Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
