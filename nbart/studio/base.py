"""The studio panel shared by DreamStudio and StyleStudio: controls from the spec, a live preview, and the run loop.

How a run reaches the screen (DESIGN.md §4):

- JupyterLab, Notebook 7, VS Code, Binder: the run happens in a worker thread, so the kernel stays free for other
  cells and for the Stop button's click. Widgets are all created here on the main thread; the worker only sets
  values (never print/display from it), throttled by time (latest frame wins): a small JPEG while running and a
  PNG at the end.
- Google Colab drops widget updates sent from threads, so there the run happens in the foreground (the cell or the
  click handler blocks) and the updates come from the main thread; the cell's interrupt stops it and keeps the image.

Errors are shown in the panel in plain words; the last good image stays.
"""

from __future__ import annotations

import html
import io
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from nbart.errors import USER_ERRORS, error_message
from nbart.events import preview_jpeg
from nbart.images import ImageError, save_gif, save_image
from nbart.params import ParamError, to_code
from nbart.studio.compat import in_colab, set_titles, set_tooltip
from nbart.studio.controls import ControlSet
from nbart.studio.render import duration, encode, loss_svg, status_line
from nbart.studio.sources import Source, SourcePicker

__all__ = ["Studio", "Result"]

HISTORY_SLOTS = 8  # results shown in the strip (all are kept in ``history``)
GIF_MAX_FRAMES = 120
PLAIN_ERRORS = USER_ERRORS  # their messages are written for people already


@dataclass
class Result:
    """A finished run: its image, the parameters and sources that made it, and how it ended."""

    image: Image.Image
    params: Any
    sources: dict[str, Source]
    steps_done: int
    total: int
    seconds: float
    outcome: str  # the engine's "completed", "stopped" or "failed" (a non-finite loss), or "interrupted"
    continued: bool = False  # whether it went on from an earlier result rather than from the sources
    frames: list[bytes] = field(default_factory=list, repr=False)  # JPEG previews, for a GIF

    @property
    def summary(self) -> str:
        """One line: what the run did and how it ended."""
        return (f"{'+' if self.continued else ''}{self.steps_done}/{self.total} steps, {duration(self.seconds)}, "
                f"{self.outcome}")


def _error_text(exc: BaseException) -> str:
    return error_message(exc)  # the one advice table (nbart.errors)


