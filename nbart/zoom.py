"""Deep Dream zoom animations: each frame dreams on the previous one, zoomed into its centre (and turned).

The endless zoom of the original DeepDream notebook (Mordvintsev, Olah and Tyka, 2015: "we apply the algorithm
iteratively on its own outputs and apply some zooming after each iteration"): frame 1 is a dream of the input; frame
``i + 1`` is a dream of frame ``i`` scaled by ``zoom`` about its centre and turned by ``rotate`` degrees (an affine
resampling, ``scipy.ndimage.affine_transform``, order 1, edges reflected). Each frame's dream is
:func:`nbart.deepdream.dream_run` with the :class:`~nbart.params.ZoomParams`' dream fields (``steps`` and
``octaves`` per frame) and the seed ``seed + i``, so the jitter differs from frame to frame and the whole animation
is reproducible.

:func:`dream_zoom_run` returns a :class:`~nbart.events.Run` whose events are the frames (``step`` = frame number,
``total`` = frames; ``event.image()`` is the frame, ``seconds_left`` the time left); the consumer may stop it at
any moment, between the dream steps of a frame too (``run.progress`` reports them), and keeps the frames made.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from nbart import deepdream, images, runs
from nbart.events import Interrupted, Outcome, Pace, Run, StepEvent
from nbart.images import to_float, to_uint8
from nbart.params import DreamParams, ZoomParams, fields_of, takes

__all__ = ["dream_zoom", "dream_zoom_run", "zoom_frame", "dream_params"]

_DREAM_FIELDS = tuple(info.name for info in fields_of(DreamParams))


def dream_params(p: ZoomParams, frame: int = 0) -> DreamParams:
    """The dream of frame ``frame`` (0-based): ``p``'s dream fields, the seed ``p.seed + frame``."""
    values = {name: getattr(p, name) for name in _DREAM_FIELDS}
    if p.seed is not None:
        values["seed"] = (p.seed + frame) % 2**32
    return DreamParams(**values)


def zoom_frame(image: np.ndarray, zoom: float, rotate: float) -> np.ndarray:
    """``image`` (float (H, W, 3) in [0, 1]) scaled by ``zoom`` about its centre and turned ``rotate`` degrees
    counter-clockwise, same shape: the output pixel ``o`` samples the input at ``c + R(-rotate) (o - c) / zoom``
    (bilinear; past the edges, reflected)."""
    from scipy import ndimage

    if zoom == 1.0 and rotate == 0.0:
        return image
    h, w = image.shape[:2]
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    a = math.radians(rotate)
    # (row, col) coordinates: a counter-clockwise turn on screen, rows pointing down
    turn = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    matrix = turn / zoom
    offset = centre - matrix @ centre
    out = np.empty_like(image)
    for c in range(image.shape[2]):
        out[..., c] = ndimage.affine_transform(image[..., c], matrix, offset, order=1, mode="reflect")
    return np.clip(out, 0.0, 1.0)


@takes(ZoomParams)
def dream_zoom_run(image: Any, params: ZoomParams | None = None, *, steps_per_frame: int | None = None,
                   **kwargs: Any) -> Run:
    """Start a zoom animation of ``image`` and return its :class:`~nbart.events.Run`: one event per frame.

    ``image`` is anything :func:`nbart.load_image` reads, fitted to ``max_size``. Parameters: a
    :class:`~nbart.params.ZoomParams` and/or keywords (``frames``, ``zoom``, ``rotate``, ``fps`` and every dream
    field; ``steps_per_frame`` is another name for ``steps``). Bad values raise ParamError before any work; nothing
    is computed until the first frame is pulled. ``run.image()`` is the latest frame (PIL); each event's
    ``image()`` its frame as uint8 (H, W, 3).
    """
    if steps_per_frame is not None:
        kwargs["steps"] = steps_per_frame
    p = runs.with_seed(ZoomParams.from_kwargs(params, **kwargs))
    prepared = deepdream.prepare(dream_params(p))  # the first notices (a weights fallback), and what ran
    start, _original = images.prepare(image, p.max_size, prepared.backbone.min_size)
    notices = prepared.notices

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        return _zoom_frames(start, p, notices, stop)

    return Run("zoom", p, steps, p.frames, start, notices, prepared=prepared, inputs=(runs.describe(image),))


