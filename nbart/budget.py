"""Defaults that fit the machine: the largest picture size whose run the cost model expects within a time budget.

A participant's first run should finish within about a minute whatever the computer: on a 2-core CPU without
AVX-512 the engine's defaults took 1-4 min (issue 16). :func:`fit_time` asks :func:`nbart.cost.estimate` (FLOPs
of the schedule times this machine's measured rate) about the run as asked; if it is expected to take longer than
``seconds``, it tries smaller long sides, 32 px at a time, and returns the largest that fits, with both estimates,
so a front-end can say what it did and offer the asked size back in one click. It changes nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbart.cost import Estimate, estimate
from nbart.params import DreamParams, StyleParams
from nbart.styleplan import resolution_sizes

__all__ = ["Fitted", "fit_time", "BUDGET_S", "SMALLEST"]

# s: a participant sees a finished dream within a minute of pressing Run. The estimate's time is within +-30 %
# (benchmarks/results/estimate-accuracy.md): a 45 s estimate still ends within a minute when it is 25 % short
# (measured quiet, 2-core AVX2 EPYC: a 60 s budget started at 448 px, estimated 53 s, took 62 s)
BUDGET_S = 45.0
SMALLEST = 128  # px: the least long side tried; a smaller picture shows too little to judge a setting by
STEP = 32  # px between the long sides tried (the sizes the sliders use)


@dataclass(frozen=True)
class Fitted:
    """A smaller run than asked: ``params`` (only the size fields changed), its ``estimate``, the ``asked`` run's
    estimate and the long sides of the outputs (``size``, ``asked_size``), in pixels."""

    params: Any
    estimate: Estimate
    asked: Estimate
    size: int
    asked_size: int


def _long_side(p: Any) -> int:
    return p.max_size if isinstance(p, DreamParams) else resolution_sizes(p.max_size, p.sizes)[-1]


def _at(p: Any, side: int) -> Any:
    """``p`` with its output's long side at ``side`` (a style schedule's sizes scaled alike, each a multiple of 32
    and at least 64)."""
    if isinstance(p, DreamParams) or not p.sizes:
        return p.replace(max_size=side)
    top = p.sizes[-1]
    sizes = tuple(dict.fromkeys(max(64, round(s * side / top / STEP) * STEP) for s in p.sizes[:-1]))
    return p.replace(sizes=tuple(s for s in sizes if s < side) + (side,))


def fit_time(task: str, images: tuple | list, params: Any, seconds: float = BUDGET_S,
             probe_now: bool = True) -> Fitted | None:
    """None when the run of ``params`` (a :class:`~nbart.params.DreamParams` or
    :class:`~nbart.params.StyleParams`) on ``images`` (as for :func:`nbart.cost.estimate`: one image for "dream",
    content and style for "style") is expected within ``seconds``; else the run at the largest long side, a
    multiple of 32 px from :data:`SMALLEST` up, whose run is (at :data:`SMALLEST` if none is; a bisection: about
    five estimates). ``probe_now`` as for ``estimate``: the
    first call for a backbone on a machine times a probe (2-5 s), later ones take milliseconds per size tried.
    Raises what ``estimate`` raises (ParamError, ImageError)."""
    cls = DreamParams if task == "dream" else StyleParams
    p = cls.from_kwargs(params)
    asked = estimate(task, *images, params=p, probe_now=probe_now)
    if asked.seconds <= seconds:
        return None
    side = _long_side(p)
    # the estimate grows with the size: a bisection over the multiples of 32 below the asked size
    trials = list(range(SMALLEST, side, STEP))
    if not trials:
        return None
    fits = {}

    def fitted(i: int) -> Fitted:
        if i not in fits:
            q = _at(p, trials[i])
            fits[i] = Fitted(q, estimate(task, *images, params=q, probe_now=probe_now), asked, trials[i], side)
        return fits[i]

    low, high = 0, len(trials) - 1  # the answer: the largest index that fits, or 0 when none does
    while low < high:
        mid = (low + high + 1) // 2
        if fitted(mid).estimate.seconds <= seconds:
            low = mid
        else:
            high = mid - 1
    return fitted(low)
