"""Step events and the Run handle: how every front-end watches and steers a run.

A run is an iterator of :class:`StepEvent`, one per optimization step. The consumer pulls events at its own pace
and may call :meth:`Run.stop` at any moment, from any thread; the engine checks between steps (and between tiles
of a tiled step) and ends, keeping the last good image. Images are made only when a consumer asks for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image

from nbart.images import encode, to_uint8

__all__ = ["StepEvent", "Run", "Stopped", "run_with_notices", "error_message", "preview_jpeg"]


class Stopped(Exception):
    """Raised inside the engine when a stop was requested mid-step; never reaches the consumer."""


class StepEvent:
    """One optimization step.

    ``step`` counts from 1 to ``total`` across the whole run; ``stage`` is the octave (dreams) or resolution
    (style transfer) index from 0 to ``stages - 1``, described by ``label``. ``loss`` is the quantity being
    minimized (a dream minimizes the negative activation), ``elapsed`` the seconds since the run began, ``size``
    the output's (height, width) in pixels. ``done`` marks the last step of a run that went to the end.
    """

    __slots__ = ("step", "total", "stage", "stages", "label", "loss", "elapsed", "size", "done", "metrics",
                 "_render", "_pixels", "_render_small")

    def __init__(self, step: int, total: int, stage: int, stages: int, label: str, loss: float, elapsed: float,
                 size: tuple[int, int], render: Callable[[], Any], done: bool = False,
                 metrics: dict[str, float] | None = None,
                 render_small: Callable[[tuple[int, int]], Any] | None = None):
        # render_small(size) gives the image at (height, width) in [0, 1], or None where render() is as cheap
        self.step, self.total, self.stage, self.stages, self.label = step, total, stage, stages, label
        self.loss, self.elapsed, self.size, self.done = loss, elapsed, size, done
        self.metrics = metrics or {}
        self._render = render
        self._render_small = render_small  # optional: the image straight at a (height, width), for previews
        self._pixels: np.ndarray | None = None

    @property
    def octave(self) -> int:
        """The octave index of a dream step (same as ``stage``)."""
        return self.stage

    def image(self) -> np.ndarray:
        """The image after this step as uint8 RGB (height, width, 3), at the output size; made on first call."""
        if self._pixels is None:
            self._pixels = to_uint8(self._render())
            self._render = self._render_small = None  # let the step's tensors go
        return self._pixels

    def pil(self) -> Image.Image:
        """:meth:`image` as a PIL image."""
        return Image.fromarray(self.image())

    def preview(self, max_size: int = 384) -> np.ndarray:
        """The image after this step as uint8 RGB, its long side at most ``max_size`` pixels: what a live view shows.

        Cheaper than :meth:`image` when the engine can render small directly (a dream composes its octaves at the
        preview size instead of the output size); otherwise a downscaled :meth:`image`.
        """
        height, width = self.size
        scale = min(1.0, max_size / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if size != (height, width) and self._pixels is None and self._render_small is not None:
            small = self._render_small(size)
            if small is not None:
                return to_uint8(small)
        full = self.image()
        if size == (height, width):
            return full
        return np.asarray(Image.fromarray(full).resize((size[1], size[0]), Image.BILINEAR, reducing_gap=2.0))

    @property
    def seconds_left(self) -> float:
        """Estimated seconds to the end, from the mean pace so far."""
        return self.elapsed / self.step * (self.total - self.step) if self.step else float("nan")

    def __repr__(self) -> str:
        return (f"StepEvent(step={self.step}/{self.total}, {self.label}, loss={self.loss:.4g}, "
                f"elapsed={self.elapsed:.1f}s)")


class Run:
    """A run in progress: iterate it for :class:`StepEvent`; ``stop()`` from any thread; ``image()`` any time.

    ``steps`` is a function that takes the run's stop flag (a ``threading.Event``) and returns the engine's
    generator of events. Nothing is computed until the first event is pulled. ``notices`` collects one-line
    messages a front-end should show (a weights fallback, a run ended on a non-finite loss).
    """

    def __init__(self, task: str, params: Any, steps: Callable[[threading.Event], Iterator[StepEvent]],
                 total: int, start_image: Image.Image, notices: list[str] | None = None):
        self.task, self.params, self.total = task, params, total
        self.notices: list[str] = notices if notices is not None else []
        self.latest: StepEvent | None = None
        self.start_image = start_image
        self.started_at: float | None = None
        self.error: Exception | None = None  # what ended the run, if it failed
        self._stop = threading.Event()
        self._steps = steps
        self._gen: Iterator[StepEvent] | None = None
        self._finished = False
        self.outcome: str | None = None  # "completed", "stopped" or "failed" once the run has ended
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
                self.started_at = time.perf_counter()
                self._gen = self._steps(self._stop)
            try:
                event = next(self._gen)
            except StopIteration as end:
                self._finished = True
                self.outcome = end.value or ("stopped" if self.stopped else "completed")
                raise
            except Exception as e:
                self._finished, self.error = True, e
                self.outcome = "stopped" if self.stopped else "failed"
                raise
            except BaseException:  # KeyboardInterrupt, GeneratorExit: the run was stopped, it did not fail
                self._finished, self.outcome = True, "stopped"
                raise
            self.latest = event
            return event
        finally:
            self._pulling.release()

    def stop(self) -> None:
        """Ask the run to end; it does so within a step, keeping the last good image. Safe from any thread."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether a stop was asked for."""
        return self._stop.is_set()

    @property
    def finished(self) -> bool:
        """Whether the run has ended (gone to the end, stopped, or failed)."""
        return self._finished

    @property
    def completed(self) -> bool:
        """Whether the run went to its end (not stopped, no fault)."""
        return self.outcome == "completed"

    def image(self) -> Image.Image:
        """The latest image at the output size: the last step's, or the prepared input before any step."""
        return self.latest.pil() if self.latest is not None else self.start_image.copy()

    def close(self) -> None:
        """End the run and free what it holds (the engine's generator is closed). Safe from any thread: while another
        thread is inside a step, the run ends there, within that step, and its generator closes on the way out."""
        self._stop.set()
        if not self._finished:
            self._finished, self.outcome = True, "stopped"
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


def error_message(error: BaseException) -> str:
    """One line for a front-end to show about an error that ended a run or refused to start one: no traceback."""
    from nbart.backbones import WeightsError
    from nbart.images import ImageError
    from nbart.params import ParamError

    text = " ".join(str(error).split())
    if isinstance(error, (ParamError, ImageError, WeightsError)):
        return text
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return "out of memory; try a smaller max_size (or tile_size)"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_with_notices(run: Run) -> Image.Image:
    """Run to the end and return the final image, issuing the run's notices as warnings as they appear."""
    import warnings

    shown = 0

    def show(_event: Any = None) -> None:
        nonlocal shown
        for notice in run.notices[shown:]:
            warnings.warn(notice, stacklevel=4)
        shown = len(run.notices)

    show()
    result = run.run(show)
    show()
    return result


def preview_jpeg(event: StepEvent, max_size: int = 384, quality: int = 80) -> bytes:
    """A live-view frame of ``event``: JPEG bytes, long side at most ``max_size`` px (what the studios send)."""
    return encode(event.preview(max_size), "jpeg", quality=quality)
