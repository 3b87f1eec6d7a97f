"""A studio's starting size that fits the machine: a first run within about a minute, and one click back.

When the panel opens, the warm-up thread (after building the network) asks :func:`nbart.budget.fit_time` whether
the run the controls show would take longer than :data:`~nbart.budget.BUDGET_S` here. If so, and nobody has run
or touched the controls meanwhile, the size controls are set to the largest size that fits, and a line under the
status says so, with a button that puts the asked size back. It happens once per panel, before the first run.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from nbart.budget import BUDGET_S, Fitted, fit_time
from nbart.studio.render import duration

__all__ = ["StartSize", "SIZE_FIELDS", "place_after"]

SIZE_FIELDS = ("max_size", "sizes")  # the fields a smaller start changes (those a task has)


def _ran(studio: Any) -> bool:
    """Whether a run of the studio has started: the participant has chosen a size (a StyleStudio's fast previews,
    entries with a label, don't count: they come without a press of Run)."""
    return studio.running or any(not entry.label for entry in studio.history)


def _text(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else value


class StartSize:
    """The starting-size check of ``studio`` (a :class:`~nbart.studio.base.Studio`): ``widget`` is the line under
    the status (hidden until a size was lowered), ``button`` puts the asked size back, ``fitted`` the
    :class:`~nbart.budget.Fitted` applied (None: the asked size fits, or no check ran)."""

    def __init__(self, studio: Any, seconds: float = BUDGET_S):
        self.studio, self.seconds = studio, seconds
        self.fitted: Fitted | None = None
        self._asked: dict[str, Any] = {}
        self._done = False
        self._lock = threading.Lock()
        self.note = widgets.HTML()
        self.button = widgets.Button(description="", icon="expand", layout=widgets.Layout(width="auto"))
        self.button.add_class("nbart-bigger")
        self.button.on_click(lambda _b: self.go_bigger())
        self.widget = widgets.HBox([self.note, self.button], layout=widgets.Layout(
            display="none", flex_flow="row wrap", align_items="center"))
        self.widget.add_class("nbart-start-size")

    def check(self) -> Fitted | None:
        """Lower the size controls if the asked run would take longer than ``seconds`` here (any thread: it only
        sets widget values); once per panel, and only while no run has started and the controls stay as read."""
        with self._lock:
            if self._done:
                return None
            self._done = True
        studio = self.studio
        if _ran(studio):
            return None
        params = studio.params()
        images = []
        for picker in studio.pickers.values():
            items = picker.source().items
            images.append(list(items) if picker.multiple and len(items) > 1 else items[0])
        fitted = fit_time(studio.task, images, params, self.seconds)
        if fitted is None or _ran(studio) or studio.params() != params:
            return None  # it fits, or the participant was quicker than the estimate
        fields = [name for name in SIZE_FIELDS if name in studio.controls]
        self._asked = {name: getattr(params, name) for name in fields}
        for name in fields:
            studio.controls[name].value = _text(getattr(fitted.params, name))
        self.fitted = fitted
        asked = f"{fitted.asked_size} px"
        # short, so the line and its button share one row beside the preview
        self.note.value = (f"<span style='font-size:12px;color:#555;margin-right:8px'>started at {fitted.size} px: "
                           f"{self._about(fitted.estimate.seconds)} here</span>")
        self.button.description = f"{asked} ({self._about(fitted.asked.seconds)})"
        self.button.tooltip = f"back to the size asked for: {asked}, about {duration(fitted.asked.seconds)} here"
        self.widget.layout.display = None
        if not studio.current:
            studio.set_status(f"started at {fitted.size} px to finish within about a minute here "
                              f"(estimated {duration(fitted.estimate.seconds)}); press {asked} for the size asked")
        return fitted

    def go_bigger(self) -> None:
        """Put the asked size back in the controls (the click on the button)."""
        for name, value in self._asked.items():
            self.studio.controls[name].value = _text(value)
        self.widget.layout.display = "none"
        if self.fitted is not None and not self.studio.running:
            self.studio.set_status(f"back to {self.fitted.asked_size} px: a run takes about "
                                   f"{duration(self.fitted.asked.seconds)} here")

    @staticmethod
    def _about(seconds: float) -> str:
        return f"about {duration(seconds)}"


def place_after(root: widgets.Box, anchor: widgets.Widget, widget: widgets.Widget) -> bool:
    """Put ``widget`` right after ``anchor`` in whichever box under ``root`` holds it; False if none does."""
    children = list(root.children)
    if anchor in children:
        children.insert(children.index(anchor) + 1, widget)
        root.children = tuple(children)
        return True
    return any(place_after(c, anchor, widget) for c in children if isinstance(c, widgets.Box))