class Studio(widgets.VBox):
    """Base of the studios. Subclasses name their task and make the engine run; everything else is generic."""

    task = ""  # "dream"
    title = ""
    function = ""  # the public call "Show code" writes: "nbart.dream"
    params_cls: type
    layer_fields: dict[str, str] = {}  # layer-list field -> Backbone attribute with its defaults
    pickers_spec: tuple[tuple[str, str, bool, str], ...] = ()  # (source, label, several images allowed, sample)
    settings_title = "Settings"
    starting: dict[str, Any] = {}  # the controls' starting values where they differ from the engine's defaults

    def __init__(self, sources: dict[str, Any], params: dict[str, Any], mode: str = "auto",
                 preview_size: int = 384, fps: float = 4.0, warm_up: bool | None = None):
        if mode not in ("auto", "thread", "foreground"):
            raise ParamError(f"mode must be auto, thread or foreground (got {mode!r})")
        self.mode = ("foreground" if in_colab() else "thread") if mode == "auto" else mode
        self.preview_size, self.interval = preview_size, 1.0 / fps
        self._initial = self.params_cls.from_kwargs(**params)
        self._controls = ControlSet(self.params_cls, self._initial, self.layer_fields)
        self.controls: dict[str, widgets.Widget] = self._controls.widgets
        self.pickers = {name: SourcePicker(label, sources.get(name), multiple, sample)
                        for name, label, multiple, sample in self.pickers_spec}

        self.result: Image.Image | None = None  # the image on show after a run (or restored from the history)
        self.current: Result | None = None
        self.history: list[Result] = []
        self.error: str | None = None  # the last error shown, in words
        self.error_details: str | None = None  # its traceback, for an unexpected error
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._run: Any = None
        self._ignore_clicks_until = 0.0

        self._build()
        for picker in self.pickers.values():
            picker.on_change(self._sources_changed)
        self._show_source()
        self._set_busy(False)
        self.warm_up_thread: threading.Thread | None = None
        self._warm_lock = threading.Lock()  # guards the two flags, so a request never lands as the thread ends
        self._warm_wanted = False  # a warm-up was asked for since the thread last started one
        self._warming = False  # a warm-up thread is looping
        if warm_up if warm_up is not None else os.environ.get("NBART_WARM_UP", "1") != "0":
            for name in ("model", "weights", "precision", *self.layer_fields):
                if name in self.controls:
                    self.controls[name].observe(self._request_warm_up, names="value")
            self._request_warm_up()

    def _request_warm_up(self, _change: Any = None) -> None:
        """Warm the network up in a background thread (one at a time; a change during a warm-up queues another)."""
        with self._warm_lock:
            self._warm_wanted = True
            if not self._warming:
                self._warming = True
                self.warm_up_thread = threading.Thread(target=self._warm_up, daemon=True, name="nbart-warm-up")
                self.warm_up_thread.start()

    def _warm_up(self) -> None:
        """Build the network and trace its step while the user looks at the panel, so Run shows a preview at once
        (measured: first preview 0.1 s instead of 2 s for a dream). Reads the controls, touches no widget."""
        from nbart.warmup import warm_up

        while True:
            with self._warm_lock:
                if not self._warm_wanted:
                    self._warming = False
                    return
                self._warm_wanted = False
            if self._busy:  # a run builds what it needs itself; don't take its CPU
                continue
            try:
                warm_up(self.task, self.params())
            except Exception:  # whatever fails here fails again on Run, where the panel says it in words
                pass

    # ----------------------------------------------------------------------------------------------------------
    # subclass hooks

    # Both get each source's items (what the engine's image arguments accept) exactly as "Show code" writes them,
    # so the engine reads them itself, in the worker, and the code reproduces the picture to the pixel.

    def _make_run(self, items: dict[str, tuple], params: Any) -> Any:
        """The engine's Run for these sources and params."""
        raise NotImplementedError

    def _continue_run(self, image: Image.Image, items: dict[str, tuple], params: Any, steps: int) -> Any:
        """The engine's Run that goes on for ``steps`` more steps from ``image``."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------------------
    # layout

    def _button(self, name: str, description: str, icon: str, tooltip: str, style: str = "") -> widgets.Button:
        b = widgets.Button(description=description, icon=icon, tooltip=tooltip, button_style=style,
                           layout=widgets.Layout(width="auto"))
        b.add_class(f"nbart-{name}")
        b.on_click(self._guarded(getattr(self, f"_on_{name}")))
        return b

    def _build(self) -> None:
        self.buttons = {
            "run": self._button("run", "Run", "play", "start a run with these settings", "success"),
            "stop": self._button("stop", "Stop", "stop", "stop after the current step; the picture is kept", "danger"),
            "continue": self._button("continue", "Continue", "forward", "more steps from the picture on show"),
            "reset": self._button("reset", "Reset", "undo",
                                  "back to the starting settings and the original picture (results stay below)"),
            "code": self._button("code", "Show code", "code", "the Python call that makes this picture"),
            "save": self._button("save", "Save", "download", "save the picture as PNG, with its settings inside"),
        }
        self.more_steps = widgets.BoundedIntText(value=10, min=1, max=10000, layout=widgets.Layout(width="64px"))
        set_tooltip(self.more_steps, "how many steps Continue adds")
        self.more_steps.add_class("nbart-more-steps")

        # a fixed square box: frames of any shape fit without moving what lies below
        side = f"{self.preview_size}px"
        self.preview = widgets.Image(format="png", layout=widgets.Layout(
            width=side, height=side, object_fit="contain", border="1px solid #ddd"))
        self.preview.add_class("nbart-preview")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width=side))
        self.progress.add_class("nbart-progress")
        self.status = widgets.HTML()
        self.status.add_class("nbart-status")
        self.message = widgets.HTML()  # notices and errors
        self.message.add_class("nbart-message")
        self.curve = widgets.HTML(loss_svg([], []))
        self.curve.add_class("nbart-curve")

        self.code = widgets.Textarea(rows=4, layout=widgets.Layout(width="100%", display="none"))
        self.code.add_class("nbart-code")
        self.save_name = widgets.Text(placeholder=f"{self.task}-001.png", layout=widgets.Layout(width="180px"))
        set_tooltip(self.save_name, "file name (.png); empty: the next free name")
        self.save_gif = widgets.Checkbox(value=False, description="and the run as GIF", indent=False,
                                         layout=widgets.Layout(width="150px"))
        self.download = widgets.HTML()
        self.download.add_class("nbart-download")

        # the history strip: a fixed set of slots made here (the worker fills them; it never creates widgets)
        self._slots = []
        for i in range(HISTORY_SLOTS):
            img = widgets.Image(format="png", layout=widgets.Layout(height="72px", object_fit="contain"))
            button = widgets.Button(description="restore", layout=widgets.Layout(width="96px"))
            button.add_class("nbart-restore")
            button.on_click(self._guarded(lambda _b, i=i: self._on_slot(i)))
            box = widgets.VBox([img, button], layout=widgets.Layout(display="none", align_items="center",
                                                                     margin="0 6px 0 0"))
            self._slots.append((box, img, button))
        self.history_box = widgets.HBox([s[0] for s in self._slots], layout=widgets.Layout(overflow="auto"))
        self.history_box.add_class("nbart-history")

        # one tab per spec group, the task's own settings first
        groups: dict[str, list[widgets.Widget]] = {"main": [], "image": [], "model": []}
        for info in self._controls.infos.values():
            groups.setdefault(info.spec.group, []).append(self._controls.view(info.name))
        titles = {"main": self.settings_title, "image": "Size & colour" if self.task == "style" else "Size",
                  "model": "Model"}
        pages = [(titles.get(name, name.title()), ws) for name, ws in groups.items() if ws]
        tabs = widgets.Tab([widgets.VBox(ws) for _, ws in pages])
        set_titles(tabs, [title for title, _ in pages])

        left = widgets.VBox([*self.pickers.values(), tabs],
                            layout=widgets.Layout(width="420px", margin="0 16px 0 0"))
        b = self.buttons
        more = widgets.HTML("more steps", layout=widgets.Layout(margin="0 12px 0 0"))
        actions = widgets.HBox([b["run"], b["stop"], b["continue"], self.more_steps, more, b["reset"]],
                               layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        right = widgets.VBox([actions, self.preview, self.progress, self.status, self.curve, self.message],
                             layout=widgets.Layout(flex=f"1 1 {side}"))  # beside the settings when it fits
        header = widgets.HTML(f"<b style='font-size:15px'>{html.escape(self.title)}</b>"
                              f"<span style='color:#666'> · choose a picture and settings, then press Run</span>")
        bottom = widgets.VBox([
            widgets.HBox([b["save"], self.save_name, self.save_gif, b["code"], self.download],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self.code,
            widgets.HTML("<b>History</b> <span style='color:#666'>(restore brings back a picture and its "
                         "settings)</span>"),
            self.history_box,
        ])
        super().__init__([header, widgets.HBox([left, right], layout=widgets.Layout(flex_flow="row wrap")),
                          bottom])
        self.add_class("nbart-studio")
        if self.mode == "foreground":
            self._say("On Colab a run holds the notebook while it works: stop it with the cell's interrupt "
                      "(the stop button of the cell); the picture is kept.", "note")

    # ----------------------------------------------------------------------------------------------------------
    # showing things (any thread: these only set widget values)

    def _say(self, text: str | None, kind: str = "note", details: str | None = None) -> None:
        if not text:
            self.message.value = ""
            return
        color = {"error": "#b00020", "note": "#7a5b00", "ok": "#1b5e20"}[kind]
        prefix = {"error": "Error: ", "note": "Note: ", "ok": ""}[kind]
        more = (f"<details><summary>details</summary><pre style='font-size:11px'>{html.escape(details)}</pre>"
                f"</details>" if details else "")
        self.message.value = f"<div style='color:{color};line-height:1.35'>{prefix}{html.escape(text)}</div>{more}"

    def _set_status(self, text: str) -> None:
        # tabular digits: the numbers keep their places from frame to frame without a monospace font's width
        self.status.value = (f"<div style='font-size:13px;line-height:1.35;font-variant-numeric:tabular-nums'>"
                             f"{html.escape(text)}</div>")

    def _show_image(self, image: Any, fmt: str) -> None:
        data = encode(image, fmt, self.preview_size if fmt == "jpeg" else None)
        with self.preview.hold_sync():  # format and bytes in one message
            self.preview.format = fmt
            self.preview.value = data

    def _set_busy(self, busy: bool) -> None:
        b = self.buttons
        b["run"].disabled = busy
        b["stop"].disabled = not busy
        b["continue"].disabled = busy or self.result is None
        b["save"].disabled = busy or self.result is None
        b["reset"].disabled = busy
        for _box, _img, button in self._slots:
            button.disabled = busy

    def _show_source(self) -> None:
        """Before a run: the preview shows the (first) input image."""
        try:
            src = next(iter(self.pickers.values())).source()
            if all(isinstance(item, str) and not item.startswith("sample:") for item in src.items):
                return  # URLs and paths are read when the run starts
            self._show_image(src.load(max_size=self.preview_size * 2)[0], "png")
        except ImageError:
            pass

    # ----------------------------------------------------------------------------------------------------------
    # public API

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self._busy

    def params(self) -> Any:
        """The parameters the controls show now (ParamError names a bad value)."""
        return self._controls.params()

    def start(self, block: bool | None = None) -> bool:
        """Start a run with the current settings; False (and nothing started) if one is running or the settings are
        bad (the panel says why). ``block=True`` runs in the calling thread and returns when it ends (for notebooks
        executed headless); the default follows ``mode``."""
        def prepare():
            params = self._fill_seed(self.params())
            sources = {name: p.source() for name, p in self.pickers.items()}
            items = {name: src.items for name, src in sources.items()}
            return lambda: self._make_run(items, params), params, sources, False

        return self._launch(prepare, block)

    def continue_run(self, steps: int | None = None, block: bool | None = None) -> bool:
        """Run ``steps`` more steps (default: the box beside Continue) from the picture on show."""
        def prepare():
            if self.current is None:
                raise ImageError("nothing to continue from yet: press Run first")
            params = self._fill_seed(self.params())
            n = int(steps if steps is not None else self.more_steps.value)
            if n < 1:
                raise ParamError(f"steps to add must be >= 1 (got {n})")
            sources, image = self.current.sources, self.current.image
            items = {name: src.items for name, src in sources.items()}
            return lambda: self._continue_run(image, items, params, n), params, sources, True

        return self._launch(prepare, block)

    def stop(self) -> None:
        """Stop the run after its current step; the picture is kept. Safe from any thread."""
        self._stop.set()
        run = self._run
        if run is not None:
            run.stop()
        if self._busy:
            self._set_status("stopping after this step…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no run is in progress (at most ``timeout`` seconds); True if none is."""
        return self._idle.wait(timeout)

    def reset(self) -> None:
        """Back to the starting settings and the original picture; results stay in ``history``."""
        if self._busy:
            return
        self._controls.show(self._initial)
        self.current, self.result = None, None
        self.progress.value = 0
        self.curve.value = loss_svg([], [])
        self._set_status("")
        self._say(None)
        self.code.layout.display = "none"
        self._show_source()
        self._set_busy(False)

    def restore(self, index: int) -> None:
        """Show ``history[index]`` again, with its settings in the controls (Continue then goes on from it)."""
        if self._busy:
            return
        entry = self.history[index]
        self._controls.show(entry.params)
        self.current, self.result = entry, entry.image
        self._show_image(entry.image, "png")
        self._set_status(f"restored #{index + 1}: {entry.summary}")
        self._say(None)
        self._set_busy(False)

    def code_text(self) -> str:
        """The Python code that makes a picture with the current settings (what "Show code" shows)."""
        params = self.params()
        sources = {name: p.source() for name, p in self.pickers.items()}
        call = to_code(self.function, params, *(s.code for s in sources.values()))
        lines = ["import nbart", ""]
        lines += [f"# {s.code}: {s.note}" for s in sources.values() if s.note]
        if params.seed is None:
            lines.append("# seed=None: every run differs; restore a result from the history to get its seed")
        lines += [f"result = {call}", "result"]
        return "\n".join(lines)

    def save(self, path: str | None = None, gif: bool | None = None) -> str:
        """Save the picture on show as PNG with its parameters in the metadata (and the run as GIF if ``gif``);
        returns the path. The panel offers the file for download."""
        entry = self.current
        if entry is None:
            raise ImageError("nothing to save yet: press Run first")
        path = path or self.save_name.value.strip() or self._free_name()
        if not path.lower().endswith(".png"):
            path += ".png"
        meta = {"task": self.task, "params": entry.params.to_dict(), "steps_done": entry.steps_done,
                "inputs": [item for s in entry.sources.values() for item in s.describe()]}
        save_image(entry.image, path, meta)
        written = [path]
        if gif if gif is not None else self.save_gif.value:
            frames = [Image.open(io.BytesIO(f)) for f in entry.frames] or [entry.image]
            gif_path = path[:-4] + ".gif"
            save_gif(frames + [entry.image.resize(frames[-1].size)], gif_path)
            written.append(gif_path)
        self._offer(written)
        self._say(f"saved {' and '.join(written)} ({entry.image.size[0]}x{entry.image.size[1]} px, settings "
                  f"inside the PNG)", "ok")
        return path

    # ----------------------------------------------------------------------------------------------------------
    # running

    def _fill_seed(self, params: Any) -> Any:
        """A run records the seed it used, so a result restored from the history reproduces exactly."""
        if params.seed is None:
            params = params.replace(seed=int(np.random.default_rng().integers(0, 2**31)))
        return params

    def _launch(self, prepare: Callable[[], tuple], block: bool | None) -> bool:
        with self._lock:
            if self._busy:
                self._say("a run is in progress: press Stop first", "note")
                return False
            self._busy = True
            self._idle.clear()
        try:
            make_run, params, sources, continued = prepare()  # reads the widgets: main thread
        except Exception as exc:
            self._fail(exc)
            self._release()
            return False
        stop = self._stop = threading.Event()
        self._set_busy(True)
        self._say(None)
        self.code.layout.display = "none"
        self._set_status("loading the image and the model…")
        state = _keras_state()
        foreground = block if block is not None else self.mode == "foreground"
        work = lambda: self._work(make_run, params, sources, continued, stop, state)  # noqa: E731
        if foreground:
            work()
            if self.mode == "foreground":
                self._ignore_clicks_until = time.monotonic() + 0.5
        else:
            self.thread = threading.Thread(target=work, name=f"nbart-{self.task}-studio", daemon=True)
            self.thread.start()
        return True

    def _release(self) -> None:
        with self._lock:
            self._busy = False
            self._run = None
            self._idle.set()

    def _work(self, make_run: Callable[[], Any], params: Any, sources: dict[str, Source], continued: bool,
              stop: threading.Event, keras_state: dict) -> None:
        """The run loop: pull events, show a frame at most every ``interval`` seconds, then the result."""
        run = None
        frames: list[bytes] = []
        losses: list[float] = []
        stage_starts: list[int] = []
        try:
            _apply_keras_state(keras_state)
            run = make_run()  # reads the images (a URL may take seconds) and checks them
            self._run = run
            if stop.is_set():
                run.stop()
            self._show_image(run.start_image, "jpeg")  # the prepared input, at once
            self.progress.max, self.progress.value = run.total, 0
            self._show_notices(run)
            last, stage = 0.0, None
            for event in run:
                if event.stage != stage:
                    stage_starts.append(event.step - 1)
                    stage = event.stage
                losses.append(event.loss)
                now = time.monotonic()
                if event.done or now - last >= self.interval:
                    last = now
                    # rendered at preview size (a dream composes its octaves small): cheaper than image()
                    frame = preview_jpeg(event, self.preview_size)
                    with self.preview.hold_sync():
                        self.preview.format, self.preview.value = "jpeg", frame
                    frames.append(frame)
                    if len(frames) > GIF_MAX_FRAMES:
                        del frames[1::2]  # keep the GIF short: halve the frame rate
                    self.progress.value = event.step
                    self._set_status(status_line(event))
                    self.curve.value = loss_svg(losses, stage_starts)
                    self._show_notices(run)
            self._finish(run, params, sources, continued, frames, run.outcome)
        except KeyboardInterrupt:  # foreground mode: the cell's interrupt stops the run and keeps the image
            if run is not None:
                run.close()
                self._finish(run, params, sources, continued, frames, "interrupted")
            else:
                self._set_status("interrupted before the first step")
        except Exception as exc:
            if run is not None:
                run.close()
            self._fail(exc, run)
        finally:
            self._set_busy(False)
            self._release()

    def _show_notices(self, run: Any) -> None:
        if run.notices:
            self._say(" ".join(run.notices), "note")

    def _finish(self, run: Any, params: Any, sources: dict[str, Source], continued: bool, frames: list[bytes],
                outcome: str) -> None:
        steps = run.latest.step if run.latest is not None else 0
        seconds = run.latest.elapsed if run.latest is not None else 0.0
        if steps == 0:
            self._set_status(f"{outcome} before the first step; nothing changed")
            return
        self._say(" ".join(run.notices) if run.notices else None, "note")  # drop notes of the run's time
        image = run.image()
        entry = Result(image, params, sources, steps, run.total, seconds, outcome, continued, frames)
        self.history.append(entry)
        self.current, self.result = entry, image
        self._show_image(image, "png")
        self.progress.value = steps
        rate = steps / seconds if seconds > 0 else float("nan")
        self._set_status(f"{outcome}: {steps}/{run.total} steps in {duration(seconds)} ({rate:.1f} steps/s)"
                         + ("; the picture is kept" if outcome != "completed" else ""))
        self._fill_slots()

    def _fail(self, exc: BaseException, run: Any = None) -> None:
        self.error = _error_text(exc)
        expected = isinstance(exc, PLAIN_ERRORS)
        self.error_details = None if expected else "".join(traceback.format_exception(exc))
        self._say(self.error, "error", self.error_details)
        step = run.latest.step if run is not None and run.latest is not None else 0
        self._set_status(f"failed at step {step}; the last picture stays" if step else "not started")

    def _fill_slots(self) -> None:
        shown = self.history[-HISTORY_SLOTS:]
        offset = len(self.history) - len(shown)
        for i, (box, img, button) in enumerate(self._slots):
            if i < len(shown):
                entry = shown[i]
                with img.hold_sync():
                    img.format, img.value = "jpeg", encode(entry.image, "jpeg", 144)
                button.description = f"#{offset + i + 1} restore"
                button.tooltip = f"{entry.summary}\n{to_code(self.function, entry.params, '...')}"
                box.layout.display = None
            else:
                box.layout.display = "none"

    # ----------------------------------------------------------------------------------------------------------
    # widget events (main thread)

    def _guarded(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """A click handler whose errors appear in the panel (a callback's traceback would be lost in a log)."""
        def call(*args: Any) -> None:
            try:
                handler(*args)
            except Exception as exc:
                self._fail(exc)
        return call

    def _clicks_ignored(self) -> bool:
        # In the foreground, clicks sent while a run held the kernel arrive after it ends: a double-click on Run
        # must not start a second run then.
        return time.monotonic() < self._ignore_clicks_until

    def _on_run(self, _button: Any) -> None:
        if not self._clicks_ignored():
            self.start()

    def _on_continue(self, _button: Any) -> None:
        if not self._clicks_ignored():
            self.continue_run()

    def _on_stop(self, _button: Any) -> None:
        self.stop()

    def _on_reset(self, _button: Any) -> None:
        self.reset()

    def _on_code(self, _button: Any) -> None:
        self.code.value = self.code_text()
        self.code.rows = self.code.value.count("\n") + 1
        self.code.layout.display = None

    def _on_save(self, _button: Any) -> None:
        self.save()

    def _on_slot(self, slot: int) -> None:
        shown = len(self.history[-HISTORY_SLOTS:])
        self.restore(len(self.history) - shown + slot)

    def _sources_changed(self) -> None:
        if self._busy:
            return
        self.current, self.result = None, None
        self._show_source()
        self._set_busy(False)

    # ----------------------------------------------------------------------------------------------------------

    def _free_name(self) -> str:
        n = 1
        while os.path.exists(f"{self.task}-{n:03d}.png"):
            n += 1
        return f"{self.task}-{n:03d}.png"

    def _offer(self, paths: list[str]) -> None:
        """Offer saved files for download: Colab's own download, elsewhere a data link (works in any front-end)."""
        if in_colab():
            from google.colab import files

            for path in paths:
                files.download(path)
            return
        import base64

        links = []
        for path in paths:
            with open(path, "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            kind = "image/gif" if path.endswith(".gif") else "image/png"
            name = html.escape(os.path.basename(path))
            links.append(f"<a download='{name}' href='data:{kind};base64,{data}'>download {name}</a>")
        self.download.value = " · ".join(links)


def _keras_state() -> dict:
    """Keras' per-thread settings in this (the main) thread, to give the worker the same (DESIGN.md §4)."""
    keras = sys.modules.get("keras")
    if keras is None:
        return {}
    return {"dtype_policy": keras.config.dtype_policy().name}


def _apply_keras_state(state: dict) -> None:
    if state:
        import keras

        keras.config.set_dtype_policy(state["dtype_policy"])
