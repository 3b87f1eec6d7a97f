"""Writing pictures: atomically (a failure leaves no partial file), PNG with nbart's settings in its metadata, GIFs."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from nbart.images.convert import ImageError, one_line
from nbart.images.load import load_image

__all__ = ["SAVE_FORMATS", "GIF_MAX_FRAMES", "folder_problem", "save_image", "save_gif", "read_params"]

_EXIF_DESCRIPTION, _EXIF_SOFTWARE = 0x010E, 0x0131  # EXIF ImageDescription and Software tags
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
GIF_MAX_FRAMES = 120  # at most this many frames in a GIF of a run (CLI and studios): a short, small file


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
        return f"folder {folder}: {e.strerror or one_line(e)}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable"
    if os.path.isdir(path):
        return f"{path} is a folder"
    return None


def _atomic_write(path: str | os.PathLike, write: Any, durable: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failure (full disk, read-only folder, interrupted run) leaves no partial file behind and any old file intact.
    ``durable=False`` skips the fsync: the rename is still atomic for every process, and the file survives the
    writer's death (the kernel holds it), though not a power cut.
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
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        created = False
    except OSError as e:
        raise ImageError(f"can't write {path}: {e.strerror or one_line(e)}") from None
    except ValueError as e:  # an encoder refusing the image (a size beyond the format's limit)
        raise ImageError(f"can't write {path}: {one_line(e)}") from None
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def save_image(img: Any, path: str | os.PathLike, params: dict | None = None, quality: int = 95, *,
               checkpoint: bool = False) -> None:
    """Save an image (PIL or array) as PNG, JPEG or WebP by its suffix, atomically.

    ``params`` (a JSON-friendly dict) is stored in the PNG's text metadata under "nbart", in JPEG and WebP as EXIF
    ImageDescription (Software "nbart"); ``read_params`` reads it back from all three.
    ``checkpoint=True`` trades size and durability for speed (what a run's frequent checkpoints need): PNG's fastest
    compression, and no fsync (see ``_atomic_write``).
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
        if checkpoint:
            options["compress_level"] = 1
    else:  # JPEG and WebP keep the settings in EXIF (ImageDescription, with Software "nbart"), which both carry
        exif = Image.Exif()
        exif[_EXIF_SOFTWARE] = "nbart"
        if text:
            exif[_EXIF_DESCRIPTION] = text
        options.update(quality=quality, exif=exif.tobytes())
        if fmt == "JPEG":
            options["comment"] = text or "nbart"
    _atomic_write(path, lambda f: img.save(f, format=fmt, **options), durable=not checkpoint)


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
    """The parameters nbart stored in a PNG, JPEG or WebP it saved, or None."""
    with Image.open(path) as img:
        text = img.info.get("nbart")
        if not text:
            exif = img.getexif()
            text = exif.get(_EXIF_DESCRIPTION) if exif.get(_EXIF_SOFTWARE) == "nbart" else None
    return json.loads(text) if text else None
