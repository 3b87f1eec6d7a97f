"""Image I/O on Pillow: load anything a user may hand us as RGB, fit it to a size, and save atomically.

Everything the engine sees is an RGB ``PIL.Image`` (or its float32 array in ``[0, 1]``); everything odd about an
input (EXIF rotation, transparency, CMYK, 16-bit, palettes, animation) is dealt with here, once.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import io
import json
import os
import pathlib
import re
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from nbart.errors import ImageError

__all__ = [
    "ImageError", "load_image", "prepare", "sample_names", "fit", "to_float", "to_uint8", "save_image", "save_gif",
    "read_params", "folder_problem",
]

URL_TIMEOUT = 15.0  # seconds, for the whole download (a server that drips bytes can't hold a run forever)
URL_MAX_BYTES = 50 * 1024 * 1024
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_DATA = pathlib.Path(__file__).parent / "data"
_SAMPLES = {
    "grace_hopper": "Grace Hopper, photo bundled with matplotlib",
    "starry_night": "Vincent van Gogh, The Starry Night (1889), public domain",
    "the_scream": "Edvard Munch, The Scream (1893), public domain",
}


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


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (some decoders' messages span several)."""
    return " ".join(str(error).split()) or type(error).__name__


def load_image(source: Any, max_size: int | None = None, min_size: int = 1) -> Image.Image:
    """Load ``source`` as an RGB image.

    ``source`` may be a path, ``"sample:NAME"`` (see :func:`sample_names`), an http(s) URL (fetched within 15 s,
    at most 50 MB), bytes, a binary file object, a numpy array (HxW, HxWx1, HxWx3 or HxWx4, or a batch of one;
    uint8, uint16, bool, or floats in [0, 1]) or a PIL image. EXIF orientation is applied, transparency is
    composited on white, animations give their first frame, 16-bit, CMYK and Lab pictures are converted.
    With ``max_size`` (pixels) the long side is downscaled to at most that; with ``min_size`` the short side is
    upscaled to at least that. Raises :class:`ImageError` with a one-line reason.
    """
    return prepare(source, max_size, min_size)[0]


def prepare(source: Any, max_size: int | None = None, min_size: int = 1, what: str = "image",
            advice: str = "crop it or raise max_size") -> tuple[Image.Image, tuple[int, int]]:
    """:func:`load_image`, also returning the picture's own size (width, height), upright, before any scaling.

    The front-ends use that size in notices such as "upscaled from 16x16 to 75x75 px". ``what`` and ``advice``
    word the error for a picture too thin to fit (see :func:`fit`).
    """
    if isinstance(source, Image.Image):
        img, scale = _normalize(source, "the image"), 1.0
    elif _is_array(source):
        img, scale = from_array(source), 1.0
    else:
        img, scale = _open(source, max_size)
    original = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
    return fit(img, max_size, min_size, original=original, what=what, advice=advice), original


def _is_array(source: Any) -> bool:
    return isinstance(source, np.ndarray) or (
        hasattr(source, "__array__") and not isinstance(source, (str, bytes, bytearray, memoryview, os.PathLike))
    )


def _open(source: Any, max_size: int | None) -> tuple[Image.Image, float]:
    """Decode a path, sample, URL, bytes or file object; return the upright RGB image and the scale it was decoded
    at (big JPEGs decode at a fraction of their size)."""
    name = _describe(source)
    own_file = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = "the image data"
        data: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(source))
        if text.startswith("sample:"):
            data = own_file = open(sample_path(text[len("sample:"):]), "rb")  # noqa: SIM115 (closed below)
        elif text.lower().startswith(("http://", "https://")):
            data = io.BytesIO(_fetch(text))
        else:
            data = own_file = _open_file(text)
    elif hasattr(source, "read"):
        data = source
        if not (hasattr(source, "seekable") and source.seekable()):
            data = io.BytesIO(source.read())  # we peek at the start, then Pillow reads it again
    else:
        raise ImageError(
            f"can't read an image from a {type(source).__name__}; give a path, URL, bytes, numpy array or PIL image"
        )
    try:
        return _decode(data, name, max_size)
    finally:
        if own_file is not None:
            own_file.close()


