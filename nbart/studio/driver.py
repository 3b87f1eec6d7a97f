"""How a studio's run happens: in a worker thread or in the foreground, one at a time, its frames throttled by time.

- JupyterLab, Notebook 7, VS Code, Binder: the run happens in a worker thread, so the kernel stays free for other
  cells and for the Stop button's click. The worker only sets widget values (never print/display from it),
  throttled by time (latest frame wins): a small JPEG while running and a PNG at the end.
- Google Colab drops widget updates sent from threads, so there the run happens in the foreground (the cell or the
  click handler blocks) and the updates come from the main thread; the cell's interrupt stops it and keeps the image.
- Keras keeps some settings per thread (the dtype policy): the worker gets the main thread's.
- A warm-up thread builds the network and traces its step while the user looks at the panel.
- Quick work a control asks for as it moves (the StyleStudio's fast preview) is debounced: one background call with
  the latest request once the control has been still for a moment.

(DESIGN.md §4 has the platform facts behind each point.) The driver knows the engine's ``Run`` and a :class:`View`
(the studio): it never creates widgets and never decides what a result means.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nbart.events import preview_jpeg
from nbart.images import GIF_MAX_FRAMES

__all__ = ["Job", "Frames", "View", "Driver", "StepProgress", "WarmUp", "Debounced", "keras_state",
           "apply_keras_state", "any_running", "wait_none_running"]

IGNORE_CLICKS_AFTER_FOREGROUND = 0.5  # s: clicks queued while a foreground run held the kernel are dropped
PROGRESS_SECONDS = 0.5  # s: how often a long step's progress (a tiled dream step's tiles) is polled, as the CLI does


# Every studio's run in progress in this process: a cost probe (which times the CPU) never runs beside any of them,
# not only beside its own studio's (two studios in one notebook: the dream's probe timed a shared core for 31 s
# during the style studio's run, slowing its steps and caching a rate 2x too slow; benchmarks/results/first-step-*).
_running: set[int] = set()
_running_changed = threading.Condition()


def any_running() -> bool:
    """Whether any studio in this process has a run in progress."""
    return bool(_running)


def wait_none_running(timeout: float | None = None) -> bool:
    """Block until no studio in this process has a run in progress (at most ``timeout`` seconds); True if none has."""
    with _running_changed:
        return _running_changed.wait_for(lambda: not _running, timeout)


def _set_running(driver: Any, running: bool) -> None:
    with _running_changed:
        if running:
            _running.add(id(driver))
        else:
            _running.discard(id(driver))
            _running_changed.notify_all()


@dataclass
class Job:
    """What one press of Run (or Continue) asked for, read from the widgets on the main thread. ``make_run`` is
    called in the worker: it reads the images (a URL may take seconds) and returns the engine's Run."""

    make_run: Callable[[], Any]
    params: Any
    sources: dict[str, Any]
    continued: bool = False
    parent: Any = None  # the studio's result a Continue goes on from


@dataclass
class Frames:
    """What a run showed: the live JPEG frames (at most :data:`GIF_MAX_FRAMES`, for a GIF), the loss of every step
    and the steps where a stage (octave, size) began, for the loss curve."""

    jpegs: list[bytes] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    stage_starts: list[int] = field(default_factory=list)
    _stage: int | None = None

    def step(self, event: Any) -> None:
        if event.stage != self._stage:
            self.stage_starts.append(event.step - 1)
            self._stage = event.stage
        self.losses.append(event.loss)

    def frame(self, jpeg: bytes) -> None:
        self.jpegs.append(jpeg)
        if len(self.jpegs) > GIF_MAX_FRAMES:
            del self.jpegs[1::2]  # keep the GIF short: halve the frame rate


class View(Protocol):
    """What the driver calls on the studio (any thread: these only set widget values)."""

    def run_began(self, run: Any) -> None: ...  # the Run exists: show its prepared input

    def run_event(self, event: Any) -> None: ...  # every step's event (cheap: the inside view's curves)

    def run_step(self, run: Any, event: Any, jpeg: bytes, frames: Frames) -> None: ...  # a throttled frame

    def run_ended(self, job: Job, run: Any, frames: Frames, outcome: str) -> None: ...  # stopped, done, interrupted

    def run_failed(self, error: BaseException, run: Any = None) -> None: ...

    def run_progress(self, run: Any, done: int, parts: int) -> None: ...  # within a long step: tiles done / tiles

    def run_idle(self) -> None: ...  # no run any more: buttons back

    def say(self, text: str | None, kind: str = "note") -> None: ...

    def set_status(self, text: str) -> None: ...


