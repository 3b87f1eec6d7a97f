"""Step events and the Run handle: how every front-end watches and steers a run.

A run is an iterator of :class:`StepEvent`, one per optimization step. The consumer pulls events at its own pace
and may call :meth:`Run.stop` at any moment, from any thread; the engine checks between steps (and between tiles
of a tiled step) and ends, keeping the last good image. Images are made only when a consumer asks for them.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from nbart.errors import Stopped, error_message  # noqa: F401  (re-exported: their old home)
from nbart.images import encode, to_uint8
from nbart.timeline import Timeline

__all__ = ["StepEvent", "Outcome", "Run", "Control", "Stopped", "run_with_notices", "Interrupted", "error_message",
           "preview_jpeg"]


class Outcome(str, enum.Enum):
    """How a run ended: it went to its end, a stop was asked (or the consumer left), or the engine gave up (a
    non-finite loss, an optimizer that made no progress, an error). A ``str``: ``outcome == "completed"`` holds."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:  # "completed", also in f-strings and JSON (enum.StrEnum is Python 3.11+)
        return self.value

    __format__ = str.__format__


class Pace:
    """The seconds a run has left, from a per-stage cost model fitted to the steps seen so far.

    A steady step (not the first of a stage) costs ``overhead + rate * pixels`` seconds: ``rate`` and ``overhead``
    are fitted by least squares to the mean steady step of each stage seen, once two stages of different sizes are;
    before that ``overhead`` is the caller's guess (``step_overhead_s``, e.g. the cost probe's fixed cost of a call)
    and ``rate`` the rest of the measured step time per pixel. The first step of the run also builds the network and
    traces the step function: a one-time cost that is never counted again. The first step of each later stage runs
    at a new image size (retracing where the function is shape-specific, oneDNN preparing its kernels): its extra
    cost is ``start_share`` steady steps' per-pixel cost (work a stage does once at its start, such as a style run's
    targets: its forward passes) plus a constant measured on the later stages seen, before that ``new_stage_s``
    (e.g. the cost probe's ``new_shape_s``), else the first step's extra scaled by pixels but at most that extra
    itself (the first step also built and traced: a bound). Measured on a 2-core AVX2 EPYC (default CLI dream,
    VGG16, four octaves): a steady step is ~0.5 s + 13 us per pixel, and a later octave's first step costs ~0.2-0.6 s
    more than its steady ones, however big: extra cost scaled by pixels made the first estimate 3x the truth. Until
    one steady step is known the estimate is nan.

    ``pixels[i]`` is the pixel count of stage ``i``, ``steps`` the steps per stage.
    """

    def __init__(self, pixels: Sequence[int], steps: int, new_stage_s: float | None = None,
                 step_overhead_s: float = 0.0, start_share: float = 0.0):
        self.pixels, self.steps, self.start_share = list(pixels), steps, max(0.0, float(start_share))
        self.new_stage_s, self.step_overhead_s = new_stage_s, max(0.0, float(step_overhead_s))
        self._steady: dict[int, list[float]] = {}  # stage -> [total seconds, steps] of its steady steps
        self._first_time: dict[int, float] = {}
        self._last = 0.0

    def _step_model(self) -> tuple[float, float]:
        """(overhead seconds, seconds per pixel) of a steady step, fitted to the stages seen."""
        stages = [(self.pixels[s], t / n, n) for s, (t, n) in self._steady.items()]
        if len({px for px, _, _ in stages}) >= 2:  # weighted least squares of mean step time on pixels
            w = sum(n for _, _, n in stages)
            mx = sum(px * n for px, _, n in stages) / w
            my = sum(t * n for _, t, n in stages) / w
            sxx = sum(n * (px - mx) ** 2 for px, _, n in stages)
            rate = sum(n * (px - mx) * (t - my) for px, t, n in stages) / sxx
            if rate > 0 and my - rate * mx >= 0:
                return my - rate * mx, rate
        total = sum(t * n for _, t, n in stages)
        count = sum(n for _, _, n in stages)
        pixels = sum(px * n for px, _, n in stages)
        overhead = min(self.step_overhead_s, 0.9 * total / count)  # a guess never takes the whole step
        return overhead, (total - overhead * count) / pixels

    def seconds_left(self, step: int, elapsed: float) -> float:
        """After ``step`` (1-based, over all stages) ended at ``elapsed`` seconds: the estimate, or nan."""
        took, self._last = elapsed - self._last, elapsed
        stage, within = divmod(step - 1, self.steps)
        if within == 0:
            self._first_time[stage] = took
        else:
            seen = self._steady.setdefault(stage, [0.0, 0])
            seen[0] += took
            seen[1] += 1
        if not self._steady:
            return float("nan")
        overhead, rate = self._step_model()

        def steady(s: int) -> float:
            return overhead + rate * self.pixels[s]

        def start(s: int) -> float:  # the stage's own work at its start, in proportion to its pixels
            return self.start_share * rate * self.pixels[s]

        later = [max(0.0, t - steady(s) - start(s)) for s, t in self._first_time.items() if s > 0]
        if later:
            extra = [sum(later) / len(later) + start(s) for s in range(len(self.pixels))]
        elif self.new_stage_s is not None:
            extra = [float(self.new_stage_s) + start(s) for s in range(len(self.pixels))]
        else:  # nothing known of a new size's cost: the first step's extra, scaled by pixels, at most itself
            first = max(0.0, self._first_time.get(0, 0.0) - steady(0))
            extra = [max(min(first * px / self.pixels[0], first), start(s)) for s, px in enumerate(self.pixels)]
        left = steady(stage) * (self.steps - within - 1)
        left += sum(steady(s) * self.steps + extra[s] for s in range(stage + 1, len(self.pixels)))
        return left


