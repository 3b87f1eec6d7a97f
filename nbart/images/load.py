"""Reading pictures: from a path, a sample, a URL, bytes, a file object, an array or a PIL image, as upright RGB.

Decoding is where untrusted input meets Pillow: big JPEGs decode at a reduced scale, files that are not pictures
(web pages, HEIC, PDF, text) are named, and every failure is one :class:`ImageError` line.
"""

from __future__ import annotations

import difflib
import http.client
import io
import os
import re
import threading
import time
import urllib.error
import urllib.request
import warnings
from typing import Any

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from nbart.images.convert import ImageError, fit, from_array, normalize, one_line
from nbart.images.samples import sample_names, sample_path

__all__ = ["load_image", "prepare", "open_stored", "URL_TIMEOUT", "URL_MAX_BYTES"]

URL_TIMEOUT = 15.0  # seconds, for the whole download (a server that drips bytes can't hold a run forever)
URL_MAX_BYTES = 50 * 1024 * 1024


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return type(source).__name__


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
        img, scale = normalize(source, "the image"), 1.0
    elif _is_array(source):
        img, scale = from_array(source), 1.0
    else:
        img, scale = _open(source, max_size)
    original = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
    return fit(img, max_size, min_size, original=original, what=what, advice=advice), original


def open_stored(source: Any) -> Image.Image:
    """The picture of ``source`` as stored: its mode and alpha channel kept (for a mask read from transparency),
    EXIF orientation applied so it lines up with :func:`load_image`'s picture. ``source``: a path, ``"sample:NAME"``,
    an http(s) URL, bytes or a binary file object (the inputs :func:`load_image` reads, arrays and PIL images
    aside). Raises :class:`ImageError` with the same one-line reasons as :func:`load_image`."""
    return _open(source, None, stored=True)[0]


def _is_array(source: Any) -> bool:
    return isinstance(source, np.ndarray) or (
        hasattr(source, "__array__") and not isinstance(source, (str, bytes, bytearray, memoryview, os.PathLike))
    )


def _open(source: Any, max_size: int | None, stored: bool = False) -> tuple[Image.Image, float]:
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
        return _decode(data, name, max_size, stored)
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
        raise ImageError(_missing(text)) from None
    except PermissionError:
        raise ImageError(f"can't read {text}: permission denied") from None
    except OSError as e:
        raise ImageError(f"can't read {text}: {e.strerror or one_line(e)}") from None
    if os.fstat(f.fileno()).st_size == 0 and not f.peek(1):
        f.close()
        raise ImageError(f"{text} is empty (0 bytes)")
    return f


def _missing(text: str) -> str:
    """``no such file`` naming the folder a relative path was looked for in, and a close sample name if any."""
    where = "" if os.path.isabs(os.path.expanduser(text)) else f" (looked in {os.getcwd()})"
    stem = os.path.splitext(os.path.basename(text))[0]
    close = difflib.get_close_matches(stem.lower(), sample_names(), n=1, cutoff=0.75)
    hint = f"; did you mean sample:{close[0]}?" if close else ""
    return f"no such file: {text}{where}{hint}"


# warnings.catch_warnings swaps process-wide state, so two threads (two studios) must not decode at once.
_DECODE_LOCK = threading.Lock()


def _decode(data: Any, name: str, max_size: int | None, stored: bool = False) -> tuple[Image.Image, float]:
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
            if stored:  # the mode kept (its alpha), only turned upright
                from PIL import ImageOps
                return ImageOps.exif_transpose(img), scale
            return normalize(img, name), scale
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
        raise ImageError(f"{name} is truncated or corrupt ({one_line(e)})") from None


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
        raise ImageError(f"can't download {url}: {one_line(reason) if isinstance(reason, BaseException) else reason}"
                         ) from None
    data = b"".join(chunks)
    if not data:
        raise ImageError(f"{url} returned nothing (0 bytes)")
    return data
