"""Style transfer of a video or animated GIF, frame by frame, streamed: memory does not grow with its length.

Two methods, as the users of neural-style's video scripts and DeepDreamVideo did it:

- ``fast``: every frame painted by the feed-forward network (:func:`nbart.fast.fast_style_run`; Ghiasi et al.
  2017), independently: quick, may flicker a little;
- ``optimize``: the first frame by the optimization's full schedule (:func:`nbart.styletransfer.style_run`), every
  later frame by the optimization at the output size *started from the previous frame's result* (``init_image``),
  so the strokes stay put between frames (the initialization half of Ruder et al. 2016, "Artistic style transfer
  for videos", without its optical-flow terms).

Frames come from :func:`nbart.video.read_video` one at a time and each painted frame is given to the consumer as
an event, so a consumer writing them to a :class:`nbart.video.VideoWriter` holds one frame at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from PIL import Image

from nbart import images, runs
from nbart.errors import ParamError
from nbart.events import Outcome, Pace, Run, StepEvent
from nbart.images import to_float
from nbart.params import FastStyleParams, StyleParams
from nbart.video import read_video, video_info

__all__ = ["style_video_run", "METHODS"]

METHODS = ("fast", "optimize")


def style_video_run(video: str, style: Any, params: StyleParams | FastStyleParams) -> Run:
    """Start painting every frame of ``video`` (a path: .mp4, .mov, .webm, .mkv, .avi, or an animated .gif) in the
    style of ``style`` (one image or a list, anything :func:`nbart.load_image` reads) and return a
    :class:`~nbart.events.Run` with one event per frame (``step`` = frame number; ``event.image()`` the painted
    frame, uint8 (H, W, 3)). ``params`` chooses the method: :class:`~nbart.params.FastStyleParams` the fast
    network, :class:`~nbart.params.StyleParams` the optimization (see the module's text). ``run.fps`` is the
    video's frame rate. ImageError names an unreadable video; nothing is painted until the first event is pulled.
    """
    info = video_info(video)
    total = info["frames"] or 1
    styles = [images.load_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    if not styles:
        raise ParamError("give at least one style image")
    fast = isinstance(params, FastStyleParams)
    if not fast:
        params = runs.with_seed(params)
    notices: list[str] = []
    first = Image.new("RGB", info["size"])

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        return _frames(video, styles, params, fast, total, notices, stop)

    run = Run("style_video", params, steps, total, first, notices, inputs=(runs.describe(video),
                                                                         *(runs.describe(s) for s in styles)))
    run.fps = info["fps"]
    return run


def _frames(video: str, styles: list, p: Any, fast: bool, total: int, notices: list[str],
            stop: Any) -> Iterator[StepEvent]:
    from nbart.fast import fast_style_run
    from nbart.styletransfer import style_run

    t0 = time.perf_counter()
    previous = None
    pace = None
    reader = read_video(video)
    try:
        for i, array in enumerate(reader):
            if stop.is_set():
                return Outcome.STOPPED
            frame = Image.fromarray(array)
            if fast:
                one = fast_style_run(frame, styles, p)
            elif previous is None:
                one = style_run(frame, styles, p)
            else:  # from the previous frame's result, at its size: the strokes stay put
                one = style_run(frame, styles, p.replace(sizes=(max(previous.size),)), init_image=previous)
            one.timeline = None  # the video's own timeline keeps its frames
            loss = float("nan")
            try:
                for event in one:
                    if stop.is_set():
                        return Outcome.STOPPED
                    stop.report(event.step, event.total)
                    loss = event.loss
            finally:
                one.close()
            for notice in one.notices:
                if notice not in notices:
                    notices.append(notice)
            if one.outcome == Outcome.FAILED or one.latest is None:
                return Outcome.FAILED if one.outcome == Outcome.FAILED else Outcome.STOPPED
            painted = one.image()
            previous = painted
            elapsed = time.perf_counter() - t0
            if pace is None:
                pace = Pace([painted.size[0] * painted.size[1]], max(total, i + 1))
            step = i + 1
            yield StepEvent(step=step, total=max(total, step), stage=0, stages=1, label=f"frame {step}/{total}",
                            loss=loss, elapsed=elapsed, size=(painted.size[1], painted.size[0]),
                            eta=pace.seconds_left(step, elapsed) if step <= total else float("nan"),
                            render=lambda painted=painted: to_float(painted), done=step == total)
    finally:
        reader.close()
    return Outcome.COMPLETED