@dataclass(kw_only=True, slots=True)
class StepEvent:
    """One optimization step.

    ``step`` counts from 1 to ``total`` across the whole run; ``stage`` is the octave (dreams) or resolution
    (style transfer) index from 0 to ``stages - 1``, described by ``label``. ``loss`` is the quantity being
    minimized (a dream minimizes the negative activation), ``elapsed`` the seconds since the run began, ``size``
    the output's (height, width) in pixels. ``done`` marks the last step of a run that went to the end.
    ``metrics`` names the loss's parts (``content``, ``style``, ``tv``; a dream's ``activation``).

    ``render()`` gives the image at the output size as float (H, W, 3) in [0, 1]; ``render_small(size)`` the image
    straight at a (height, width), or None where ``render`` is as cheap. Both are dropped (None) once
    :meth:`image` has been made, so that the step's tensors can go.
    """

    step: int
    total: int
    stage: int
    stages: int
    label: str
    loss: float
    elapsed: float
    size: tuple[int, int]
    render: Callable[[], Any] | None
    done: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    render_small: Callable[[tuple[int, int]], Any] | None = None
    eta: float = float("nan")  # the engine's estimate of the seconds left (a :class:`Pace`), nan when unknown
    inside: Any = None  # the step's nbart.inside.StepInside while a consumer asked for it (Run.inside), else None
    _pixels: np.ndarray | None = field(default=None, init=False, repr=False)

    def image(self) -> np.ndarray:
        """The image after this step as uint8 RGB (height, width, 3), at the output size; made on first call."""
        if self._pixels is None:
            self._pixels = to_uint8(self.render())
            self.render = self.render_small = None  # let the step's tensors go
        return self._pixels

    def pil(self) -> Image.Image:
        """:meth:`image` as a PIL image."""
        return Image.fromarray(self.image())

    def preview(self, max_size: int = 384, keep: bool = True) -> np.ndarray:
        """The image after this step as uint8 RGB, its long side at most ``max_size`` pixels: what a live view shows.

        Cheaper than :meth:`image` when the engine can render small directly (a dream composes its octaves at the
        preview size instead of the output size); otherwise a downscaled :meth:`image`. ``keep=False`` leaves the
        event as it was (no full-size pixels kept on it, ``render`` still there): the run's timeline looks so.
        """
        height, width = self.size
        scale = min(1.0, max_size / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if size != (height, width) and self._pixels is None and self.render_small is not None:
            small = self.render_small(size)
            if small is not None:
                return to_uint8(small)
        full = self.image() if keep or self._pixels is not None else to_uint8(self.render())
        if size == (height, width):
            return full
        return np.asarray(Image.fromarray(full).resize((size[1], size[0]), Image.BILINEAR, reducing_gap=2.0))

    @property
    def seconds_left(self) -> float:
        """Estimated seconds to the end: the engine's per-stage estimate (:class:`Pace`); nan while it has none
        (after the first step), 0 at the end. Never the mean pace so far: the first step also builds and traces,
        and counted as a step it made the first estimate shown 3-15x too long (issue 16)."""
        if self.step >= self.total:
            return 0.0
        if not math.isnan(self.eta):
            return self.eta
        return float("nan")

    def __repr__(self) -> str:
        return (f"StepEvent(step={self.step}/{self.total}, {self.label}, loss={self.loss:.4g}, "
                f"elapsed={self.elapsed:.1f}s)")


class Control(threading.Event):
    """A run's stop flag (a ``threading.Event``: ``set()`` asks the run to stop) that also carries its progress within
    the current step: the engine calls ``report(done, total)`` as parts of a long step finish (a tiled dream step's
    tiles), and :attr:`Run.progress` reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.progress: tuple[int, int] | None = None
        self.inside: Any = None  # the consumer's nbart.inside.Request while it wants the inside view (Run.inside)

    def report(self, done: int, total: int) -> None:
        """``done`` of the current step's ``total`` parts are finished (called from the engine's thread)."""
        self.progress = (done, total)


class Run:
    """A run in progress: iterate it for :class:`StepEvent`; ``stop()`` from any thread; ``image()`` any time.

    ``steps`` is a function that takes the run's stop flag (a ``threading.Event``) and returns the engine's
    generator of events; the generator returns an :class:`Outcome` (or nothing: completed, or stopped if a stop was
    asked). Nothing is computed until the first event is pulled. ``notices`` collects one-line messages a front-end
    should show (a weights fallback, a run ended on a non-finite loss).

    A run records what really ran: ``params`` (with a concrete ``seed``), ``prepared`` (the task's resolved
    backbone, weights, precision and layers; see :meth:`metadata`) and ``outcome``. ``continue_with(run, steps)``,
    given by the task, makes :meth:`continued`.
    """

    def __init__(self, task: str, params: Any, steps: Callable[[threading.Event], Iterator[StepEvent]],
                 total: int, start_image: Image.Image, notices: list[str] | None = None, *,
                 prepared: Any = None, inputs: tuple[str, ...] = (),
                 continue_with: Callable[[Run, int], Run] | None = None):
        self.task, self.params, self.total = task, params, total
        self.notices: list[str] = notices if notices is not None else []
        self.latest: StepEvent | None = None
        self.start_image = start_image
        self.prepared = prepared
        self.inputs = inputs  # what the images came from, as the metadata names them
        self.error: Exception | None = None  # what ended the run, if it failed
        self._stop = Control()
        self._steps = steps
        self._continue_with = continue_with
        self._gen: Iterator[StepEvent] | None = None
        self._finished = False
        self.outcome: Outcome | None = None  # set once the run has ended
        # small frames of the steps, bounded (nbart.timeline); None before the first pull: keep none
        self.timeline: Timeline | None = Timeline()
        self.timeline_error: Exception | None = None  # what ended the timeline early, if anything did
        self._pulling = threading.Lock()  # one consumer at a time: a generator can't run in two threads

    def __iter__(self) -> Run:
        return self

    def __next__(self) -> StepEvent:
        if not self._pulling.acquire(blocking=False):
            raise RuntimeError("this run is already being iterated in another thread; start a new run instead")
        try:
            if self._finished:
                if self._gen is not None:
                    self._gen.close()  # closed from another thread mid-step: finish the job in this one
                raise StopIteration
            if self._gen is None:
                self._gen = self._steps(self._stop)
                if self.timeline is not None:
                    self.timeline.start(self.start_image)
            try:
                event = next(self._gen)
            except StopIteration as end:
                self._end_timeline()
                self._finished = True
                self.outcome = Outcome(end.value) if end.value else \
                    Outcome.STOPPED if self.stopped else Outcome.COMPLETED
                raise
            except Exception as e:
                self._end_timeline()
                self._finished, self.error = True, e
                self.outcome = Outcome.STOPPED if self.stopped else Outcome.FAILED
                raise
            except BaseException:  # KeyboardInterrupt, GeneratorExit: the run was stopped, it did not fail
                self._finished, self.outcome = True, Outcome.STOPPED
                raise
            self.latest = event
            self._keep_frame(event)
            self._stop.progress = None  # the next step has done none of its parts yet
            return event
        finally:
            self._pulling.release()

    def _keep_frame(self, event: StepEvent | None, last: bool = False) -> None:
        """The timeline keeps ``event``'s frame if it wants it. A failure to make one (an encoder error) ends the
        timeline, never the run: ``timeline_error`` keeps it (the timeline is a by-product nobody asked for yet)."""
        if self.timeline is None or event is None:
            return
        try:
            self.timeline.add(event, force=last)
        except Exception as e:
            self.timeline, self.timeline_error = None, e

    def _end_timeline(self) -> None:
        self._keep_frame(self.latest, last=True)  # the last step, if off the timeline's stride

    def frames(self) -> list:
        """The timeline's frames (:class:`nbart.timeline.Frame`, step order, the start image as step 0), the latest
        step's included; [] when the run keeps no timeline. Call from the consumer's thread or after the run."""
        self._end_timeline()
        timeline = self.timeline
        if timeline is None:
            return []
        try:
            return timeline.frames()
        except Exception as e:  # the start image's encode failed
            self.timeline, self.timeline_error = None, e
            return []

    def stop(self) -> None:
        """Ask the run to end; it does so within a step, keeping the last good image. Safe from any thread."""
        self._stop.set()

    def inside(self, on: bool = True, *, layer: str | None = None, gram_layer: str | None = None) -> Any:
        """Ask for the inside view of the steps from the next one on (``on=False``: stop asking): each event's
        ``inside`` then holds the step's loss terms, gradient map and activation maps (see :mod:`nbart.inside`;
        ``layer``: whose activations, ``gram_layer``: a style run's layer whose Gram matrices are compared; defaults
        there). Off, the steps run as if it never existed. Safe from any thread; returns the request (None when off).
        ParamError for a layer the run's backbone lacks."""
        if not on:
            self._stop.inside = None
            return None
        if self.prepared is None:
            raise ValueError(f"a {self.task} run has no inside view")
        self._stop.inside = self.prepared.inside_request(layer, gram_layer)
        return self._stop.inside

    @property
    def stopped(self) -> bool:
        """Whether a stop was asked for (a run may still have completed: the stop came after its last step)."""
        return self._stop.is_set()

    @property
    def progress(self) -> tuple[int, int] | None:
        """Progress within the step being computed, as (parts done, parts), or None when the step has no parts
        reported (one network call). A tiled dream step reports its tiles. Safe to read from any thread while
        another pulls events: a front-end polls it (the CLI bar every half second) to show a long step moving."""
        return self._stop.progress

    @property
    def finished(self) -> bool:
        """Whether the run has ended (gone to the end, stopped, or failed)."""
        return self._finished

    @property
    def released(self) -> bool:
        """Whether the engine's generator is closed or was never started: the run computes and holds nothing."""
        return self._gen is None or getattr(self._gen, "gi_frame", None) is None

    @property
    def completed(self) -> bool:
        """Whether the run went to its end (not stopped, no fault)."""
        return self.outcome == Outcome.COMPLETED

    def metadata(self, **extra: Any) -> dict[str, Any]:
        """What to store with the picture (a PNG's ``nbart`` text): enough to reproduce it.

        ``params`` holds the values that ran (the backbone, weights and precision after any fallback, the layers
        used, the concrete seed), so ``task(inputs, **params)`` gives the same pixels; ``requested`` the values
        asked for, where they differ. Also ``task``, ``steps_done``, ``ended`` (the outcome, or None while
        running), ``inputs`` and ``size``, the output's [width, height] in px (which ``max_size``, an upscale to
        the backbone's minimum or the input's own size decided). ``extra`` keys are added or replace these (a
        CLI's ``ended="interrupted"``).
        """
        asked = self.params.to_dict()
        ran = self.params.replace(**self.prepared.ran()).to_dict() if self.prepared is not None else asked
        meta: dict[str, Any] = {"task": self.task, "params": ran, "steps_done": self.latest.step if self.latest else 0,
                                "ended": str(self.outcome) if self.outcome else None, "inputs": list(self.inputs),
                                "size": list(self.start_image.size)}
        if ran != asked:
            meta["requested"] = {k: v for k, v in asked.items() if ran[k] != v}
        meta.update(extra)
        return meta

    def continued(self, steps: int) -> Run:
        """A new run that goes on from this one's latest image for ``steps`` more steps (the task decides how: a
        dream goes on at full size, one octave; a style transfer at the output size, from the image)."""
        if self._continue_with is None:
            raise ValueError(f"a {self.task} run can't be continued")
        return self._continue_with(self, steps)

    def image(self) -> Image.Image:
        """The latest image at the output size: the last step's, or the prepared input before any step."""
        return self.latest.pil() if self.latest is not None else self.start_image.copy()

    def close(self) -> None:
        """End the run and free what it holds (the engine's generator is closed). Safe from any thread: while another
        thread is inside a step, the run ends there, within that step, and its generator closes on the way out."""
        self._stop.set()
        if not self._finished:
            self._finished, self.outcome = True, Outcome.STOPPED
        gen = self._gen
        if gen is not None:
            try:
                gen.close()
            except ValueError:  # "generator already executing" in the consumer's thread: the stop flag ends it
                pass

    def run(self, on_step: Callable[[StepEvent], Any] | None = None) -> Image.Image:
        """Pull every event, calling ``on_step(event)`` on each, and return the final image.

        If ``on_step`` raises (or the consumer is interrupted), the run is closed and the error propagates; the
        last good image stays available from :meth:`image`.
        """
        try:
            for event in self:
                if on_step is not None:
                    on_step(event)
        except BaseException:
            self.close()
            raise
        return self.image()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Interrupted(UserWarning):
    """The warning of a one-call function (``nbart.dream``...) interrupted after some steps: it returned the image
    it had."""