class Driver:
    """Runs one :class:`Job` at a time for a :class:`View`, in a worker thread (``mode="thread"``) or in the
    calling thread (``"foreground"``); a frame at most every ``interval`` seconds, ``preview_size`` px."""

    def __init__(self, view: View, mode: str, interval: float, preview_size: int, name: str):
        self.view, self.mode, self.interval, self.preview_size, self.name = view, mode, interval, preview_size, name
        self.thread: threading.Thread | None = None  # the last run's worker
        self.run: Any = None  # the engine's Run in progress, or None
        self._lock = threading.Lock()
        self._busy = False
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._ignore_clicks_until = 0.0
        self.progress_seconds = PROGRESS_SECONDS
        self._showing = threading.Lock()  # a step's frame and the progress within the next step: never interleaved

    @property
    def busy(self) -> bool:
        """Whether a run is in progress (from the press of Run until its panel is ready again)."""
        return self._busy

    def launch(self, prepare: Callable[[], Job], block: bool | None = None, starting: Callable[[], None] = None
               ) -> bool:
        """Start the job ``prepare()`` returns (it reads the widgets: call on the main thread); False if a run is in
        progress or ``prepare`` raised (the view was told). ``starting()`` runs once the job is accepted.
        ``block`` runs it in the calling thread; the default follows ``mode``."""
        with self._lock:
            if self._busy:
                self.view.say("a run is in progress: press Stop first", "note")
                return False
            self._busy = True
            self._idle.clear()
            _set_running(self, True)
        try:
            job = prepare()
        except Exception as exc:
            self.view.run_failed(exc)
            self._release()
            return False
        stop = self._stop = threading.Event()
        if starting is not None:
            starting()
        state = keras_state()
        if block if block is not None else self.mode == "foreground":
            self._work(job, stop, state)
            if self.mode == "foreground":
                self._ignore_clicks_until = time.monotonic() + IGNORE_CLICKS_AFTER_FOREGROUND
        else:
            self.thread = threading.Thread(target=self._work, args=(job, stop, state), name=self.name, daemon=True)
            self.thread.start()
        return True

    def stop(self) -> None:
        """Stop the run after its current step; the picture is kept. Safe from any thread."""
        self._stop.set()
        run = self.run
        if run is not None:
            run.stop()
        if self._busy:
            self.view.set_status("stopping after this step…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no run is in progress (at most ``timeout`` seconds); True if none is."""
        return self._idle.wait(timeout)

    def clicks_ignored(self) -> bool:
        """In the foreground, clicks sent while a run held the kernel arrive after it ends: a double-click on Run
        must not start a second run then."""
        return time.monotonic() < self._ignore_clicks_until

    def _release(self) -> None:
        with self._lock:
            self._busy = False
            self.run = None
            self._idle.set()
        _set_running(self, False)

    def _work(self, job: Job, stop: threading.Event, state: dict) -> None:
        """The run loop: pull events, show a frame at most every ``interval`` seconds, then the result."""
        run = poller = None
        frames = Frames()
        view = self.view
        try:
            apply_keras_state(state)
            run = job.make_run()
            self.run = run
            if stop.is_set():
                run.stop()
            view.run_began(run)
            # the worker is inside a step for as long as it lasts: a helper thread shows its tiles as they finish
            poller = StepProgress(run, view.run_progress, self.progress_seconds, self._showing)
            poller.start()
            last = 0.0
            for event in run:
                frames.step(event)
                view.run_event(event)
                now = time.monotonic()
                if event.done or now - last >= self.interval:
                    last = now
                    # rendered at preview size (a dream composes its octaves small): cheaper than image()
                    jpeg = preview_jpeg(event, self.preview_size)
                    frames.frame(jpeg)
                    with self._showing:
                        view.run_step(run, event, jpeg, frames)
            poller.stop()
            view.run_ended(job, run, frames, run.outcome)
        except KeyboardInterrupt:  # foreground mode: the cell's interrupt stops the run and keeps the image
            if run is not None:
                run.close()
                view.run_ended(job, run, frames, "interrupted")
            else:
                view.set_status("interrupted before the first step")
        except Exception as exc:
            if run is not None:
                run.close()
            view.run_failed(exc, run)
        finally:
            if poller is not None:
                poller.stop()
            view.run_idle()  # buttons back before wait() returns
            self._release()


class StepProgress:
    """Polls ``run.progress`` (the parts of the step being computed: a tiled dream step's tiles) every ``seconds``
    from a helper thread and calls ``show(run, done, parts)`` when it changes, so a step that takes minutes still
    moves (the CLI's bar does the same: :class:`nbart.safety.ProgressPoller`). ``lock`` is held while showing, and
    the progress read again under it: a step's own frame, shown under the same lock after the engine cleared the
    progress, is never overwritten by its last tile. A step of one part (one network call) shows nothing."""

    def __init__(self, run: Any, show: Callable[[Any, int, int], None], seconds: float,
                 lock: threading.Lock | None = None):
        self.run, self.show, self.seconds = run, show, seconds
        self.lock = lock or threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True, name="nbart-step-progress")
        self.shown: tuple[int, int] | None = None

    def start(self) -> None:
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(self.seconds):
            progress = self.run.progress
            if progress == self.shown or progress is None or progress[1] <= 1:
                self.shown = progress
                continue
            with self.lock:
                progress = self.run.progress
                if progress is not None and not self.done.is_set() and not self.run.finished:
                    try:
                        self.show(self.run, *progress)
                    except Exception:  # a view that can't show it: the run goes on without it
                        pass
            self.shown = progress

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join()


