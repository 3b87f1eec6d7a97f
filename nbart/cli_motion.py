"""The moving-picture commands of ``nbart``: ``nbart zoom INPUT -o out.mp4|.gif`` (a Deep Dream zoom animation)
and ``nbart style VIDEO STYLE -o out.mp4`` / ``nbart fast-style VIDEO STYLE -o out.mp4`` (a video painted frame
by frame). :mod:`nbart.cli` hooks them in; this module holds their parsing and their run loop.

Frames are written as they come (:class:`nbart.video.VideoWriter`: an MP4 streams to ffmpeg), so memory does not
grow with the animation's length. A tqdm bar on stderr counts frames with the time left (the engine's estimate) and
the steps within the frame being made. Ctrl-C, SIGTERM or SIGHUP end the run and the frames made are written,
atomically (exit status 130, or 128 + N); a failure mid-run writes them too and exits 1 with one line.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from nbart import safety
from nbart.errors import ImageError, ParamError, error_message
from nbart.images import folder_problem
from nbart.video import VIDEO_FORMATS, VideoWriter, is_video

__all__ = ["add_parsers", "zoom", "wants_video", "style_video"]


def _check_output(out: str, inputs: list[str]) -> None:
    if os.path.splitext(out)[1].lower() not in VIDEO_FORMATS:
        raise ParamError(f"output must end in {' or '.join(VIDEO_FORMATS)} (got {out!r})")
    problem = folder_problem(out)
    if problem:
        raise ImageError(f"can't write {out}: {problem}")
    for source in inputs:
        if os.path.exists(source) and os.path.abspath(out) == os.path.abspath(source):
            raise ParamError(f"output {out} is the input; choose another file name so the input is kept")


def add_parsers(sub: Any, add_spec_arguments: Callable[[argparse.ArgumentParser, type], None],
                samples: str) -> None:
    """Add ``zoom`` to the ``nbart`` subcommands (``sub``), its flags from :class:`~nbart.params.ZoomParams`."""
    from nbart.params import ZoomParams

    what = ("a Deep Dream zoom animation: each frame dreams on the previous one, zoomed into its centre (and "
            "turned), written as MP4 or GIF")
    p = sub.add_parser("zoom", help=what, description=what)
    p.add_argument("input", help=f"image: a path, an http(s) URL, or a bundled sample ({samples})")
    p.add_argument("-o", "--output", required=True,
                   help="where to write the animation (.mp4 or .gif); written atomically, also when stopped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_spec_arguments(p, ZoomParams)


def zoom(args: argparse.Namespace) -> int:
    """``nbart zoom``: returns the exit status."""
    from nbart.params import ZoomParams, fields_of
    from nbart.zoom import dream_zoom_run

    _check_output(args.output, [args.input])
    values = {info.name: getattr(args, info.name) for info in fields_of(ZoomParams) if hasattr(args, info.name)}
    params = ZoomParams(**values)
    run = dream_zoom_run(args.input, params)
    _tensorflow_quietly()
    return _write(run, args.output, run.params.fps, args.quiet, "zoom")


def wants_video(args: argparse.Namespace) -> bool:
    """Whether a ``style``/``fast-style`` command line names a video (or animated GIF) as its content."""
    return is_video(getattr(args, "content", None))


def style_video(args: argparse.Namespace, params_cls: type) -> int:
    """``nbart style VIDEO STYLE -o out.mp4`` (the optimization, each frame from the previous result) or
    ``nbart fast-style VIDEO STYLE -o out.mp4`` (the fast network): returns the exit status."""
    from nbart.params import StyleParams, fields_of
    from nbart.videostyle import style_video_run

    _check_output(args.output, [args.content, *args.style])
    values = {info.name: getattr(args, info.name) for info in fields_of(params_cls) if hasattr(args, info.name)}
    run = style_video_run(args.content, args.style, params_cls(**values))
    if params_cls is StyleParams:
        _tensorflow_quietly()
    return _write(run, args.output, run.fps, args.quiet, "style video")


def _tensorflow_quietly() -> None:
    from nbart.quiet import tensorflow

    tensorflow()


def _left(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "? left"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s left" if minutes else f"{secs} s left"


class _WithinFrame:
    """Shows the steps within the frame being made (``run.progress``) on the bar, polled every half second from a
    helper thread, since the main thread is inside the frame's dream."""

    def __init__(self, run: Any, bar: Any):
        self.run, self.bar = run, bar
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True, name="nbart-frame-progress")

    def __enter__(self) -> _WithinFrame:
        if not self.bar.disable:
            self.thread.start()
        return self

    def _poll(self) -> None:
        shown = None
        while not self.done.wait(0.5):
            progress, latest = self.run.progress, self.run.latest
            if progress is not None and progress != shown:
                frame = (latest.step if latest is not None else 0) + 1
                left = f" · {_left(latest.seconds_left)}" if latest is not None else ""
                self.bar.set_postfix_str(f"frame {frame}/{self.run.total} step {progress[0]}/{progress[1]}{left}",
                                         refresh=True)
            shown = progress

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()


def _write(run: Any, out: str, fps: float, quiet: bool, name: str) -> int:
    from tqdm import tqdm

    writer = VideoWriter(out, fps)
    bar = tqdm(total=run.total, file=sys.stderr, disable=quiet, unit="frame", dynamic_ncols=True, desc=name)

    note_new = safety.Notices(run, bar)  # writes the run's new notices above the bar

    interrupted, failure, signalled = False, None, 0
    try:
        with safety.EndingSignals(), _WithinFrame(run, bar):
            note_new()
            for event in run:
                writer.add(event.image())
                bar.update(event.step - bar.n)
                bar.set_postfix_str(f"{event.label} · {_left(event.seconds_left)}", refresh=False)
                note_new()
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP raised as safety.Signalled
        interrupted, signalled = True, getattr(e, "signum", 0)
        run.close()
    except Exception as e:  # a fault mid-run: keep the frames made, report one line
        failure = e
        run.close()
    finally:
        bar.close()
    note_new()
    status = 128 + signalled if signalled else 130
    how = f"ended by {signal.Signals(signalled).name}" if signalled else "interrupted"
    try:
        wrote = writer.close()  # the frames made, whatever ended the run
    except ImageError as e:
        print(f"nbart: error: {e}", file=sys.stderr)
        return status if interrupted else 1
    frames = f"{writer.frames} frame{'s' if writer.frames != 1 else ''}"
    if not wrote:
        if failure is not None:
            raise failure  # main() turns it into one line
        print(f"nbart: {how if interrupted else 'stopped'} before the first frame; nothing written", file=sys.stderr)
        return status if interrupted else 1
    if interrupted:
        print(f"nbart: {how} after {frames}; wrote {out}", file=sys.stderr)
        return status
    if failure is not None:
        print(f"nbart: error: the run failed after {frames} ({error_message(failure)}); wrote them to {out}",
              file=sys.stderr)
        return 1
    if not quiet or not run.completed:
        print(f"nbart: wrote {out} ({frames}, {fps:g} fps)", file=sys.stderr)
    return 0
