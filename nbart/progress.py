"""A progress bar for a run in a notebook or a terminal: the events of a :class:`~nbart.events.Run`, shown.

The engine never draws (DESIGN.md §1); a notebook cell that runs steps wraps its run in :func:`progress` (to use the
events) or :func:`run_with_progress` (for the picture), and gets tqdm's bar: a widget bar in Jupyter
(``tqdm.auto``), text on stderr elsewhere. The bar counts steps, names the stage and the loss, and shows the engine's
own estimate of the time left (:attr:`nbart.events.StepEvent.seconds_left`, which leaves out building and tracing)
instead of tqdm's mean rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from PIL import Image

from nbart.errors import ParamError
from nbart.events import Run, StepEvent, run_with_notices

__all__ = ["progress", "run_with_progress"]


def _bar(run: Run, desc: str | None) -> Any:
    if not isinstance(run, Run):  # a picture or a list given where a run belongs
        raise ParamError(f"progress needs a run, such as nbart.dream_run(...) or nbart.style_run(...) (got "
                         f"{type(run).__name__})")
    from tqdm.auto import tqdm

    # no rate or remaining time of tqdm's own: its mean rate counts the first step's tracing (see the postfix)
    return tqdm(total=run.total, desc=desc or run.task, unit="step", leave=True, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")


def _show(bar: Any, event: StepEvent) -> None:
    left = event.seconds_left
    parts = [event.label, f"loss {event.loss:.4g}"]
    if event.step < event.total:
        parts.append(f"{left:.0f} s left" if math.isfinite(left) else "estimating the time left")
    bar.set_postfix_str(" · ".join(parts), refresh=False)
    bar.update(event.step - bar.n)


def progress(run: Run, desc: str | None = None) -> Iterator[StepEvent]:
    """The step events of ``run`` (pulled as you iterate; stop early by breaking), with a progress bar titled
    ``desc`` (default: the run's task). The bar is closed when the loop ends, however it ends."""
    bar = _bar(run, desc)
    try:
        for event in run:
            _show(bar, event)
            yield event
    finally:
        bar.close()


def run_with_progress(run: Run, desc: str | None = None) -> Image.Image:
    """Run ``run`` to the end with a progress bar and return the final picture; notices become warnings and an
    interrupt keeps the last step's picture, as in :func:`nbart.dream` (:func:`nbart.events.run_with_notices`)."""
    bar = _bar(run, desc)
    try:
        return run_with_notices(run, lambda event: _show(bar, event))
    finally:
        bar.close()
