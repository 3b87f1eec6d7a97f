"""Image I/O on Pillow: load anything a user may hand us as RGB, fit it to a size, and save atomically.

Everything the engine sees is an RGB ``PIL.Image`` (or its float32 array in ``[0, 1]``); everything odd about an
input (EXIF rotation, transparency, CMYK, 16-bit, palettes, animation) is dealt with here, once.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pathlib
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

__all__ = [
    "ImageError", "load_image", "sample_names", "fit", "to_float", "to_uint8", "save_image", "save_gif",
    "read_params",
]

URL_TIMEOUT = 15.0  # seconds
URL_MAX_BYTES = 50 * 1024 * 1024
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_DATA = pathlib.Path(__file__).parent / "data"
_SAMPLES = {
    "grace_hopper": "Grace Hopper, photo bundled with matplotlib",
    "starry_night": "Vincent van Gogh, The Starry Night (1889), public domain",
    "the_scream": "Edvard Munch, The Scream (1893), public domain",
}


class ImageError(ValueError):
    """An input can't be read as an image, or an output can't be written; the message says which and why."""


def sample_names() -> tuple[str, ...]:
    """Names of the bundled samples, usable anywhere an image is expected as ``"sample:NAME"``."""
    return tuple(_SAMPLES)


def sample_credit(name: str) -> str:
    """Title, author and licence of a bundled sample."""
    return _SAMPLES[name]


def sample_path(name: str) -> pathlib.Path:
    """The file of a bundled sample."""
    if name not in _SAMPLES:
        raise ImageError(f"unknown sample {name!r}; choose from {', '.join(_SAMPLES)}")
    if name == "grace_hopper":
        spec = importlib.util.find_spec("matplotlib")
        return pathlib.Path(spec.submodule_search_locations[0]) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return _DATA / f"{name}.jpg"


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return type(source).__name__


def load_image(source: Any, max_size: int | None = None) -> Image.Image:
    """Load ``source`` as an RGB image.

    ``source`` may be a path, ``"sample:NAME"`` (see :func:`sample_names`), an http(s) URL (fetched with a
    15 s timeout and a 50 MB cap), bytes, a binary file object, a numpy array (HxW, HxWx1, HxWx3 or HxWx4; uint8,
    uint16, bool, or floats in [0, 1]) or a PIL image. EXIF orientation is applied, transparency is composited on
    white, animations give their first frame. With ``max_size`` (pixels) the long side is downscaled to at most that.
    Raises :class:`ImageError` with a one-line reason.
    """
    if isinstance(source, Image.Image):
        img = _normalize(source, "the image")
    elif isinstance(source, np.ndarray) or (hasattr(source, "__array__") and not isinstance(source, (str, bytes))):
        img = from_array(source)
    else:
        img = _open(source, max_size)
    return fit(img, max_size) if max_size else img


def _open(source: Any, max_size: int | None) -> Image.Image:
    name = _describe(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: Any = io.BytesIO(bytes(source))
        name = "the image data"
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, str) and text.startswith("sample:"):
            data = sample_path(text[len("sample:"):])
        elif isinstance(text, str) and text.lower().startswith(("http://", "https://")):
            data = io.BytesIO(_fetch(text))
        else:
            path = os.path.expanduser(text)
            if not os.path.exists(path):
                raise ImageError(f"no such file: {text}")
            if os.path.isdir(path):
                raise ImageError(f"{text} is a folder, not an image file")
            if os.path.getsize(path) == 0:
                raise ImageError(f"{text} is empty (0 bytes)")
            data = path
    elif hasattr(source, "read"):
        data = source
    else:
        raise ImageError(
            f"can't read an image from a {type(source).__name__}; give a path, URL, bytes, numpy array or PIL image"
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, beyond its pixel limit; we refuse at the warning already.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(data)
            if max_size and img.format == "JPEG":
                img.draft("RGB", (max_size, max_size))  # decode big JPEGs at a reduced scale: faster, less memory
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{name} is too large to open safely (over {Image.MAX_IMAGE_PIXELS:,} pixels, Pillow's limit); "
            f"downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image file Pillow can read (is it HTML or text?)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name} is truncated or corrupt: {e}") from None
    return _normalize(img, name)


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "nbart"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response:
            kind = response.headers.get_content_type()
            if kind.startswith("text/"):
                raise ImageError(f"{url} returned a web page ({kind}), not an image; use the image's own address")
            data = response.read(URL_MAX_BYTES + 1)
    except ImageError:
        raise
    except TimeoutError:
        raise ImageError(f"{url} did not answer within {URL_TIMEOUT:g} s") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):
            raise ImageError(f"{url} did not answer within {URL_TIMEOUT:g} s") from None
        raise ImageError(f"can't download {url}: {reason}") from None
    if len(data) > URL_MAX_BYTES:
        raise ImageError(f"{url} is larger than {URL_MAX_BYTES // 2**20} MB")
    return data


def _normalize(img: Image.Image, name: str) -> Image.Image:
    """Any Pillow image -> upright RGB: first frame, EXIF orientation, alpha on white, 16-bit/CMYK/Lab converted."""
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not cost the picture: keep it unrotated
        pass
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img)), "L").convert("RGB")
    if mode == "LAB":
        transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                            "LAB", "RGB")
        return ImageCms.applyTransform(img, transform)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info) or (
        mode in ("L", "RGB") and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageError(f"{name} has colour mode {mode}, which can't be converted to RGB: {e}") from None


def _scale_to_uint8(a: np.ndarray) -> np.ndarray:
    """High bit-depth grey values to 0..255: 16-bit ranges scale by 1/257, floats in [0, 1] by 255."""
    a = a.astype(np.float64)
    if a.size and np.nanmax(a) <= 1.0 and a.dtype.kind == "f":
        a = a * 255.0
    elif a.size and np.nanmax(a) > 255:
        a = a / 257.0
    return np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)


def from_array(array: Any) -> Image.Image:
    """An RGB image from an HxW, HxWx1, HxWx3 or HxWx4 array of uint8, uint16, bool, or floats in [0, 1]."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(f"array must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (got {a.shape})")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"array is empty (shape {a.shape})")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("array holds NaN or infinite values")
        low, high = float(a.min()), float(a.max())
        if low < 0 or high > 1:
            raise ImageError(f"float arrays must hold values in [0, 1] (got {low:g}..{high:g}); divide by 255 first?")
        a = (a * 255.0).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageError(f"array dtype must be uint8, uint16, bool or float (got {a.dtype})")
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[-1] == 3 else "RGBA")
    return _normalize(Image.fromarray(np.ascontiguousarray(a), mode), "the array")


