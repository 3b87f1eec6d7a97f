"""Labelled contact sheets: many small pictures in a grid, each with its caption, as one PIL image.

The explorer (:func:`nbart.explore`) and sweeps (:func:`nbart.sweep`) return a :class:`Sheet`: the picture and the
results it shows, which a notebook displays as the picture. Pillow only; imports nothing of nbart.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from PIL import Image, ImageDraw, ImageFont

__all__ = ["Sheet", "contact_sheet"]

PAD = 6  # px between tiles and around the sheet
CAPTION = 14  # px of caption line (Pillow's default bitmap font is 11 px high)


class Sheet(NamedTuple):
    """A contact sheet (``image``, a PIL RGB image) and the results it shows, in its reading order.

    Unpacks as ``image, results = nbart.explore(...)``; a notebook cell ending in one shows the picture.
    """

    image: Image.Image
    results: list

    def _repr_png_(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG")
        return out.getvalue()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text`` cut (with '…') to fit ``width`` px: a caption never spills onto the next tile."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, most: int = 2) -> list[str]:
    """``text`` on at most ``most`` lines of ``width`` px: broken after a ':', '=', ',', '_' or space where one is near
    the end of a line (so ``block4_conv3:311`` keeps its channel), the last line cut with '…' if it still won't fit."""
    lines: list[str] = []
    while text and len(lines) < most - 1 and draw.textlength(text, font=font) > width:
        n = len(text)
        while n > 1 and draw.textlength(text[:n], font=font) > width:
            n -= 1
        cut = max((text.rfind(sep, 0, n) + 1 for sep in ":=,_ "), default=0)
        n = cut if cut >= n // 2 else n
        lines.append(text[:n].rstrip())
        text = text[n:].lstrip()
    return lines + ([_fit_text(draw, text, font, width)] if text else [])


def contact_sheet(tiles: Sequence[tuple[str | Sequence[str], Image.Image | None]], columns: int | None = None,
                  title: str | None = None) -> Image.Image:
    """A white sheet with ``tiles`` (caption, picture) in rows of ``columns`` (default: near-square), reading order.

    A caption may be one line (wrapped onto a second line where it is too long) or a sequence of lines; each line is
    cut to the tile's width. A ``None`` picture
    leaves a grey placeholder (a result not made). Tiles of different sizes get cells of the largest, top-left
    aligned. ``title`` (optional) is one line above the grid. Sizes in pixels; returns an RGB image.
    """
    if not tiles:
        raise ValueError("a contact sheet needs at least one tile")
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    sizes = [img.size for _, img in tiles if img is not None] or [(64, 64)]
    cw, ch = max(w for w, _ in sizes), max(h for _, h in sizes)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = ImageFont.load_default()
    # a one-line caption too long for its tile takes a second line rather than losing its end (a channel number)
    lines = [_wrap_text(measure, c, font, cw - 2) if isinstance(c, str) else list(c) for c, _ in tiles]
    n_lines = max(len(x) for x in lines)
    top = PAD + (CAPTION + PAD if title else 0)
    cell_h = ch + n_lines * CAPTION + PAD
    sheet = Image.new("RGB", (PAD + columns * (cw + PAD), top + rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((PAD, PAD), _fit_text(draw, title, font, sheet.width - 2 * PAD), fill="black", font=font)
    for n, ((_, img), caption) in enumerate(zip(tiles, lines)):
        r, c = divmod(n, columns)
        x, y = PAD + c * (cw + PAD), top + r * cell_h
        for k, line in enumerate(caption):
            draw.text((x + 1, y + k * CAPTION), _fit_text(draw, line, font, cw - 2), fill="black", font=font)
        y += n_lines * CAPTION
        if img is None:
            draw.rectangle([x, y, x + cw - 1, y + ch - 1], fill=(220, 220, 220))
        else:
            sheet.paste(img.convert("RGB"), (x, y))
    return sheet
