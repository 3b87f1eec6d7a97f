"""Conversions: any Pillow image or array to upright RGB, fitting to a size, float <-> uint8, and the one encoder
(JPEG/PNG bytes) behind every preview, thumbnail and history picture.

Everything the engine sees is an RGB ``PIL.Image`` (or its float32 array in ``[0, 1]``); everything odd about an
input (EXIF rotation, transparency, CMYK, 16-bit, palettes, animation) is dealt with here, once.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from nbart.errors import ImageError

__all__ = ["ImageError", "normalize", "from_array", "fit", "to_float", "to_uint8", "encode", "one_line"]


def one_line(error: BaseException) -> str:
    """An exception's message on one line (some decoders' messages span several)."""
    return " ".join(str(error).split()) or type(error).__name__


def normalize(img: Image.Image, name: str = "the image") -> Image.Image:
    """Any Pillow image -> upright RGB: first frame, EXIF orientation, alpha on white, 16-bit/CMYK/Lab converted."""
    try:
        return _to_rgb(img)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(f"{name} is too large to convert in the memory available; downscale it first") from None
    except Exception as e:  # a lazily loaded PIL image decodes here; colour conversions fail on odd modes
        raise ImageError(f"{name} can't be converted to RGB (mode {img.mode}): {one_line(e)}") from None


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
        raise ImageError(f"can't read an array from a {type(array).__name__}: {one_line(e)}") from None
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
    return normalize(Image.fromarray(np.ascontiguousarray(a), mode), "the array")


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


def encode(image: Any, fmt: str = "jpeg", max_side: int | None = None, quality: int = 80) -> bytes:
    """``image`` (PIL, or a uint8 array (H, W, 3)) as ``"jpeg"`` or ``"png"`` bytes, its long side shrunk to
    ``max_side`` pixels if larger (bilinear: cheap enough for every live frame). ``quality`` is JPEG's (1-95).

    The one encoder of the live previews, the thumbnails and the history strip.
    """
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if max_side and max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(out, format="JPEG", quality=quality)
    elif fmt == "png":
        img.save(out, format="PNG")
    else:
        raise ValueError(f"fmt must be jpeg or png (got {fmt!r})")
    return out.getvalue()
