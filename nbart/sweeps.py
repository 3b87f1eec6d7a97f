"""Parameter sweeps: render every combination of a few parameters' values, small, as one labelled contact sheet.

What users otherwise script by hand (jcjohnson/neural-style #228: "all the combinations of the settings at low
resolution, to choose one"). ``sweep("dream", image, over={"step_size": [0.01, 0.02], "seed": [1, 2]})`` checks
every value through the task's parameter spec (the same one-line errors as a run), builds every combination's
parameters before any work (so a bad combination fails at once), then runs them one after the other;
:func:`sweep_run` yields each result as it finishes and can be stopped. A sweep is small by default (``size`` 128
px) and seeded (``seed`` 0 unless swept or given), so the pictures differ by the swept values only.
"""

from __future__ import annotations

import itertools
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from nbart import deepdream, images, styletransfer
from nbart.errors import ParamError
from nbart.events import Run
from nbart.params import DreamParams, StyleParams
from nbart.runs import describe
from nbart.sheets import Sheet, contact_sheet
from nbart.spec import field_value, fields_of

__all__ = ["sweep", "sweep_run", "Sweep", "SweepResult", "MAX_COMBINATIONS", "TASKS", "value_text",
           "values_from_text"]

MAX_COMBINATIONS = 36  # a 6x6 sheet: beyond that a sweep is a batch job, not a look at a few settings
TASKS = {"dream": DreamParams, "style": StyleParams}
DEFAULT_SIZE = 128  # px: a 3x3 sweep of dreams in about a minute on 2 cores


def value_text(value: Any) -> str:
    """A swept value as captions and the CLI write it: numbers as given (%g), lists joined by '+', None as none."""
    if isinstance(value, (tuple, list)):
        return "+".join(value_text(v) for v in value) or "empty"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def values_from_text(task: str, name: str, text: str) -> list:
    """The values of parameter ``name`` of ``task`` ("dream", "style") written as text, "0.01, 0.02", each checked
    by the spec (nbart.spec.field_value): what the CLI's ``--over`` and the studios' Compare boxes take. Values are
    separated by commas; a list value joins its items with '+' (``mixed3+mixed5``); ``none`` is an empty seed.
    ParamError (one line) names a bad value."""
    if task not in TASKS:
        raise ParamError(f"sweep task must be one of {', '.join(TASKS)} (got {task!r})")
    cls = TASKS[task]
    info = next((i for i in fields_of(cls) if i.name == name), None)
    if info is None:
        field_value(cls, name, None)  # raises the spec's "unknown parameter ...; choose from ..."
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ParamError(f"{name}: no values (write them as 1, 2, 3)")
    out = []
    for item in items:
        value: Any = item
        if info.kind.endswith("_tuple"):
            value = [v.strip() for v in item.split("+") if v.strip()] if item not in ("", "empty") else []
        elif info.kind == "optional_int" and item.lower() in ("none", "random", ""):
            value = None
        elif info.kind in ("int", "float", "optional_int"):
            try:
                value = float(item) if info.kind == "float" else int(item)
            except ValueError:
                kind = "a number" if info.kind == "float" else "an integer"
                raise ParamError(f"{name}: {item!r} is not {kind}") from None
        elif info.kind == "bool":
            if item.lower() not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise ParamError(f"{name}: {item!r} is not true or false")
            value = item.lower() in ("true", "yes", "1", "on")
        out.append(field_value(cls, name, value))
    return out


@dataclass(frozen=True)
class SweepResult:
    """One combination: ``values`` (the swept parameters' values), ``params`` (every parameter that ran, after any
    fallback, as ``run.metadata()["params"]``: ``nbart.<task>(inputs, **params)`` gives the same picture),
    ``image`` (PIL RGB), ``outcome`` ("completed", "stopped", "failed"), ``notices``, ``metadata`` (what a PNG
    of it records), ``steps_done`` of ``total`` steps in ``seconds``."""

    values: dict
    params: dict
    image: Image.Image
    outcome: str
    notices: tuple[str, ...]
    metadata: dict
    steps_done: int = 0
    total: int = 0
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={value_text(v)}" for k, v in self.values.items())