def _zoom_frames(start: Image.Image, p: ZoomParams, notices: list[str], stop: Any) -> Iterator[StepEvent]:
    t0 = time.perf_counter()
    current = start
    height, width = start.size[1], start.size[0]
    pace = Pace([height * width], p.frames)  # every frame the same size: the first one also traces
    for i in range(p.frames):
        if stop.is_set():
            return Outcome.STOPPED
        dream = deepdream.dream_run(current, dream_params(p, i))
        dream.timeline = None  # the zoom's own timeline keeps the frames
        loss = float("nan")
        try:
            for event in dream:
                if stop.is_set():
                    dream.close()
                    return Outcome.STOPPED
                stop.report(event.step, event.total)  # progress within the frame (the CLI's bar shows it)
                loss = event.loss
        finally:
            dream.close()
        for notice in dream.notices:
            if notice not in notices:
                notices.append(notice)
        if dream.outcome == Outcome.FAILED or dream.latest is None:
            return Outcome.FAILED if dream.outcome == Outcome.FAILED else Outcome.STOPPED
        if dream.outcome == Outcome.STOPPED and dream.latest.step < dream.total:
            return Outcome.STOPPED  # a frame dreamed only in part is not a frame
        frame = dream.image()
        elapsed = time.perf_counter() - t0
        yield StepEvent(step=i + 1, total=p.frames, stage=0, stages=1, label=f"frame {i + 1}/{p.frames}",
                        loss=loss, elapsed=elapsed, size=(height, width), eta=pace.seconds_left(i + 1, elapsed),
                        render=lambda frame=frame: to_float(frame), done=i + 1 == p.frames,
                        metrics={"activation": -loss})
        if i + 1 < p.frames:
            current = Image.fromarray(to_uint8(zoom_frame(to_float(frame), p.zoom, p.rotate)))
    return Outcome.COMPLETED


@takes(ZoomParams)
def dream_zoom(image: Any, params: ZoomParams | None = None, *, steps_per_frame: int | None = None,
               **kwargs: Any) -> Iterator[Image.Image]:
    """A Deep Dream zoom animation of ``image``: an iterator of its frames as PIL images, made as they are pulled.

    Keywords as :func:`dream_zoom_run` (``frames=30, zoom=1.05, rotate=0.0, steps_per_frame=5`` and the dream's
    fields: ``model``, ``layers``, ``octaves=1``, ``step_size``...). Stop by leaving the loop (``break``), or with
    the kernel's interrupt, which ends the iterator after the frames made (an
    :class:`~nbart.events.Interrupted` warning says where); its notices are issued as warnings. For the step
    events, the time left and a ``stop()`` from another thread, use :func:`dream_zoom_run`. Write the frames with
    :func:`nbart.video.save_video` (MP4 or GIF)::

        frames = list(nbart.dream_zoom("sample:grace_hopper", frames=24, zoom=1.04, max_size=256))
        nbart.video.save_video(frames, "zoom.mp4", fps=12)
    """
    return _frames(dream_zoom_run(image, params, steps_per_frame=steps_per_frame, **kwargs))


def _frames(run: Run) -> Iterator[Image.Image]:
    import warnings

    shown = 0
    try:
        for event in run:
            for notice in run.notices[shown:]:
                warnings.warn(notice, stacklevel=3)
            shown = len(run.notices)
            yield event.pil()
    except KeyboardInterrupt:
        run.close()
        if run.latest is None:
            raise
        warnings.warn(f"interrupted after frame {run.latest.step}/{run.total}: the frames made were given",
                      Interrupted, stacklevel=3)
    finally:
        run.close()

