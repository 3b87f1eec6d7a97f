"""The studio's widget tree and its pure view updates: what the panel shows, never how a run is driven.

Every widget is created here, on the kernel's main thread, when the panel is built. The update methods (``say``,
``set_status``, ``show_image``, ``show_step``, ``set_busy``) only set widget values, so the run's worker thread may
call them (DESIGN.md §4: a worker never creates widgets, never prints or displays).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbart.images import ImageError, encode
from nbart.studio.compat import set_titles, set_tooltip
from nbart.studio.controls import ControlSet
from nbart.studio.history import HistoryStrip
from nbart.studio.render import loss_svg, status_line

__all__ = ["Panel", "BUTTONS"]

# The settings tabs wrap onto a second row instead of squeezing their titles to "Advanc..." (seven tabs in the 420 px
# column); Lumino (ipywidgets 8) and Phosphor (7.7, Colab) class names both.
TAB_WRAP_CSS = (
    "<style>"
    ".nbart-studio .widget-tab > .lm-TabBar, .nbart-studio .widget-tab > .p-TabBar"
    "{height: auto !important; min-height: 0 !important; overflow: visible !important}"
    ".nbart-studio .widget-tab > .lm-TabBar .lm-TabBar-content, .nbart-studio .widget-tab > .p-TabBar .p-TabBar-content"
    "{flex-wrap: wrap !important}"
    ".nbart-studio .widget-tab > .lm-TabBar .lm-TabBar-tab, .nbart-studio .widget-tab > .p-TabBar .p-TabBar-tab"
    "{flex: 0 0 auto !important; min-width: 0 !important; max-width: none !important}"
    "</style>"
)
# name -> (label, icon, tooltip, style); the panel adds the CSS class nbart-NAME (the browser tests find them by it)
BUTTONS = {
    "run": ("Run", "play", "start a run with these settings", "success"),
    "stop": ("Stop", "stop", "stop after the current step; the picture is kept", "danger"),
    "continue": ("Continue", "forward", "more steps from the picture on show", ""),
    "reset": ("Reset", "undo", "back to the starting settings and the original picture (results stay below)", ""),
    "code": ("Show code", "code", "the Python call that makes this picture", ""),
    "save": ("Save", "download", "save the picture as PNG, with its settings inside", ""),
}
MESSAGE_STYLES = {"error": ("#b00020", "Error: "), "note": ("#7a5b00", "Note: "), "ok": ("#1b5e20", "")}


class Panel(widgets.VBox):
    """The panel: source pickers and settings tabs on the left; the buttons, the preview, progress, status, loss
    curve and messages on the right; save, code and the history strip below.

    ``handlers`` maps each of :data:`BUTTONS` and ``"restore"`` (called with a history index) to a callable; the
    panel wires the clicks to them and knows nothing else about runs. ``task`` names saved files (``dream-001.png``),
    ``function`` writes the history's tooltips as code (``nbart.dream``). ``tab_titles`` names the settings tabs by
    the spec's groups (``{"main": "Dream", "image": "Size", "model": "Model"}``); ``extras`` are widgets a subclass
    puts under the pickers, ``under_preview`` widgets shown right under the preview (the timeline), ``extra_tabs``
    (title, widget) pages after the settings tabs (Explore, Compare).
    """

    def __init__(self, *, title: str, task: str, function: str, controls: ControlSet,
                 pickers: dict[str, widgets.Widget], tab_titles: dict[str, str], preview_size: int,
                 handlers: dict[str, Callable[..., Any]], extras: tuple[widgets.Widget, ...] = (),
                 under_preview: tuple[widgets.Widget, ...] = (),
                 extra_tabs: tuple[tuple[str, widgets.Widget], ...] = ()):
        self.preview_size = preview_size
        self.buttons = {}
        for name, (label, icon, tooltip, style) in BUTTONS.items():
            b = widgets.Button(description=label, icon=icon, tooltip=tooltip, button_style=style,
                               layout=widgets.Layout(width="auto"))
            b.add_class(f"nbart-{name}")
            b.on_click(handlers[name])
            self.buttons[name] = b
        self.more_steps = widgets.BoundedIntText(value=10, min=1, max=10000, layout=widgets.Layout(width="64px"))
        set_tooltip(self.more_steps, "how many steps Continue adds")
        self.more_steps.add_class("nbart-more-steps")

        # a fixed square box: frames of any shape fit without moving what lies below
        side = f"{preview_size}px"
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
        self.cost_label = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))  # "about 40 s, 1.1 GB"
        self.cost_label.add_class("nbart-estimate")

        self.code = widgets.Textarea(rows=4, layout=widgets.Layout(width="100%", display="none"))
        self.code.add_class("nbart-code")
        self.save_name = widgets.Text(placeholder=f"{task}-001.png", layout=widgets.Layout(width="180px"))
        set_tooltip(self.save_name, "file name (.png); empty: the next free name")
        self.save_gif = widgets.Checkbox(value=False, description="and the run as GIF", indent=False,
                                         layout=widgets.Layout(width="150px"))
        self.download = widgets.HTML()
        self.download.add_class("nbart-download")
        self.history_strip = HistoryStrip(handlers["restore"], function)

        # one tab per spec group, the task's own settings first
        groups: dict[str, list[widgets.Widget]] = {"main": [], "image": [], "model": []}
        for info in controls.infos.values():
            groups.setdefault(info.spec.group, []).append(controls.view(info.name))
        pages = [(tab_titles.get(name, name.title()), ws) for name, ws in groups.items() if ws]
        tabs = widgets.Tab([widgets.VBox(ws) for _, ws in pages] + [w for _, w in extra_tabs])
        set_titles(tabs, [t for t, _ in pages] + [t for t, _ in extra_tabs])

        left = widgets.VBox([*pickers.values(), *extras, tabs],
                            layout=widgets.Layout(width="420px", margin="0 16px 0 0"))
        b = self.buttons
        more = widgets.HTML("more steps", layout=widgets.Layout(margin="0 12px 0 0"))
        actions = widgets.HBox([b["run"], b["stop"], b["continue"], self.more_steps, more, b["reset"],
                                self.cost_label],
                               layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        right = widgets.VBox([actions, self.preview, *under_preview, self.progress, self.status, self.curve,
                              self.message],
                             layout=widgets.Layout(flex=f"1 1 {side}"))  # beside the settings when it fits
        header = widgets.HTML(f"{TAB_WRAP_CSS}<b style='font-size:15px'>{html.escape(title)}</b>"
                              f"<span style='color:#666'> · choose a picture and settings, then press Run</span>")
        bottom = widgets.VBox([
            widgets.HBox([b["save"], self.save_name, self.save_gif, b["code"], self.download],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self.code,
            widgets.HTML("<b>History</b> <span style='color:#666'>(restore brings back a picture and its "
                         "settings)</span>"),
            self.history_strip,
        ])
        super().__init__([header, widgets.HBox([left, right], layout=widgets.Layout(flex_flow="row wrap")),
                          bottom])
        self.add_class("nbart-studio")

    # ----------------------------------------------------------------------------------------------------------
    # view updates (any thread: these only set widget values)

    def say(self, text: str | None, kind: str = "note", details: str | None = None) -> None:
        """A notice (``note``), a confirmation (``ok``) or an ``error`` under the preview; None clears it.
        ``details`` (a traceback) goes in a folded box."""
        if not text:
            self.message.value = ""
            return
        color, prefix = MESSAGE_STYLES[kind]
        more = (f"<details><summary>details</summary><pre style='font-size:11px'>{html.escape(details)}</pre>"
                f"</details>" if details else "")
        self.message.value = f"<div style='color:{color};line-height:1.35'>{prefix}{html.escape(text)}</div>{more}"

    def set_status(self, text: str) -> None:
        """The line under the preview (plain text)."""
        # tabular digits: the numbers keep their places from frame to frame without a monospace font's width
        self.status.value = (f"<div style='font-size:13px;line-height:1.35;font-variant-numeric:tabular-nums'>"
                             f"{html.escape(text)}</div>")

    def show_image(self, image: Any, fmt: str) -> None:
        """``image`` in the preview: ``"jpeg"`` at preview size (live frames), ``"png"`` at full size (a result)."""
        self.show_encoded(encode(image, fmt, self.preview_size if fmt == "jpeg" else None), fmt)

    def show_encoded(self, data: bytes, fmt: str) -> None:
        """Already encoded bytes in the preview."""
        with self.preview.hold_sync():  # format and bytes in one message
            self.preview.format = fmt
            self.preview.value = data

    def show_step(self, event: Any, frame: bytes, losses: list[float], stage_starts: list[int]) -> None:
        """A live frame (JPEG bytes) of a run's step ``event``, its progress, status line and loss curve."""
        self.show_encoded(frame, "jpeg")
        self.progress.value = event.step
        self.set_status(status_line(event))
        self.curve.value = loss_svg(losses, stage_starts)

    def set_busy(self, busy: bool, has_result: bool) -> None:
        """Enable what makes sense while a run works (Stop) or after it (Run; Continue and Save with a result)."""
        b = self.buttons
        b["run"].disabled = busy
        b["stop"].disabled = not busy
        b["continue"].disabled = busy or not has_result
        b["save"].disabled = busy or not has_result
        b["reset"].disabled = busy
        self.history_strip.set_disabled(busy)

    def show_source(self, picker: Any) -> None:
        """Before a run: the preview shows ``picker``'s (first) image; a URL or path waits for the run to read it."""
        try:
            src = picker.source()
            if all(isinstance(item, str) and not item.startswith("sample:") for item in src.items):
                return  # URLs and paths are read when the run starts
            self.show_image(src.load(max_size=self.preview_size * 2)[0], "png")
        except ImageError:
            pass

    def clear_run_view(self) -> None:
        """Progress, loss curve, status, messages and code hidden: the panel before any run."""
        self.progress.value = 0
        self.curve.value = loss_svg([], [])
        self.set_status("")
        self.say(None)
        self.code.layout.display = "none"
