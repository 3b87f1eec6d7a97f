"""The studio shared by DreamStudio and StyleStudio: controls from the spec, a live preview, history, save and code.

A studio is a :class:`~nbart.studio.panel.Panel` (the widgets) with a :class:`~nbart.studio.driver.Driver` (how a
run happens: a worker thread, or the foreground on Colab), a history of :class:`~nbart.studio.history.Result` and
the export in :mod:`nbart.studio.export`. This module holds what joins them: the public API (``start``, ``stop``,
``continue_run``, ``restore``, ``save``, ``code_text``) and what a result means. Subclasses name their task and
make the engine's run.

Errors are shown in the panel in plain words; the last good image stays.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from PIL import Image

from nbart.cost import WontFit
from nbart.errors import USER_ERRORS, ImageError, ParamError, error_message
from nbart.studio import export
from nbart.studio.compat import in_colab
from nbart.studio.controls import ControlSet, label_of
from nbart.studio.costlabel import CostLabel
from nbart.studio.driver import Driver, Frames, Job, WarmUp, any_running, wait_none_running
from nbart.studio.history import Result
from nbart.studio.inside import InsidePanel
from nbart.studio.panel import Panel
from nbart.studio.render import duration
from nbart.studio.sources import SourcePicker, names_in_caller, naming_uploads
from nbart.studio.startsize import SIZE_FIELDS, StartSize, place_after
from nbart.studio.timeline import TimelineView, kept

__all__ = ["Studio", "Result"]

PLAIN_ERRORS = USER_ERRORS  # their messages are written for people already


def _error_text(exc: BaseException) -> str:
    return error_message(exc)  # the one advice table (nbart.errors), so the CLI and the studio agree


class Studio(Panel):
    """Base of the studios. Subclasses name their task and make the engine run; everything else is generic."""

    task = ""  # "dream"
    title = ""
    function = ""  # the public call "Show code" writes: "nbart.dream"
    params_cls: type
    layer_fields: dict[str, str] = {}  # layer-list field -> Backbone attribute with its defaults
    pickers_spec: tuple[tuple[str, str, bool, str], ...] = ()  # (source, label, several images allowed, sample)
    tab_titles = {"main": "Settings", "image": "Size", "model": "Model"}  # the settings tabs, by spec group
    starting: dict[str, Any] = {}  # the controls' starting values where they differ from the engine's defaults

    def __init__(self, sources: dict[str, Any], params: dict[str, Any], mode: str = "auto",
                 preview_size: int = 384, fps: float = 4.0, warm_up: bool | None = None,
                 estimate: bool | None = None, fit_start: bool | None = None):
        if mode not in ("auto", "thread", "foreground"):
            raise ParamError(f"mode must be auto, thread or foreground (got {mode!r})")
        self.mode = ("foreground" if in_colab() else "thread") if mode == "auto" else mode
        self.interval = 1.0 / fps
        self._initial = self.params_cls.from_kwargs(**params)
        self._controls = ControlSet(self.params_cls, self._initial, self.layer_fields)
        self.controls: dict[str, widgets.Widget] = self._controls.widgets
        names = names_in_caller(sources)
        self.pickers = {name: SourcePicker(label, sources.get(name), multiple, sample, names.get(name))
                        for name, label, multiple, sample in self.pickers_spec}
        self.saved_inputs: export.Saved = {}  # uploads (and unnamed images) saved beside the notebook, for the code
        self.current: Result | None = None  # the result on show (None: the sources are on show)
        self.history: list[Result] = []
        self.error: str | None = None  # the last error shown, in words
        self.error_details: str | None = None  # its traceback, for an unexpected error
        self.driver = Driver(self, self.mode, self.interval, preview_size, f"nbart-{self.task}-studio")

        # in the foreground, clicks queued while a run held the kernel arrive after it: Run and Continue drop them
        handlers = {"run": lambda _b: self.driver.clicks_ignored() or self.start(),
                    "continue": lambda _b: self.driver.clicks_ignored() or self.continue_run(),
                    "stop": lambda _b: self.stop(), "reset": lambda _b: self.reset(), "code": self._show_code,
                    "save": lambda _b: self.save(), "restore": self.restore}
        guarded = {name: self._guarded(handler) for name, handler in handlers.items()}
        self.timeline_view = TimelineView(self, f"{preview_size}px")  # scrub a finished run's frames
        from nbart.studio.compare import CompareTab  # issue 18: every combination of a few settings, small

        self.compare = CompareTab(self)
        super().__init__(title=self.title, task=self.task, function=self.function, controls=self._controls,
                         pickers=self.pickers, tab_titles=self.tab_titles, preview_size=preview_size,
                         handlers=guarded, extras=self._extras(), under_preview=(self.timeline_view,),
                         extra_tabs=(*self._extra_tabs(), ("Compare", self.compare)))
        if self.mode == "foreground":
            self.say("On Colab a run holds the notebook while it works: stop it with the cell's interrupt "
                     "(the stop button of the cell); the picture is kept.", "note")
        self.inside_panel = InsidePanel(self)  # off until its toggle: then the run reports its inside view
        self.children = (*self.children[:2], self.inside_panel, *self.children[2:])  # under the preview row
        for picker in self.pickers.values():
            picker.on_change(self._sources_changed)
        self._show_source()
        self._set_busy(False)

        # the cost of a run with the settings shown, next to Run (nbart.cost), kept up to date as they change
        self.cost: CostLabel | None = None
        if estimate if estimate is not None else os.environ.get("NBART_ESTIMATE", "1") != "0":
            self.cost = CostLabel(self.cost_label, self.task, self._estimate_request, self.mode == "foreground")
            for w in self.controls.values():
                w.observe(self.cost.request, names="value")
            self.cost.request()

        self.warm_up: WarmUp | None = None
        # after the warm-up: a starting size whose run fits about a minute here (nbart.studio.startsize)
        self.start_size: StartSize | None = None
        if fit_start is None:  # only a size the caller left to the defaults is fitted
            fit_start = all(params.get(f) == self.starting.get(f) for f in SIZE_FIELDS if f in params)
        if fit_start and (warm_up if warm_up is not None else os.environ.get("NBART_WARM_UP", "1") != "0"):
            self.start_size = StartSize(self)
            place_after(self, self.status, self.start_size.widget)
        if warm_up if warm_up is not None else os.environ.get("NBART_WARM_UP", "1") != "0":
            self.warm_up = WarmUp(self._warm, lambda: self.driver.busy)
            for name in ("model", "weights", "precision", *self.layer_fields):
                if name in self.controls:
                    self.controls[name].observe(self.warm_up.request, names="value")
            self.warm_up.request()

    # ----------------------------------------------------------------------------------------------------------
    # subclass hooks

    # Both get each source's items (what the engine's image arguments accept) exactly as "Show code" writes them,
    # so the engine reads them itself, in the worker, and the code reproduces the picture to the pixel.

    def _make_run(self, items: dict[str, tuple], params: Any) -> Any:
        """The engine's Run for these sources and params (``params.seed`` None: the engine picks and records one)."""
        raise NotImplementedError

    def _continue_run(self, image: Image.Image, items: dict[str, tuple], params: Any, steps: int) -> Any:
        """The engine's Run that goes on for ``steps`` more steps from ``image``: the task's ``continue_run``."""
        raise NotImplementedError

    def _extras(self) -> tuple[widgets.Widget, ...]:
        """Widgets the panel shows under the pickers (none here)."""
        return ()

    def _extra_tabs(self) -> tuple[tuple[str, widgets.Widget], ...]:
        """(title, widget) pages a subclass adds after the settings tabs (the DreamStudio's Explore)."""
        return ()

    def _restore_settings(self, entry: Result) -> None:
        """Put ``entry``'s settings back in the controls."""
        self._controls.show(entry.params)

    def _warm(self) -> None:
        """Build the network and trace its step while the user looks at the panel, so Run shows a preview at once
        (measured: first preview 0.1 s instead of 2 s for a dream)."""
        from nbart.warmup import warm_up

        params = self.params()
        warm_up(self.task, params)
        if self.cost is not None:
            # once per machine and backbone: the label then gives times too. Never beside a run, this studio's or
            # another's: it would slow the run's steps and time a shared CPU; a probe under way stops on any Run
            wait_none_running()
            self.cost.calibrate(params, cancel=any_running)
        if self.start_size is not None:
            self.start_size.check()

    # ----------------------------------------------------------------------------------------------------------
    # public API

    @property
    def result(self) -> Image.Image | None:
        """The picture on show after a run (or restored from the history); None while the sources are on show."""
        return self.current.image if self.current is not None else None

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.driver.busy

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread of the last run started in a thread (None if every run was in the foreground)."""
        return self.driver.thread

    @property
    def active_run(self) -> Any:
        """The engine's :class:`~nbart.events.Run` in progress (its ``latest`` event, ``stop()``), or None."""
        return self.driver.run

    @property
    def warm_up_thread(self) -> threading.Thread | None:
        """The thread of the last warm-up (None if warm-up is off)."""
        return self.warm_up.thread if self.warm_up is not None else None

    def params(self) -> Any:
        """The parameters the controls show now (ParamError names a bad value)."""
        return self._controls.params()

    def set_params(self, **changes: Any) -> None:
        """Put these parameter values in the controls, the others as they are (ParamError names a bad value)."""
        self._controls.show(self.params().replace(**changes))

    def start(self, block: bool | None = None) -> bool:
        """Start a run with the current settings; False (and nothing started) if one is running or the settings are
        bad (the panel says why). ``block=True`` runs in the calling thread and returns when it ends (for notebooks
        executed headless); the default follows ``mode``."""
        def prepare() -> Job:
            params = self.params()
            sources = {name: p.source() for name, p in self.pickers.items()}
            items = {name: src.items for name, src in sources.items()}
            return Job(naming_uploads(sources, lambda: self._make_run(items, params)), params, sources)

        return self.driver.launch(prepare, block, self._starting)

    def continue_run(self, steps: int | None = None, block: bool | None = None) -> bool:
        """Run ``steps`` more steps (default: the box beside Continue) from the picture on show."""
        def prepare() -> Job:
            if self.current is None:
                raise ImageError("nothing to continue from yet: press Run first")
            params = self.params()
            n = int(steps if steps is not None else self.more_steps.value)
            if n < 1:
                raise ParamError(f"steps to add must be >= 1 (got {n})")
            parent = self.current
            sources, image = parent.sources, parent.image
            items = {name: src.items for name, src in sources.items()}
            return Job(naming_uploads(sources, lambda: self._continue_run(image, items, params, n)), params,
                       sources, continued=True, parent=parent)

        return self.driver.launch(prepare, block, self._starting)

    def stop(self) -> None:
        """Stop the run after its current step; the picture is kept. Safe from any thread."""
        self.driver.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no run is in progress (at most ``timeout`` seconds); True if none is."""
        return self.driver.wait(timeout)

    def reset(self) -> None:
        """Back to the starting settings and the original picture; results stay in ``history``."""
        if self.running:
            return
        self._controls.show(self._initial)
        self.current = None
        self.timeline_view.hide()
        self.clear_run_view()
        self.inside_panel.clear()
        self._show_source()
        self._set_busy(False)

    def restore(self, index: int) -> None:
        """Show ``history[index]`` again, with its settings in the controls (Continue then goes on from it)."""
        if self.running:
            return
        entry = self.history[index]
        self._restore_settings(entry)
        self.current = entry
        self.show_image(entry.image, "png")
        self.timeline_view.show(entry)
        self.set_status(f"restored #{index + 1}: {entry.summary}")
        self.say(None)
        self._set_busy(False)

    def code_text(self) -> str:
        """The Python code that makes the picture on show again, pixel for pixel (its seed, the steps it really
        did, the runs it continued from); before any run, the code of a run with the current settings. What "Show
        code" shows. An upload (or an image given in code the notebook has no name for) is saved beside the
        notebook first, under a name that overwrites nothing, so the code can read it; the status line says so."""
        entry = self.current
        sources = entry.sources if entry is not None else {n: p.source() for n, p in self.pickers.items()}
        codes, notes = self._input_codes(sources)
        if entry is None:
            return export.code_text(self.function, self.params(), list(codes.values()), notes)
        return export.result_code(entry, self.function, codes, notes)

    def save(self, path: str | None = None, gif: bool | None = None) -> str:
        """Save the picture on show as PNG with its parameters in the metadata (and the run as GIF if ``gif``);
        returns the path. The panel offers the file for download. An upload it was made from is saved beside the
        notebook too (see :meth:`code_text`), and the metadata names that file."""
        entry = self.current
        if entry is None:
            raise ImageError("nothing to save yet: press Run first")
        codes, _notes = self._input_codes(entry.sources)
        path = path or self.save_name.value.strip() or export.free_name(self.task)
        written = export.save_result(entry, self.task, path, gif if gif is not None else self.save_gif.value,
                                     export.input_names(codes))
        written += self.timeline_view.export_beside(entry, written[0])  # the timeline as GIF/MP4, if chosen
        export.offer(written, self.download)
        self.say(f"saved {' and '.join(written)} ({entry.image.size[0]}x{entry.image.size[1]} px, settings "
                 f"inside the PNG)", "ok")
        return written[0]

    def _input_codes(self, sources: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
        """How code names each source (saving uploads beside the notebook; the status line says what was saved)
        and the comments that explain them."""
        codes, written = export.save_inputs(sources, self.saved_inputs)
        if written:
            self.set_status(f"saved {', '.join(written)} beside the notebook (in {os.getcwd()}), so the code can "
                            f"read {'them' if len(written) > 1 else 'it'}")
        notes = [f"{codes[name]}: {s.note}" for name, s in sources.items() if s.note]
        return codes, notes

    # ----------------------------------------------------------------------------------------------------------
    # what the driver calls (any thread: these only set widget values)

    def run_began(self, run: Any) -> None:
        self.show_image(run.start_image, "jpeg")  # the prepared input, at once
        self.progress.max, self.progress.value = run.total, 0
        self._show_notices(run)
        self.inside_panel.attach(run)

    def run_event(self, event: Any) -> None:  # every step, not only the throttled frames
        self.inside_panel.record(event)

    def run_step(self, run: Any, event: Any, jpeg: bytes, frames: Frames) -> None:
        self.show_step(event, jpeg, frames.losses, frames.stage_starts)
        self._show_notices(run)
        self.inside_panel.show(event, jpeg)

    def run_ended(self, job: Job, run: Any, frames: Frames, outcome: str) -> None:
        steps = run.latest.step if run.latest is not None else 0
        seconds = run.latest.elapsed if run.latest is not None else 0.0
        if steps == 0:
            self.set_status(f"{outcome} before the first step; nothing changed")
            return
        self.say(" ".join(run.notices) if run.notices else None, "note")  # drop notes of the run's time
        image = run.image()
        ran = run.params.replace(**run.prepared.ran()) if run.prepared is not None else run.params
        inputs = [item for s in job.sources.values() for item in s.describe()]
        meta = run.metadata(inputs=inputs, **({"ended": str(outcome)} if outcome != run.outcome else {}))
        # the controls' values with the seed the engine picked: restoring shows it, and Run then repeats the picture
        entry = Result(image, job.params.replace(seed=run.params.seed), job.sources, steps, run.total, seconds,
                       outcome, job.continued, frames.jpegs, ran=ran, metadata=meta, parent=job.parent,
                       timeline=kept(run, frames))
        self.history.append(entry)
        self.current = entry
        self.show_image(image, "png")
        self.progress.value = steps
        rate = steps / seconds if seconds > 0 else float("nan")
        self.set_status(f"{outcome}: {steps}/{run.total} steps in {duration(seconds)} ({rate:.1f} steps/s)"
                        + ("; the picture is kept" if outcome != "completed" else ""))
        self.history_strip.show(self.history)
        self.timeline_view.show(entry)

    def run_failed(self, error: BaseException, run: Any = None) -> None:
        self.error = self._wont_fit_text(error) if isinstance(error, WontFit) else _error_text(error)
        expected = isinstance(error, PLAIN_ERRORS)
        self.error_details = None if expected else "".join(traceback.format_exception(error))
        self.say(self.error, "error", self.error_details)
        step = run.latest.step if run is not None and run.latest is not None else 0
        self.set_status(f"failed at step {step}; the last picture stays" if step else "not started")

    def run_idle(self) -> None:
        self._set_busy(False)

    def run_progress(self, run: Any, done: int, parts: int) -> None:
        """Inside a long step: 'step 3/20 · tile 5/16' (a tiled dream step's tiles, polled by the driver)."""
        latest = run.latest
        step = min(run.total, (latest.step if latest is not None else 0) + 1)
        self.set_status(f"step {step}/{run.total} · tile {done}/{parts}")

    def _wont_fit_text(self, error: WontFit) -> str:
        """The engine's refusal of a run too big for this process's memory, with the way forward in the panel's
        words: the size control that fits (and its tab), or the force checkbox."""
        tab = self.tab_titles.get("image", "Size")
        sizes = "; ".join(f"set {label_of(k)} to {', '.join(map(str, v)) if isinstance(v, tuple) else v}"
                          for k, v in error.fits.items())
        forward = f"{sizes} ({tab} tab)" if sizes else "no smaller size fits: free memory (close other notebooks)"
        force = f"tick force ({self.tab_titles.get('advanced', 'Advanced')} tab) to run anyway"
        return f"{error.headline}: {forward}, or {force}" if "force" in self.controls else \
            f"{error.headline}: {forward}"

    # ----------------------------------------------------------------------------------------------------------
    # widget events (main thread)

    def _guarded(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """A click handler whose errors appear in the panel (a callback's traceback would be lost in a log)."""
        def call(*args: Any) -> None:
            try:
                handler(*args)
            except Exception as exc:
                self.run_failed(exc)
        return call

    def _show_code(self, _button: Any = None) -> None:
        self.code.value = self.code_text()
        # a long call wraps in the box: a row for each ~100 characters, so the last line is never hidden
        self.code.rows = sum(1 + len(line) // 100 for line in self.code.value.split("\n"))
        self.code.layout.display = None

    def _estimate_request(self) -> tuple[Any, list[Any]]:
        """What the cost label estimates (main thread): the controls' params and the sources, in argument order."""
        return self.params(), [p.source() for p in self.pickers.values()]

    def _sources_changed(self) -> None:
        if self.cost is not None:
            self.cost.request()
        if self.running:
            return
        self.current = None
        self._show_source()
        self._set_busy(False)

    # ----------------------------------------------------------------------------------------------------------

    def _starting(self) -> None:
        """The panel as a run is accepted (main thread): buttons for a run, old messages and code gone."""
        self._set_busy(True)
        self.timeline_view.hide()
        self.say(None)
        self.code.layout.display = "none"
        self.set_status("loading the image and the model…")

    def _set_busy(self, busy: bool) -> None:
        self.set_busy(busy, self.current is not None)

    def _show_notices(self, run: Any) -> None:
        if run.notices:
            self.say(" ".join(run.notices), "note")

    def _show_source(self) -> None:
        """Before a run: the preview shows the (first) input image."""
        self.show_source(next(iter(self.pickers.values())))

