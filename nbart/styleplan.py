"""Size planning of a style transfer, pure: which resolutions a run optimizes at, and at what size each style is
seen. Sizes are (height, width) in px unless named a long side."""

from __future__ import annotations

from collections.abc import Sequence

from nbart.images import ImageError
from nbart.params import ParamError, default_sizes
from nbart.runs import long_side_for, scaled

__all__ = ["resolution_sizes", "stage_sizes", "style_size"]


def resolution_sizes(max_size: int, sizes: Sequence[int] = (), ladder: str = "halves") -> tuple[int, ...]:
    """The long side of each resolution, coarse to fine: ``sizes`` when given, else ``ladder``'s default sizes
    down from ``max_size`` (see :func:`nbart.params.default_sizes`: halves, or a factor sqrt(2), down to 256 px).

    >>> resolution_sizes(1024)
    (256, 512, 1024)
    >>> resolution_sizes(1024, ladder="sqrt2")
    (256, 362, 512, 724, 1024)
    >>> resolution_sizes(400, (128, 400))
    (128, 400)
    """
    return tuple(sizes) if sizes else default_sizes(max_size, ladder)


def stage_sizes(content: tuple[int, int], original: tuple[int, int], max_size: int, sizes: Sequence[int],
                min_size: int, backbone: str, ladder: str = "halves") -> list[tuple[int, int]]:
    """The (height, width) of each stage of a run on a content image of (width, height) ``content``, decoded from a
    picture of (width, height) ``original``; the last is the output size.

    Default sizes (``sizes`` empty: ``ladder``'s, see :func:`resolution_sizes`) never upscale a small content
    beyond what the backbone needs (a short side of ``min_size``) and drop coarse stages too small for it.
    ImageError for a content too thin to fit; ParamError for given ``sizes`` whose first stage is below
    ``min_size``.
    """
    long_sides = resolution_sizes(max_size, sizes, ladder)
    needed = long_side_for(original, min_size)
    if not sizes and max(content) < max_size:  # don't upscale a small content beyond what the backbone needs
        long_sides = resolution_sizes(min(max_size, max(max(content), needed)), ladder=ladder)
    if long_sides[-1] < needed:
        raise ImageError(f"content image is too thin: {original[0]}x{original[1]} px can't fit within "
                         f"{long_sides[-1]} px with its short side at least {min_size} px; crop it or raise max_size")
    if not sizes:  # default sizes: drop coarse ones too small for the backbone, as dream octaves do
        long_sides = tuple(s for s in long_sides if s >= needed)
    stages = [scaled(content[::-1], s) for s in long_sides]
    if min(stages[0]) < min_size:
        raise ParamError(f"the content's short side would be {min(stages[0])} px at size {long_sides[0]}, below the "
                         f"{min_size} px {backbone} accepts; raise sizes or crop the content")
    return stages


def style_size(style: tuple[int, int], stage: tuple[int, int], style_scale: float, min_size: int) -> tuple[int, int]:
    """(height, width) at which a style of (height, width) ``style`` is seen at a stage of (height, width)
    ``stage``: its long side ``style_scale`` times the stage's, and at least what keeps its short side within what
    the backbone accepts (``min_size``)."""
    needed = long_side_for(style, min_size)
    return scaled(style, max(min_size, needed, round(max(stage) * style_scale)))
