"""What keeps a CLI run's work safe whatever ends the process (issue: nothing lost).

- :class:`Checkpoints`: the latest image written atomically to the output path every ``CHECKPOINT_SECONDS`` and at
  every stage's end, with the settings and the step reached in its metadata, so that a death nothing can catch
  (SIGKILL, an out-of-memory abort, a native crash) leaves recent work on disk and never a partial file.
- :class:`EndingSignals`: SIGTERM and SIGHUP (a scheduler, ``timeout``, a closed terminal) end a run as Ctrl-C does,
  raised as :class:`Signalled`, so the CLI writes the last image and exits with 128 + the signal's number.
- :class:`ProgressPoller`: the progress within a long step (a tiled dream step's tiles) on the bar.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from nbart.errors import ImageError
from nbart.images import save_image

__all__ = ["CHECKPOINT_SECONDS", "CHECKPOINT_COST_RATIO", "ENDING_SIGNALS", "Signalled", "EndingSignals",
           "Checkpoints", "ProgressPoller"]


def _checkpoint_seconds() -> float:
    """Seconds between checkpoints: NBART_CHECKPOINT_SECONDS (0: after every step; "inf": only at stage ends)."""
    text = os.environ.get("NBART_CHECKPOINT_SECONDS", "")
    try:
        return max(0.0, float(text)) if text else 5.0
    except ValueError:
        return 5.0


CHECKPOINT_SECONDS = _checkpoint_seconds()
CHECKPOINT_COST_RATIO = 100  # the interval is at least this many times a checkpoint's cost: at most 1 % of the run
# The signals a scheduler, `timeout` or a closed terminal send to end a process: they end a run as Ctrl-C does.
ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Notices:
    """Call after each step: writes the run's notices that appeared since the last call above its tqdm ``bar``."""

    def __init__(self, run: Any, bar: Any):
        self.run, self.bar, self.shown = run, bar, 0

    def __call__(self) -> None:
        for notice in self.run.notices[self.shown:]:
            self.bar.write(f"nbart: note: {notice}", file=sys.stderr)
        self.shown = len(self.run.notices)


class Signalled(KeyboardInterrupt):
    """A catchable ending signal (SIGTERM, SIGHUP) raised where the run is, so it ends as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_signalled(signum: int, frame: Any) -> None:
    raise Signalled(signum)


class EndingSignals:
    """While inside: ENDING_SIGNALS raise :class:`Signalled` in the main thread (only there can handlers be set)."""

    def __enter__(self) -> None:
        import threading

        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for signum in ENDING_SIGNALS:
                self.saved[signum] = signal.signal(signum, _raise_signalled)

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


class Checkpoints:
    """Writes the run's latest image to the output path, atomically, every CHECKPOINT_SECONDS and at every stage's
    end, so that a death nothing can catch (SIGKILL, an out-of-memory abort) leaves recent work on disk.

    The interval grows to CHECKPOINT_COST_RATIO times the last checkpoint's cost when that is longer (a huge
    image), so that checkpoints never take more than 1/CHECKPOINT_COST_RATIO of the run between stage ends."""

    def __init__(self, run: Any, path: str, inputs: list[str], bar: Any):
        self.run, self.path, self.inputs, self.bar = run, path, inputs, bar
        self.last = time.monotonic()
        self.failed = False
        self.seconds = 0.0  # time spent writing checkpoints (what they cost the run)
        self.cost = 0.0  # the last checkpoint's seconds
        self.count = 0

    def after(self, event: Any) -> None:
        if event.done or self.failed:
            return  # the final image is written next
        stage_end = (event.step * event.stages) % event.total == 0
        # 0 (a test's setting): after every step, whatever it costs
        interval = CHECKPOINT_SECONDS and max(CHECKPOINT_SECONDS, CHECKPOINT_COST_RATIO * self.cost)
        if not stage_end and time.monotonic() - self.last < interval:
            return
        t0 = time.monotonic()
        try:
            save_image(event.pil(), self.path, self.run.metadata(ended="checkpoint", inputs=self.inputs),
                       checkpoint=True)
        except ImageError as e:  # the final write reports it again; the run goes on
            self.failed = True
            self.bar.write(f"nbart: warning: no checkpoint written: {e}", file=sys.stderr)
        self.last = time.monotonic()
        self.cost = self.last - t0
        self.seconds += self.cost
        self.count += 1


class ProgressPoller:
    """Shows the progress within a long step (``run.progress``: a tiled dream step's tiles) on the bar, polled
    from a helper thread every half second, since the main thread is inside the step."""

    def __init__(self, run: Any, bar: Any):
        import threading

        self.run, self.bar = run, bar
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True, name="nbart-progress")
        self.shown: tuple[int, int] | None = None

    def start(self) -> None:
        if not self.bar.disable:
            self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(0.5):
            progress = self.run.progress
            if progress != self.shown and progress is not None and progress[1] > 1:
                label = self.run.latest.label if self.run.latest is not None else ""
                self.bar.set_postfix_str(f"{label} tile {progress[0]}/{progress[1]}".strip(), refresh=True)
            self.shown = progress

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