@dataclass(eq=False)
class Sweep:
    """A started sweep: iterate it for :class:`SweepResult` s in combination order, each as its run ends;
    :meth:`stop` (any thread) stops the current run and starts no other. ``combinations`` are the swept values of
    each, ``results`` the finished ones (same order; fewer after a stop), ``current`` the running :class:`Run`."""

    task: str
    over: dict[str, tuple]
    combinations: list[dict]
    inputs: tuple
    params: list[Any]
    described: list[str]  # how metadata names the inputs (paths and URLs as given)
    results: list[SweepResult] = field(default_factory=list)
    current: Run | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self._stop.set()
        if self.current is not None:
            self.current.stop()

    def __iter__(self) -> Iterator[SweepResult]:
        for values, p in zip(self.combinations[len(self.results):], self.params[len(self.results):]):
            if self._stop.is_set():
                return
            run = _start(self.task, self.inputs, p)
            self.current = run
            try:
                for _ in run:
                    pass
            finally:
                self.current = None
            if run.latest is None:  # stopped before its first step: nothing to show
                return
            meta = run.metadata(inputs=list(self.described))
            result = SweepResult(values, meta["params"], run.image(), str(run.outcome), tuple(run.notices), meta,
                                 run.latest.step, run.total, run.latest.elapsed)
            self.results.append(result)
            yield result
            if run.outcome == "stopped":
                return

    def run(self) -> Sweep:
        for _ in self:
            pass
        return self

    def columns(self) -> int:
        """The sheet's columns: the last swept parameter's values (rows are then the first's)."""
        return len(list(self.over.values())[-1]) if len(self.over) > 1 else min(6, len(self.combinations))

    def sheet(self, columns: int | None = None) -> Sheet:
        """The contact sheet (one tile per combination, captioned with its values; grey where not made) and the
        finished results."""
        made = {id(c): r for c, r in zip(self.combinations, self.results)}
        tiles = [([f"{k}={value_text(v)}" for k, v in c.items()], made[id(c)].image if id(c) in made else None)
                 for c in self.combinations]
        p = self.params[0]
        fixed = ", ".join(f"{k}={value_text(v)}" for k, v in (("model", p.model), ("size", p.max_size))
                          if k not in self.over)
        return Sheet(contact_sheet(tiles, columns or self.columns(), f"{self.task} sweep: {fixed}"),
                     list(self.results))


def _start(task: str, inputs: tuple, p: Any) -> Run:
    if task == "dream":
        return deepdream.dream_run(inputs[0], p)
    return styletransfer.style_run(inputs[0], list(inputs[1:]), p)