def fit(img: Image.Image, max_size: int | None = None, min_size: int = 1) -> Image.Image:
    """Downscale so the long side is at most ``max_size``; upscale so the short side is at least ``min_size``.

    Sizes in pixels. Raises :class:`ImageError` when both can't hold (an image too thin for the backbone).
    """
    w, h = img.size
    scale = 1.0
    if max_size and max(w, h) > max_size:
        scale = max_size / max(w, h)
    if min(w, h) * scale < min_size:
        scale = min_size / min(w, h)
        if max_size and max(w, h) * scale > max_size:
            raise ImageError(
                f"image is too thin: {w}x{h} px can't fit within {max_size} px with its short side at least "
                f"{min_size} px; crop it or raise max_size"
            )
    if scale == 1.0:
        return img
    size = (max(min_size, round(w * scale)), max(min_size, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def to_float(img: Image.Image) -> np.ndarray:
    """RGB image -> float32 array (H, W, 3) in [0, 1]."""
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def to_uint8(array: Any) -> np.ndarray:
    """Float array in [0, 1] -> uint8 array, rounded and clipped."""
    return np.clip(np.asarray(array, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (full disk, interrupted run) leaves no partial file behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageError(f"can't write {path}: folder {folder} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{id(write):x}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like a normal file
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise ImageError(f"can't write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_image(img: Any, path: str | os.PathLike, params: dict | None = None, quality: int = 95) -> None:
    """Save an image (PIL or array) as PNG, JPEG or WebP by its suffix, atomically.

    ``params`` (a JSON-friendly dict) is stored in the PNG's text metadata under "nbart" (a comment in JPEG).
    """
    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ImageError(f"output must end in {', '.join(SAVE_FORMATS)} (got {os.fspath(path)!r})")
    img = load_image(img) if not isinstance(img, Image.Image) else img.convert("RGB")
    fmt = SAVE_FORMATS[suffix]
    options: dict[str, Any] = {}
    text = json.dumps(params, sort_keys=True) if params is not None else None
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "nbart")
        if text:
            info.add_text("nbart", text)
        options["pnginfo"] = info
    elif fmt == "JPEG":
        options.update(quality=quality, comment=text or "nbart")
    else:
        options.update(quality=quality)
    _atomic_write(path, lambda f: img.save(f, format=fmt, **options))


def save_gif(frames: Iterable[Any], path: str | os.PathLike, duration_ms: int = 80) -> None:
    """Save frames (PIL images or uint8 arrays) as a looping animated GIF, atomically."""
    images = [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f)) for f in frames]
    if not images:
        raise ImageError("no frames to write to the GIF")
    if pathlib.Path(path).suffix.lower() != ".gif":
        raise ImageError(f"GIF output must end in .gif (got {os.fspath(path)!r})")
    size = images[-1].size
    images = [im.convert("RGB").resize(size) if im.size != size else im.convert("RGB") for im in images]
    _atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                 duration=duration_ms, loop=0))


def read_params(path: str | os.PathLike) -> dict | None:
    """The parameters nbart stored in a PNG it saved, or None."""
    with Image.open(path) as img:
        text = img.info.get("nbart") if hasattr(img, "info") else None
    return json.loads(text) if text else None
