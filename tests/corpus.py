"""A corpus of odd input files, generated in code: what workshop participants upload.

Each :class:`Case` is a file (name and bytes) and what nbart must make of it: either the picture, checked by
colours at points given as fractions of the width and height (so the check holds at any size the front-end fits
the picture to), or a one-line error containing ``error``. Files Pillow can't write (16-bit RGB PNG and TIFF, a
decompression-bomb header, HEIC and PDF headers) are written byte by byte here.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageCms

RED, GREEN, BLUE, WHITE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (128, 128, 128)


@dataclass(frozen=True)
class Case:
    """One input file and its expected outcome."""

    name: str  # file name, with the suffix a user would give it
    data: bytes
    size: tuple[int, int] | None = None  # (width, height) of the upright picture, when it loads
    points: tuple = ()  # ((fx, fy), (r, g, b)): expected colour at (fx * width, fy * height)
    tolerance: int = 2  # per channel
    error: str | None = None  # substring of the one-line error, when it must not load
    fit_error: str | None = None  # loads, but can't be fitted to a small backbone size (the thin image)
    notes: tuple[str, ...] = field(default=())


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def asymmetric(size=(40, 30)) -> Image.Image:
    """Grey with a red block at the top left and a blue band along the bottom: every flip and turn is visible."""
    w, h = size
    a = np.full((h, w, 3), 128, np.uint8)
    a[: h * 2 // 5, : w // 3] = RED
    a[-h // 4:, w // 6: w * 5 // 6] = BLUE
    return Image.fromarray(a)


# Where the blocks of `asymmetric` are, upright: centre of the red block, of the blue band, and a grey point.
ASYMMETRIC_POINTS = (((1 / 6, 1 / 5), RED), ((0.5, 7 / 8), BLUE), ((5 / 6, 0.3), GREY))

# The stored image that EXIF orientation N turns into the upright one (PIL's exif_transpose applies the inverse).
STORED = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None) -> bytes:
    """A PNG written by hand (Pillow writes no 16-bit colour PNGs). ``rows`` None gives a header-only file."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    if rows is not None:
        out += _chunk(b"IDAT", zlib.compress(rows))
    return out + _chunk(b"IEND", b"")