def run_with_notices(run: Run, on_step: Callable[[StepEvent], Any] | None = None) -> Image.Image:
    """Run to the end and return the final image, issuing the run's notices as warnings as they appear (and calling
    ``on_step(event)`` on each step: a front-end's progress bar).

    Interrupted (``KeyboardInterrupt``: a notebook kernel's interrupt button) after at least one step, it returns
    the image of the last finished step with an :class:`Interrupted` warning naming that step, so the finished
    work is kept; interrupted before the first step, it raises as before (there is nothing to return).
    """
    import warnings

    shown = 0

    def show(event: Any = None) -> None:
        nonlocal shown
        for notice in run.notices[shown:]:
            warnings.warn(notice, stacklevel=4)
        shown = len(run.notices)
        if event is not None and on_step is not None:
            on_step(event)

    show()
    try:
        result = run.run(show)
    except KeyboardInterrupt:
        show()
        if run.latest is None:
            raise
        warnings.warn(f"interrupted at step {run.latest.step}/{run.total}: returned the image of that step",
                      Interrupted, stacklevel=3)
        return run.image()
    show()
    return result


def preview_jpeg(event: StepEvent, max_size: int = 384, quality: int = 80) -> bytes:
    """A live-view frame of ``event``: JPEG bytes, long side at most ``max_size`` px (what the studios send)."""
    return encode(event.preview(max_size), "jpeg", quality=quality)
