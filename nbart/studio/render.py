"""What the studio shows in words and lines, made cheaply enough for every frame: the status line, the loss curve.

(Pictures are encoded by :func:`nbart.images.encode`.)
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["status_line", "loss_svg", "duration"]


def duration(seconds: float) -> str:
    """Seconds as a person reads them: ``0.4 s``, ``12 s``, ``2 min 05 s``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def status_line(event: Any) -> str:
    """``step 12/40 · octave 2/4 · 256x205 · loss -1.23 · 3.1 steps/s · 9 s left`` for a step event."""
    rate = event.step / event.elapsed if event.elapsed > 0 else float("nan")
    parts = [f"step {event.step}/{event.total}", event.label, f"loss {event.loss:.4g}"]
    if math.isfinite(rate):
        parts.append(f"{rate:.1f} steps/s")
    if event.step < event.total:
        left = event.seconds_left
        parts.append(f"{duration(left)} left" if math.isfinite(left) else "estimating the time left")
    return " · ".join(parts)


def loss_svg(losses: list[float], stage_starts: list[int], width: int = 300, height: int = 56,
             mark: int | None = None) -> str:
    """A small inline SVG of the loss so far, across its width; dashed marks where a stage (octave, size) begins,
    and a red line at step ``mark`` (1-based; the timeline's frame on show) if given."""
    pad = 2
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < 2:
        body = ""
        low = high = finite[0] if finite else 0.0
    else:
        # at most ~2 points per pixel column, so a long run stays a small message
        stride = max(1, len(losses) // (2 * width))
        picked = list(enumerate(losses))[::stride]
        low, high = min(finite), max(finite)
        span = (high - low) or 1.0

        def x(i: int) -> float:
            return pad + (width - 2 * pad) * i / max(1, len(losses) - 1)

        def y(v: float) -> float:
            return pad + (height - 2 * pad) * (high - v) / span

        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in picked if math.isfinite(v))
        marks = "".join(f'<line x1="{x(s):.1f}" y1="0" x2="{x(s):.1f}" y2="{height}" stroke="#bbb" '
                        f'stroke-dasharray="2,2"/>' for s in stage_starts if s > 0)
        body = f'{marks}<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/>'
        if mark is not None:
            at = x(max(0, min(len(losses) - 1, mark - 1)))
            body += (f'<line class="nbart-curve-mark" x1="{at:.1f}" y1="0" x2="{at:.1f}" y2="{height}" '
                     f'stroke="#d62728" stroke-width="1.5"/>')
    label = html.escape(f"loss {finite[-1]:.4g}  (range {low:.3g} .. {high:.3g})" if finite else "loss")
    return (f'<div style="line-height:1"><svg width="{width}" height="{height}" '
            f'style="background:#fafafa;border:1px solid #ddd">{body}</svg>'
            f'<div style="font-size:11px;color:#555">{label}</div></div>')
