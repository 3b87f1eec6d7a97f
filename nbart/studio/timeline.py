"""The studio's timeline: under the preview, a slider that scrubs back through a finished run's frames (the loss
curve marks the step on show), "Use this frame" that goes on from it, and the timeline as a GIF or MP4 on Save.

The frames are the engine's (:mod:`nbart.timeline`: at most a few hundred small JPEGs per run, spread evenly over
it); a :class:`Kept` holds them with the run's losses on the studio's :class:`~nbart.studio.history.Result`. Widgets
are made once on the main thread; :meth:`TimelineView.show` and :meth:`~TimelineView.hide` only set values, so the
run's worker may call them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from nbart.events import Outcome
from nbart.studio.compat import set_tooltip
from nbart.studio.history import Result
from nbart.studio.render import loss_svg
from nbart.timeline import Frame, save_timeline

__all__ = ["Kept", "TimelineView", "kept", "EXPORTS"]

EXPORTS = (("no animation", ""), ("timeline GIF", ".gif"), ("timeline MP4", ".mp4"))  # what Save also writes


@dataclass
class Kept:
    """A finished run's timeline as the studio keeps it: the frames (step order, the start image as step 0, the
    last step last), the loss of every step and the steps where a stage began (for the curve)."""

    frames: list[Frame]
    losses: list[float] = field(default_factory=list)
    stage_starts: list[int] = field(default_factory=list)


def kept(run: Any, frames: Any) -> Kept | None:
    """The timeline of ``run`` (ended) with the losses the driver's ``frames`` recorded; None when it kept none."""
    timeline = run.frames()
    return Kept(timeline, list(frames.losses), list(frames.stage_starts)) if timeline else None


class TimelineView(widgets.VBox):
    """The slider, its label, "Use this frame" and the export choice for ``studio`` (a :class:`Studio`), hidden
    until a run has ended. The slider's last position is the result itself."""

    def __init__(self, studio: Any, width: str):
        self.studio = studio
        self.entry: Result | None = None  # whose timeline is on the slider
        self._quiet = False  # set while show() moves the slider: no frame to draw for that
        self.slider = widgets.IntSlider(value=0, min=0, max=1, readout=False, continuous_update=True,
                                        layout=widgets.Layout(width=width))
        self.slider.add_class("nbart-timeline")
        set_tooltip(self.slider, "scrub back through the run's steps")
        self.label = widgets.HTML()
        self.label.add_class("nbart-timeline-label")
        self.use = widgets.Button(description="Use this frame", icon="share", layout=widgets.Layout(width="auto"),
                                  tooltip="go on from the frame on show: Continue from its pixels (the box "
                                          "beside Continue says how many steps)")
        self.use.add_class("nbart-use-frame")
        self.export = widgets.Dropdown(options=EXPORTS, value="", layout=widgets.Layout(width="150px"))
        set_tooltip(self.export, "what Save also writes: the run's timeline as an animated GIF or an MP4")
        self.export.add_class("nbart-timeline-export")
        self.slider.observe(self._scrub, names="value")
        self.use.on_click(lambda _b: self._use_guarded())
        row = widgets.HBox([self.use, widgets.HTML("Save also:", layout=widgets.Layout(margin="0 4px 0 12px")),
                            self.export], layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([self.slider, self.label, row], layout=widgets.Layout(display="none"))

    # ----------------------------------------------------------------------------------------------------------
    # any thread

    def show(self, entry: Result | None) -> None:
        """Put ``entry``'s timeline on the slider, at its end (the result on show); hide it if there is none."""
        self.entry = entry
        timeline = entry.timeline if entry is not None else None
        if timeline is None or len(timeline.frames) < 2:
            self.hide()
            return
        self._quiet = True
        try:
            self.slider.max = len(timeline.frames) - 1
            self.slider.value = self.slider.max
        finally:
            self._quiet = False
        self.use.disabled = True  # at the end: that is the result, which Continue goes on from already
        self._label(timeline.frames[-1])
        self.layout.display = None

    def hide(self) -> None:
        self.layout.display = "none"

    def frame(self) -> Frame | None:
        """The frame the slider is on (None before any run)."""
        if self.entry is None or self.entry.timeline is None:
            return None
        return self.entry.timeline.frames[self.slider.value]

    def export_beside(self, entry: Result, png_path: str) -> list[str]:
        """Write ``entry``'s timeline beside its saved PNG as ``NAME-timeline.gif``/``.mp4`` if the export choice
        asks for one; the paths written."""
        ext = self.export.value
        if not ext or entry.timeline is None:
            return []
        path = (png_path[:-4] if png_path.lower().endswith(".png") else png_path) + "-timeline" + ext
        save_timeline(entry.timeline.frames, path, final=entry.image)
        return [path]

    # ----------------------------------------------------------------------------------------------------------
    # main thread (widget events)

    def _scrub(self, change: Any) -> None:
        if self._quiet or self.entry is None or self.entry.timeline is None or self.studio.running:
            return
        frames = self.entry.timeline.frames
        index = change["new"]
        frame = frames[index]
        if index == len(frames) - 1:
            self.studio.show_image(self.entry.image, "png")  # the end: the result itself, sharp
        else:
            self.studio.show_encoded(frame.jpeg, "jpeg")
        self.use.disabled = index in (0, len(frames) - 1)
        self._label(frame)

    def _label(self, frame: Frame) -> None:
        timeline = self.entry.timeline
        total = self.entry.total
        what = "the start" if frame.step == 0 else f"step {frame.step}/{total} · {frame.label} · loss {frame.loss:.4g}"
        if frame.step == timeline.frames[-1].step:
            what += " · the result"
        self.label.value = (f"<div style='font-size:12px;color:#555'>timeline: {html.escape(what)} "
                            f"({len(timeline.frames)} frames)</div>")
        self.studio.curve.value = loss_svg(timeline.losses, timeline.stage_starts, mark=frame.step or None)

    def _use_guarded(self) -> None:
        try:
            self.use_frame()
        except Exception as exc:  # in the panel, as every button's errors
            self.studio.run_failed(exc)

    def use_frame(self, steps: int | None = None, block: bool | None = None) -> bool:
        """Continue from the frame on show: its pixels, scaled back to the run's size, become the picture on show
        (a result that stopped at that step) and Continue goes on from it for ``steps`` (default: the box beside
        Continue). False if nothing started (the panel says why)."""
        entry, frame = self.entry, self.frame()
        if entry is None or frame is None or frame.step == 0:
            self.studio.say("pick a frame after the start on the timeline first", "note")
            return False
        if frame.step != entry.timeline.frames[-1].step:
            meta = dict(entry.metadata, steps_done=frame.step, ended="stopped", from_timeline_frame=frame.step)
            # as a run stopped at that step (what "Show code" writes); its pixels are the frame's, upscaled
            self.studio.current = Result(frame.full_size(), entry.params, entry.sources, frame.step, entry.total,
                                         frame.elapsed, Outcome.STOPPED, entry.continued, ran=entry.ran,
                                         metadata=meta, parent=entry.parent, task=entry.task,
                                         function=entry.function)
        return self.studio.continue_run(steps, block)
