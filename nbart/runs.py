"""What every task's run does the same way: resolve the backbone, fall back on layers, word the shared notices.

A task module (:mod:`nbart.deepdream`, :mod:`nbart.styletransfer`) builds its :class:`Prepared` from these pieces in
its public ``prepare(params)``; its run and :func:`nbart.warm_up` both use that one function.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nbart import backbones
from nbart.backbones import Backbone

__all__ = ["Prepared", "start", "with_seed", "describe", "fallback_layers", "non_finite", "upscaled", "scaled"]


def start(params: Any) -> tuple[backbones.Resolved, list[str]]:
    """The backbone and weights a run of ``params`` uses (``weights="auto"`` may fall back), and the notices so far.

    Raises :class:`~nbart.backbones.WeightsError` if the request can't be met here.
    """
    resolved = backbones.resolve(params.model, params.weights)
    return resolved, [resolved.notice] if resolved.notice else []


def with_seed(params: Any) -> Any:
    """``params`` with ``seed=None`` replaced by a concrete random seed, so that the run records what it used."""
    if params.seed is not None:
        return params
    return params.replace(seed=int(np.random.default_rng().integers(0, 2**31)))


def describe(source: Any) -> str:
    """How run metadata names an input: a path, URL or ``sample:NAME`` as given; otherwise its type in brackets."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(os.fspath(source))
    return f"<{type(source).__name__}>"


def fallback_layers(requested: tuple[str, ...], defaults: tuple[str, ...], bb: Backbone, asked_model: str,
                    what: str, notices: list[str]) -> tuple[str, ...]:
    """The layers a run uses: ``requested`` (``layer`` or ``layer:channel`` specs), or ``defaults`` when none were
    asked for, or when the backbone is a fallback (not ``asked_model``) that lacks one of them (with a notice)."""
    if requested and bb.name != asked_model and not all(s.partition(":")[0] in bb.layers for s in requested):
        notices.append(f"{what} {', '.join(requested)} don't exist in {bb.name}; using {', '.join(defaults)}")
        return defaults
    return requested or defaults


def non_finite(step: int, what: str) -> str:
    """The notice of a run ended at ``step`` (1-based) because ``what`` ("the loss or gradient") became NaN/inf."""
    return f"stopped at step {step}: {what} became non-finite; kept the last finite image"


def upscaled(what: str, original: tuple[int, int], size: tuple[int, int], bb: Backbone) -> str:
    """The notice of an image (``what``) upscaled from ``original`` to ``size`` (both (width, height) in px) because
    ``bb`` accepts nothing smaller."""
    return (f"{what} upscaled from {original[0]}x{original[1]} to {size[0]}x{size[1]} px, "
            f"the smallest {bb.name} accepts")


def scaled(hw: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(height, width) of an image of (height, width) ``hw`` scaled so that its long side is ``long_side`` px.

    >>> scaled((300, 400), 200)
    (150, 200)
    """
    scale = long_side / max(hw)
    return max(1, round(hw[0] * scale)), max(1, round(hw[1] * scale))


def long_side_for(hw: tuple[int, int], min_short: int) -> int:
    """The long side (px) at which an image of sides ``hw`` (either order) has a short side of ``min_short``."""
    return math.ceil(min_short * max(hw) / min(hw))


@dataclass(eq=False)
class Prepared:
    """What a run of ``params`` uses, resolved: the backbone and weights (after any fallback), the notices so far,
    and (built on first use, then cached per process) the precision and the extractor.

    A task's subclass adds its layers and traced functions (see ``deepdream.prepare``, ``styletransfer.prepare``).
    """

    params: Any
    resolved: backbones.Resolved
    notices: list[str] = field(default_factory=list)
    # the extractor flips its kernels for the gradient once (nbart.convgrad.flip): a task's choice of speed or memory
    flip_ahead: ClassVar[bool] = False

    @property
    def backbone(self) -> Backbone:
        return self.resolved.backbone

    @functools.cached_property
    def precision(self) -> str:
        """'float32' or 'bfloat16': ``params.precision`` resolved (``auto`` may time a probe once per process)."""
        return backbones.resolve_precision(self.params.precision)

    def layers(self) -> tuple[str, ...]:
        """The extractor's layers, in the order the task's traced functions expect."""
        raise NotImplementedError

    @functools.cached_property
    def extractor(self) -> backbones.Extractor:
        """The cached extractor of ``layers()``; a lean-executor fallback becomes one of the run's notices."""
        ext = backbones.extractor(self.backbone, self.resolved.weights, self.precision, self.layers(), warn=False,
                                  flip_ahead=self.flip_ahead)
        if ext.notice and ext.notice not in self.notices:
            self.notices.append(ext.notice)
        return ext

    def inside_request(self, layer: str | None = None, gram_layer: str | None = None) -> Any:
        """A checked :class:`nbart.inside.Request` for this run (see :meth:`nbart.events.Run.inside`)."""
        from nbart import inside

        return inside.request(self, layer, gram_layer)

    def ran(self) -> dict[str, Any]:
        """The parameter values that reproduce this run anywhere: the backbone, weights and precision it used (and
        the task's layers after any fallback). The precision is the requested one until the run has resolved it."""
        precision = self.__dict__.get("precision", self.params.precision)
        return {"model": self.backbone.name, "weights": self.resolved.weights, "precision": precision}