def _open_file(text: str) -> Any:
    path = os.path.expanduser(text)
    try:
        if os.path.isdir(path):
            raise ImageError(f"{text} is a folder, not an image file")
        f = open(path, "rb")  # noqa: SIM115 (the caller closes it)
    except FileNotFoundError:
        raise ImageError(f"no such file: {text}") from None
    except PermissionError:
        raise ImageError(f"can't read {text}: permission denied") from None
    except OSError as e:
        raise ImageError(f"can't read {text}: {e.strerror or _one_line(e)}") from None
    if os.fstat(f.fileno()).st_size == 0 and not f.peek(1):
        f.close()
        raise ImageError(f"{text} is empty (0 bytes)")
    return f


# warnings.catch_warnings swaps process-wide state, so two threads (two studios) must not decode at once.
_DECODE_LOCK = threading.Lock()


def _decode(data: Any, name: str, max_size: int | None) -> tuple[Image.Image, float]:
    start = data.tell()
    head = data.read(512)
    data.seek(start)
    if not head:
        raise ImageError(f"{name} is empty (0 bytes)")
    try:
        with _DECODE_LOCK, warnings.catch_warnings():
            # Decoders warn about what they repair (corrupt EXIF, a short read): noise in a CLI or a studio, where a
            # Python warning prints its source line. The picture either loads or fails with one line.
            warnings.simplefilter("ignore")
            # Pillow warns, then refuses, beyond its pixel limit; we refuse at the warning already.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open_jpeg_drafted(data, max_size) if max_size and head[:3] == b"\xff\xd8\xff" else None
            if img is None:
                data.seek(start)
                img = Image.open(data)
                if max_size and img.format == "JPEG":
                    img.draft("RGB", (max_size, max_size))  # decode big JPEGs at a reduced scale: faster, less memory
            stored_width = img.info.pop("nbart_stored_size", img.size)[0]
            img.load()
            scale = stored_width / img.size[0]
            return _normalize(img, name), scale
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{int(found.group(1)):,} pixels, " if found else ""
        raise ImageError(
            f"{name} is too large to open safely ({pixels}over Pillow's limit of {Image.MAX_IMAGE_PIXELS:,}); "
            f"downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(_not_an_image(name, head)) from None
    except MemoryError:
        raise ImageError(f"{name} is too large to decode in the memory available; downscale it first") from None
    except Exception as e:  # decoders of untrusted files raise many types (OSError, SyntaxError, struct.error, ...)
        raise ImageError(f"{name} is truncated or corrupt ({_one_line(e)})") from None


def _open_jpeg_drafted(data: Any, max_size: int) -> Image.Image | None:
    """A baseline JPEG, opened past Image.open's pixel check and set to decode at the smallest DCT scale that still
    covers ``max_size``: a 200-megapixel phone photo then decodes at 1/8 scale, within Pillow's limit, which is
    checked on the decoded size. Progressive JPEGs (libjpeg keeps their full-size coefficients in memory) and
    anything unusual return None and go through Image.open and its limit."""
    try:
        img = JpegImagePlugin.JpegImageFile(data)
    except Exception:
        return None
    if img.info.get("progressive") or img.info.get("progression") or img.mode not in ("RGB", "L", "CMYK"):
        return None
    stored = img.size
    img.draft("RGB", (max_size, max_size))
    pixels = img.size[0] * img.size[1]
    if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombWarning(f"Image size ({stored[0] * stored[1]} pixels) exceeds the limit")
    img.info["nbart_stored_size"] = stored
    return img


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def _not_an_image(name: str, head: bytes) -> str:
    """Say what a file Pillow can't identify actually holds: the usual suspects are web pages, text and iPhone
    HEIC photos."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return f"{name} is not an image file Pillow can read: it is a HEIC/HEIF photo; export it as JPEG"
        if brand in (b"avif", b"avis"):
            return f"{name} is not an image file this Pillow can read: it is an AVIF image; export it as JPEG or PNG"
        return f"{name} is not an image file: it is a video or other media file"
    if text.startswith(b"%pdf"):
        return f"{name} is not an image file: it is a PDF document; export the page as PNG or JPEG"
    if b"<svg" in text:
        return f"{name} is not an image file Pillow can read: it is an SVG drawing; export it as PNG"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")) or b"<html" in text:
        return f"{name} is not an image file: it is an HTML web page; save the picture itself, not the page"
    if _looks_like_text(head):
        return f"{name} is not an image file: it holds text"
    return (f"{name} is not an image file Pillow can read (it starts with bytes {head[:8].hex(' ')}); "
            f"use JPEG, PNG, GIF, WebP, BMP or TIFF")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # a character cut at the end of the sample
    return True


def _fetch(url: str) -> bytes:
    deadline = time.monotonic() + URL_TIMEOUT
    request = urllib.request.Request(url, headers={"User-Agent": "nbart"})
    too_slow = f"{url} did not answer within {URL_TIMEOUT:g} s"
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response:
            kind = response.headers.get_content_type()
            if kind.startswith("text/"):
                raise ImageError(f"{url} returned a web page ({kind}), not an image; use the image's own address")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > URL_MAX_BYTES:
                raise ImageError(f"{url} is larger than {URL_MAX_BYTES // 2**20} MB")
            chunks, size = [], 0
            # read1 returns what has arrived, so the deadline also stops a server that sends a byte at a time
            while chunk := response.read1(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > URL_MAX_BYTES:
                    raise ImageError(f"{url} is larger than {URL_MAX_BYTES // 2**20} MB")
                if time.monotonic() > deadline:
                    raise ImageError(f"{url} did not send the whole image within {URL_TIMEOUT:g} s")
    except ImageError:
        raise
    except TimeoutError:
        raise ImageError(too_slow) from None
    except urllib.error.HTTPError as e:
        raise ImageError(f"can't download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):
            raise ImageError(too_slow) from None
        raise ImageError(f"can't download {url}: {_one_line(reason) if isinstance(reason, BaseException) else reason}"
                         ) from None
    data = b"".join(chunks)
    if not data:
        raise ImageError(f"{url} returned nothing (0 bytes)")
    return data


def _normalize(img: Image.Image, name: str) -> Image.Image:
    """Any Pillow image -> upright RGB: first frame, EXIF orientation, alpha on white, 16-bit/CMYK/Lab converted."""
    try:
        return _to_rgb(img)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(f"{name} is too large to convert in the memory available; downscale it first") from None
    except Exception as e:  # a lazily loaded PIL image decodes here; colour conversions fail on odd modes
        raise ImageError(f"{name} can't be converted to RGB (mode {img.mode}): {_one_line(e)}") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    # is_animated, not n_frames: counting a GIF's frames decodes all of them
    if getattr(img, "is_animated", False) and img.tell() != 0:
        img.seek(0)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not cost the picture: keep it unrotated
        pass
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img), mode), "L").convert("RGB")
    if mode == "LAB":
        transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                            "LAB", "RGB")
        return ImageCms.applyTransform(img, transform)
    if mode == "La":  # premultiplied; Pillow converts it to LA only
        img, mode = img.convert("LA"), "LA"
    if mode in ("RGBA", "LA", "PA", "RGBa") or ("transparency" in img.info and mode in ("P", "L", "RGB")):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _scale_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """High bit-depth grey values to 0..255, by the mode: 16-bit scales by 1/257 (65535 -> 255).

    Modes I (32-bit) and F (float) carry no range, so it is read from the values: floats within [0, 1] scale by
    255; values within 0..255 are kept; within 0..65535 they are taken as 16-bit; beyond, scaled to their maximum.
    """
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if mode.startswith("I;16"):
        a = a / 257.0
    elif a.size:
        low, high = float(a.min()), float(a.max())
        if mode == "F" and low >= 0 and high <= 1:
            a = a * 255.0
        elif low >= 0 and high <= 255:
            pass
        elif low >= 0 and high <= 65535:
            a = a / 257.0
        else:
            a = (a - min(low, 0.0)) * (255.0 / max(high - min(low, 0.0), 1e-12))
    return np.clip(a, 0, 255).round().astype(np.uint8)


_ARRAY_SHAPES = "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"


def from_array(array: Any) -> Image.Image:
    """An RGB image from an HxW, HxWx1, HxWx3 or HxWx4 array (or a batch of one) of uint8, uint16, bool, or floats
    in [0, 1]."""
    try:
        a = np.asarray(array)
    except Exception as e:
        raise ImageError(f"can't read an array from a {type(array).__name__}: {_one_line(e)}") from None
    shape = a.shape
    if a.ndim == 4 and a.shape[0] == 1:  # a batch of one, as models return
        a = a[0]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        hint = "; channels first? use array.transpose(1, 2, 0)" if a.ndim == 3 and a.shape[0] in (1, 3, 4) else ""
        raise ImageError(f"array must have shape {_ARRAY_SHAPES} (got {shape}){hint}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"array is empty (shape {shape})")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("array holds NaN or infinite values")
        low, high = float(a.min()), float(a.max())
        if low < -1e-3 or high > 1 + 1e-3:  # a rounding error's overshoot is clipped, not refused
            raise ImageError(f"float arrays must hold values in [0, 1] (got {low:.6g}..{high:.6g}); "
                             f"divide by 255 first?")
        a = (np.clip(a, 0, 1) * 255.0).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        hint = "; use array.astype(np.uint8) if its values are 0..255" if a.dtype.kind in "iu" else ""
        raise ImageError(f"array dtype must be uint8, uint16, bool or float (got {a.dtype}){hint}")
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[-1] == 3 else "RGBA")
    return _normalize(Image.fromarray(np.ascontiguousarray(a), mode), "the array")


def fit(img: Image.Image, max_size: int | None = None, min_size: int = 1, original: tuple[int, int] | None = None,
        what: str = "image", advice: str = "crop it or raise max_size") -> Image.Image:
    """Downscale so the long side is at most ``max_size``; upscale so the short side is at least ``min_size``.

    Sizes in pixels. Raises :class:`ImageError` when both can't hold (an image too thin for the backbone);
    ``original`` is the size the message reports (default: the image's), ``what`` names the picture and
    ``advice`` ends the message.
    """
    w, h = img.size
    scale = 1.0
    if max_size and max(w, h) > max_size:
        scale = max_size / max(w, h)
    if min(w, h) * scale < min_size and min_size > 1:  # (a 1 px minimum is met by rounding up, below)
        scale = min_size / min(w, h)
        if max_size and max(w, h) * scale > max_size:
            ow, oh = original or (w, h)
            raise ImageError(
                f"{what} is too thin: {ow}x{oh} px can't fit within {max_size} px with its short side at least "
                f"{min_size} px; {advice}"
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


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why no file can be written at ``path`` (its folder is missing, not a folder, or not writable), or None.

    Checked before a run so a long run can't end unable to save. Root passes the access check on any folder not on
    a read-only file system; a write that still fails is reported by :func:`save_image`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        if not os.path.isdir(folder):
            os.stat(folder)  # tells "missing" from "not a folder" and "no permission"
            return f"{folder} is not a folder"
    except FileNotFoundError:
        return f"folder {folder} does not exist"
    except NotADirectoryError:
        return f"{folder} is not a folder"
    except PermissionError:
        return f"folder {folder} can't be reached (permission denied)"
    except OSError as e:
        return f"folder {folder}: {e.strerror or _one_line(e)}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable"
    if os.path.isdir(path):
        return f"{path} is a folder"
    return None


def _atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (full disk, read-only folder, interrupted run) leaves no partial file behind and any old file intact.
    """
    path = os.fspath(path)
    problem = folder_problem(path)
    if problem:
        raise ImageError(f"can't write {path}: {problem}")
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{threading.get_ident():x}.tmp")
    created = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # 0o666 & ~umask, like a normal file
        created = True
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        created = False
    except OSError as e:
        raise ImageError(f"can't write {path}: {e.strerror or _one_line(e)}") from None
    except ValueError as e:  # an encoder refusing the image (a size beyond the format's limit)
        raise ImageError(f"can't write {path}: {_one_line(e)}") from None
    finally:
        if created:
            with contextlib.suppress(OSError):
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