class WarmUp:
    """Calls ``warm()`` in a background thread (one at a time; a request during a warm-up queues one more), unless
    ``busy()``: a run builds what it needs itself, so a warm-up never takes its CPU. ``warm`` reads the controls and
    touches no widget; whatever fails in it fails again on Run, where the panel says it in words."""

    def __init__(self, warm: Callable[[], None], busy: Callable[[], bool]):
        self._warm, self._busy = warm, busy
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the two flags, so a request never lands as the thread ends
        self._wanted = False  # a warm-up was asked for since the thread last started one
        self._looping = False  # a warm-up thread is looping

    def request(self, _change: Any = None) -> None:
        """Ask for a warm-up (an ipywidgets ``observe`` callback as it is)."""
        with self._lock:
            self._wanted = True
            if not self._looping:
                self._looping = True
                self.thread = threading.Thread(target=self._loop, daemon=True, name="nbart-warm-up")
                self.thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._wanted:
                    self._looping = False
                    return
                self._wanted = False
            if self._busy():
                continue
            try:
                self._warm()
            except Exception:
                pass


class Debounced:
    """Calls ``work(request)`` in a background thread once no :meth:`request` came for ``delay`` seconds, with the
    latest request only: a burst of slider moves makes one call. A request during a call makes one more call after
    it (:meth:`pending` tells the running call that its result is already stale). ``foreground=True`` (Colab, which
    drops a thread's widget updates) calls ``work`` at once in the caller's thread instead."""

    def __init__(self, work: Callable[[Any], None], delay: float, name: str, foreground: bool = False):
        self._work, self.delay, self.name, self.foreground = work, delay, name, foreground
        self.thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._request: Any = None
        self._waiting = False  # a request waits for its call
        self._due = 0.0  # when it may be called (monotonic seconds)
        self._looping = False
        self._idle = threading.Event()
        self._idle.set()

    def request(self, value: Any) -> None:
        """Ask for ``work(value)``; replaces a request that waits."""
        if self.foreground:
            self._work(value)
            return
        with self._cond:
            self._request, self._waiting = value, True
            self._due = time.monotonic() + self.delay
            self._idle.clear()
            if self._looping:
                self._cond.notify()
            else:
                self._looping = True
                self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self.thread.start()

    def pending(self) -> bool:
        """Whether a newer request waits (the call in progress then works for nothing the user still wants)."""
        return self._waiting

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no request waits and no call runs (at most ``timeout`` seconds); True if so."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._waiting:
                        self._looping = False
                        self._idle.set()
                        return
                    left = self._due - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                value, self._waiting = self._request, False
            try:
                self._work(value)
            except Exception:  # work reports its own errors in the panel; the loop must outlive any
                pass


def keras_state() -> dict:
    """Keras' per-thread settings in this (the main) thread, to give the worker the same (DESIGN.md §4)."""
    keras = sys.modules.get("keras")
    if keras is None or getattr(getattr(keras, "__spec__", None), "_initializing", False):
        # not imported, or still importing in another thread (Run pressed while the warm-up imports TensorFlow):
        # nobody can have set a policy yet, and the half-made module has no ``config``
        return {}
    return {"dtype_policy": keras.config.dtype_policy().name}


def apply_keras_state(state: dict) -> None:
    """Set :func:`keras_state`'s settings in this thread."""
    if state:
        import keras

        keras.config.set_dtype_policy(state["dtype_policy"])