def png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG of an (H, W, C) uint16 array: C = 3 is RGB, 4 is RGBA."""
    h, w, c = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    return png(w, h, 16, {3: 2, 4: 6}[c], rows)


def tiff16_rgb(pixels: np.ndarray) -> bytes:
    """An uncompressed little-endian 16-bit RGB TIFF, written by hand."""
    h, w, _ = pixels.shape
    data = pixels.astype("<u2").tobytes()
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value
        (256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, None),
        (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = 8 + ifd_size
    data_at = bits_at + 6
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            ifd += struct.pack("<HHII", tag, kind, count, bits_at)
        elif tag == 273:
            ifd += struct.pack("<HHII", tag, kind, count, data_at)
        elif kind == 3:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + struct.pack("<3H", 16, 16, 16) + data


def gif_bomb() -> bytes:
    """A GIF whose header claims 65535x65535 px (4.3 gigapixels) with no picture data behind it."""
    screen = struct.pack("<HH", 65535, 65535) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"  # 2-colour table
    frame = b"," + struct.pack("<HHHH", 0, 0, 65535, 65535) + b"\x00" + b"\x02\x02\x4c\x01\x00"
    return b"GIF89a" + screen + frame + b";"


def _jpeg_with_exif(img: Image.Image, exif: bytes | Image.Exif) -> bytes:
    return _save(img, "JPEG", quality=95, exif=exif)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _lab_tiff() -> tuple[bytes, tuple[int, int, int]]:
    colour = (200, 30, 40)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    return _save(ImageCms.applyTransform(Image.new("RGB", (12, 10), colour), to_lab), "TIFF"), colour


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (12, 10), c) for c in (RED, GREEN, BLUE)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _animated_gif_transparent_first_frame() -> bytes:
    first = Image.new("P", (12, 10), 0)
    first.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    first.paste(1, (0, 0, 6, 10))  # left half red, right half index 0 = transparent
    second = Image.new("P", (12, 10), 2)
    second.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    return _save(first, "GIF", save_all=True, append_images=[second], transparency=0, disposal=2)


def _palette_png() -> bytes:
    p = Image.new("P", (10, 10), 0)
    p.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    p.paste(1, (0, 0, 5, 10))
    p.paste(2, (5, 0, 10, 5))
    # index 0 fully transparent, index 2 (blue) half transparent: tRNS with one alpha per palette entry
    return _save(p, "PNG", transparency=bytes([0, 255, 128]))


def _la_png() -> bytes:
    la = Image.new("LA", (10, 10), (0, 0))  # transparent black: white once composited
    la.paste((60, 255), (0, 0, 5, 10))  # opaque dark grey on the left
    return _save(la, "PNG")


def _rgba_png() -> bytes:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 255, 128))  # half-transparent blue: (127, 127, 255) on white
    rgba.paste((255, 0, 0, 255), (0, 0, 5, 5))
    return _save(rgba, "PNG")


def _grey16(value: int, size=(8, 6)) -> Image.Image:
    return Image.fromarray(np.full(size[::-1], value, np.uint16))


def _quarters() -> Image.Image:
    """Red, green, blue and white quarters: a picture whose colours survive lossy formats at their centres."""
    a = np.zeros((16, 16, 3), np.uint8)
    a[:8, :8], a[:8, 8:], a[8:, :8], a[8:, 8:] = RED, GREEN, BLUE, WHITE
    return Image.fromarray(a)


QUARTER_POINTS = (((0.25, 0.25), RED), ((0.75, 0.25), GREEN), ((0.25, 0.75), BLUE), ((0.75, 0.75), WHITE))


def cases() -> list[Case]:
    """Every corpus case: files that must load (with their colours) and files that must give a clear error."""
    out: list[Case] = []
    add = out.append
    photo = asymmetric((160, 120))
    jpeg = _save(photo, "JPEG", quality=95)

    # Files that are not (whole) images.
    add(Case("empty.png", b"", error="is empty (0 bytes)"))
    add(Case("truncated.jpg", jpeg[: len(jpeg) // 2], error="is truncated or corrupt"))
    add(Case("header_only.jpg", jpeg[:300], error="is truncated or corrupt"))
    add(Case("notes.png", b"Hello! This is a text file, saved with the wrong name.\n", error="it holds text"))
    add(Case("page.jpg", b"<!DOCTYPE html>\n<html><head><title>Photo</title></head><body><img src='a.jpg'></body>"
                         b"</html>\n", error="it is an HTML web page"))
    add(Case("iphone.jpg", struct.pack(">I", 24) + b"ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
             error="it is a HEIC/HEIF photo"))
    add(Case("scan.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", error="it is a PDF document"))
    add(Case("random.bmp", bytes(range(256)) * 2, error="is not an image file Pillow can read"))
    add(Case("bad_crc.png", _save(Image.new("RGB", (8, 8), RED), "PNG")[:-20] + b"\x00" * 20,
             error="is truncated or corrupt"))

    # Decompression bombs: headers that promise gigapixels; refused before any decoding.
    add(Case("bomb.png", png(30000, 30000, 8, 2, None), error="too large to open safely (900,000,000 pixels"))
    add(Case("bomb.gif", gif_bomb(), error="too large to open safely (4,294,836,225 pixels"))

    # Animated and tiny or thin pictures.
    add(Case("animated.gif", _animated_gif(), (12, 10), (((0.5, 0.5), RED),), tolerance=0))
    add(Case("animated_transparent.gif", _animated_gif_transparent_first_frame(), (12, 10),
             (((0.2, 0.5), RED), ((0.8, 0.5), WHITE)), tolerance=0))
    add(Case("one_pixel.png", _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), (1, 1),
             (((0.5, 0.5), (10, 200, 30)),), tolerance=0))
    add(Case("icon_16.png", _save(_quarters(), "PNG"), (16, 16), QUARTER_POINTS, tolerance=0))
    thin = Image.new("RGB", (4000, 40), (30, 60, 90))
    add(Case("thin_4000x40.png", _save(thin, "PNG"), (4000, 40), (((0.5, 0.5), (30, 60, 90)),), tolerance=0,
             fit_error="image is too thin: 4000x40 px"))

    # High bit depth: values chosen so that truncating instead of scaling (or the reverse) is visible.
    add(Case("grey16.png", _save(_grey16(65535 // 2), "PNG"), (8, 6), (((0.5, 0.5), (127, 127, 127)),),
             tolerance=0))
    add(Case("dark_grey16.png", _save(_grey16(200), "PNG"), (8, 6), (((0.5, 0.5), (1, 1, 1)),),
             tolerance=0))  # 200/257 rounds to 1: a dark 16-bit picture stays dark (values < 256 are not 8-bit)
    rgb16 = np.zeros((6, 8, 3), np.uint16)
    rgb16[...] = (65535, 32896, 2570)  # 255, 128, 10 in 8 bits
    add(Case("rgb16.png", png16(rgb16), (8, 6), (((0.5, 0.5), (255, 128, 10)),), tolerance=1))
    rgba16 = np.zeros((6, 8, 4), np.uint16)
    rgba16[...] = (0, 0, 65535, 0)  # fully transparent blue
    rgba16[:, :4] = (65535, 0, 0, 65535)  # opaque red on the left
    add(Case("rgba16.png", png16(rgba16), (8, 6), (((0.25, 0.5), RED), ((0.75, 0.5), WHITE)), tolerance=1))
    add(Case("grey16.tif", _save(_grey16(65535), "TIFF"), (8, 6), (((0.5, 0.5), WHITE),), tolerance=0))
    add(Case("rgb16.tif", tiff16_rgb(rgb16), (8, 6), (((0.5, 0.5), (255, 128, 10)),), tolerance=1))

    # Colour spaces.
    add(Case("cmyk_adobe.jpg", _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95), (16, 16),
             (((0.5, 0.5), RED),), tolerance=3))  # Pillow writes Photoshop's inverted CMYK with an APP14 marker
    add(Case("cmyk.tif", _save(Image.new("CMYK", (16, 16), (255, 0, 255, 0)), "TIFF"), (16, 16),
             (((0.5, 0.5), GREEN),), tolerance=0))
    lab, lab_colour = _lab_tiff()
    add(Case("lab.tif", lab, (12, 10), (((0.5, 0.5), lab_colour),), tolerance=3))
    add(Case("grey.jpg", _save(Image.new("L", (16, 16), 90), "JPEG"), (16, 16), (((0.5, 0.5), (90, 90, 90)),),
             tolerance=1))
    add(Case("bilevel.png", _save(Image.new("1", (8, 8), 1), "PNG"), (8, 8), (((0.5, 0.5), WHITE),), tolerance=0))

    # Transparency, composited on white.
    add(Case("palette_transparent.png", _palette_png(), (10, 10),
             (((0.25, 0.5), RED), ((0.75, 0.25), (127, 127, 255)), ((0.75, 0.75), WHITE)), tolerance=1))
    add(Case("la_transparent.png", _la_png(), (10, 10), (((0.25, 0.5), (60, 60, 60)), ((0.75, 0.5), WHITE)),
             tolerance=0))
    add(Case("rgba_half.png", _rgba_png(), (10, 10), (((0.25, 0.25), RED), ((0.75, 0.75), (127, 127, 255))),
             tolerance=1))
    add(Case("alpha.webp", _save(Image.new("RGBA", (8, 8), (0, 255, 0, 0)), "WEBP", lossless=True), (8, 8),
             (((0.5, 0.5), WHITE),), tolerance=0))

    # EXIF: all eight orientations (JPEG, as phones write them), broken EXIF, an orientation out of range.
    for n in range(1, 9):
        stored = photo if STORED[n] is None else photo.transpose(STORED[n])
        add(Case(f"exif_orientation_{n}.jpg", _jpeg_with_exif(stored, _exif(n)), (160, 120), ASYMMETRIC_POINTS,
                 tolerance=6))
    add(Case("broken_exif.jpg", _jpeg_with_exif(photo, b"Exif\x00\x00garbage-not-a-tiff-header"), (160, 120),
             ASYMMETRIC_POINTS, tolerance=6))
    add(Case("exif_orientation_9.jpg", _jpeg_with_exif(photo, _exif(9)), (160, 120), ASYMMETRIC_POINTS,
             tolerance=6))

    # Other formats, and a JPEG under a .png name (the content decides, not the suffix).
    add(Case("lossless.webp", _save(_quarters(), "WEBP", lossless=True), (16, 16), QUARTER_POINTS, tolerance=0))
    add(Case("lossy.webp", _save(asymmetric((160, 120)), "WEBP", quality=90), (160, 120), ASYMMETRIC_POINTS,
             tolerance=12))
    add(Case("picture.bmp", _save(_quarters(), "BMP"), (16, 16), QUARTER_POINTS, tolerance=0))
    add(Case("palette.bmp", _save(_quarters().convert("P"), "BMP"), (16, 16), QUARTER_POINTS, tolerance=0))
    add(Case("progressive.jpg", _save(photo, "JPEG", quality=95, progressive=True), (160, 120), ASYMMETRIC_POINTS,
             tolerance=6))
    add(Case("really_a_jpeg.png", jpeg, (160, 120), ASYMMETRIC_POINTS, tolerance=6))
    return out


def colour_at(img: Image.Image, fx: float, fy: float) -> tuple[int, int, int]:
    """The colour at a point given as fractions of the width and height."""
    w, h = img.size
    return img.getpixel((min(w - 1, int(fx * w)), min(h - 1, int(fy * h))))


def check_points(img: Image.Image, case: Case, tolerance: int | None = None) -> None:
    """Assert each of the case's expected colours (within the tolerance, per channel)."""
    tol = case.tolerance if tolerance is None else tolerance
    for (fx, fy), expected in case.points:
        got = colour_at(img, fx, fy)
        assert max(abs(a - b) for a, b in zip(got, expected)) <= tol, (case.name, (fx, fy), got, expected)