def sweep_run(task: str, *images_in: Any, over: Mapping[str, Sequence[Any]], size: int | None = None,
              **params: Any) -> Sweep:
    """Check a sweep and return it, started (an iterator of :class:`SweepResult`; nothing runs until pulled).

    Arguments as :func:`sweep`. ParamError (one line) for an unknown task or parameter, a bad value (named with
    what is allowed, as the task's spec words it), a combination its rules refuse, or more than
    ``MAX_COMBINATIONS``; ImageError for an unreadable image (read once, here).
    """
    if task not in TASKS:
        raise ParamError(f"sweep task must be one of {', '.join(TASKS)} (got {task!r})")
    cls = TASKS[task]
    want = "one image" if task == "dream" else "a content image and at least one style image"
    if (task == "dream" and len(images_in) != 1) or (task == "style" and len(images_in) < 2):
        raise ParamError(f"a {task} sweep takes {want} (got {len(images_in)})")
    if not isinstance(over, Mapping) or not over:
        raise ParamError("over must be a dict of at least one parameter name and its list of values")
    swept: dict[str, tuple] = {}
    for name, values in over.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and not hasattr(values, "__iter__"):
            raise ParamError(f"over[{name!r}] must be a list of values (got {values!r})")
        values = list(values)
        if not values:
            raise ParamError(f"over[{name!r}] has no values")
        checked = tuple(field_value(cls, name, v) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            raise ParamError(f"over[{name!r}] repeats a value ({', '.join(map(value_text, checked))})")
        swept[name] = checked
    count = 1
    for values in swept.values():
        count *= len(values)
    if count > MAX_COMBINATIONS:
        sizes = " x ".join(str(len(v)) for v in swept.values())
        raise ParamError(f"a sweep renders at most {MAX_COMBINATIONS} combinations (asked for {sizes} = {count}); "
                         f"sweep fewer values")
    fixed = dict(params)
    clash = sorted(set(fixed) & set(swept))
    if clash:
        raise ParamError(f"{clash[0]} is both swept and fixed; give it in over or as a keyword, not both")
    if size is not None:
        if "max_size" in fixed or "max_size" in swept:
            raise ParamError("give size or max_size, not both")
        fixed["max_size"] = size
    if "max_size" not in swept:
        fixed.setdefault("max_size", DEFAULT_SIZE)
    if "seed" not in swept:
        fixed.setdefault("seed", 0)  # every picture from the same seed: they differ by the swept values only
    combinations = [dict(zip(swept, combo)) for combo in itertools.product(*swept.values())]
    built = []
    for combo in combinations:
        try:
            built.append(cls.from_kwargs(None, **fixed, **combo))
        except ParamError as e:
            if len(combinations) == 1:
                raise
            where = ", ".join(f"{k}={value_text(v)}" for k, v in combo.items())
            raise ParamError(f"{e} (in the combination {where})") from None
    max_side = max(p.max_size for p in built)
    loaded = tuple(images.load_image(source, max_size=max(1024, max_side)) for source in images_in)
    return Sweep(task, swept, combinations, loaded, built, [describe(source) for source in images_in])


def sweep(task: str, *images_in: Any, over: Mapping[str, Sequence[Any]], size: int | None = None,
          columns: int | None = None, **params: Any) -> Sheet:
    """Render ``task`` ("dream" or "style") on ``images_in`` for every combination of the ``over`` values and
    return a labelled contact sheet.

    - ``images_in``: a dream's one image; a style's content image then its style image(s). Anything
      :func:`nbart.load_image` reads.
    - ``over``: ``{parameter: [values]}`` of the task's parameters (:class:`~nbart.params.DreamParams` or
      :class:`~nbart.params.StyleParams` fields), at most ``MAX_COMBINATIONS`` (36) combinations in all; each value
      is checked as the task checks it.
    - ``size``: the long side in px (``max_size``; default 128, small so a 3x3 sweep of dreams takes about a
      minute on 2 cores); ``params``: the other parameters, fixed. ``seed`` is 0 unless given or swept.
    - ``columns``: of the sheet (default: one per value of the last swept parameter).

    Returns a :class:`~nbart.sheets.Sheet`: ``image`` (the sheet; captions ``name=value``, rows the first swept
    parameter's values) and ``results`` (:class:`SweepResult` s with the parameters that ran). Notices are issued as
    warnings (once each). Interrupted (the kernel's interrupt), it returns the sheet of what finished.
    """
    s = sweep_run(task, *images_in, over=over, size=size, **params)
    shown: set[str] = set()
    try:
        for r in s:
            for notice in r.notices:
                if notice not in shown:
                    shown.add(notice)
                    warnings.warn(notice, stacklevel=2)
    except KeyboardInterrupt:
        s.stop()
        warnings.warn(f"interrupted: {len(s.results)} of {len(s.combinations)} combinations made", stacklevel=2)
    return s.sheet(columns)
