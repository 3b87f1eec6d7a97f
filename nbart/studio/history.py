"""The studio's history: every finished run as a :class:`Result`, and the strip of the latest ones to restore from.

A studio keeps all results in ``history`` (a list, oldest first) and shows the last :data:`HISTORY_SLOTS` in a
:class:`HistoryStrip`. Restoring (putting a result's picture and settings back in the panel) is the studio's job,
since it touches the controls; the strip only says which entry was clicked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
from PIL import Image

from nbart.events import Outcome
from nbart.images import encode
from nbart.params import to_code
from nbart.studio.render import duration
from nbart.studio.sources import Source

__all__ = ["Result", "HistoryStrip", "HISTORY_SLOTS"]

HISTORY_SLOTS = 8  # results shown in the strip (all are kept in ``history``)
THUMB_HEIGHT = 72  # px, a slot's picture
THUMB_SIDE = 144  # px, the long side of a slot's JPEG (sharp at 2x pixel density)


@dataclass
class Result:
    """A finished run: its image, the parameters and sources that made it, and how it ended.

    ``params`` are the controls' values with the concrete seed the run used (what restoring puts back); ``ran`` the
    parameters that really ran (after any fallback of backbone, weights or layers; a continuation's one octave or
    output size), ``metadata`` the engine's ``Run.metadata()`` of the run, ``parent`` the result it continued from.
    """

    image: Image.Image
    params: Any
    sources: dict[str, Source]
    steps_done: int
    total: int
    seconds: float
    outcome: Outcome | str  # the engine's Outcome (completed, stopped, failed), or "interrupted" (a cell interrupt)
    continued: bool = False  # whether it went on from an earlier result rather than from the sources
    frames: list[bytes] = field(default_factory=list, repr=False)  # JPEG previews, for a GIF
    # made by another call than the studio's own run (a StyleStudio's fast preview): what to call it, the task its
    # saved PNG records and the public call that makes it again
    label: str = ""  # "fast preview"
    task: str = ""  # "fast_style"
    function: str = ""  # "nbart.fast_style"
    ran: Any = None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    parent: Result | None = field(default=None, repr=False)
    timeline: Any = field(default=None, repr=False)  # the run's frames and losses (nbart.studio.timeline.Kept)

    @property
    def summary(self) -> str:
        """One line: what the run did and how it ended."""
        if self.label:
            return f"{self.label}, {duration(self.seconds)}"
        return (f"{'+' if self.continued else ''}{self.steps_done}/{self.total} steps, {duration(self.seconds)}, "
                f"{self.outcome}")


class HistoryStrip(widgets.HBox):
    """A row of :data:`HISTORY_SLOTS` slots (a small picture and a restore button), made once on the main thread;
    :meth:`show` only sets their values, so the run's worker may call it. ``on_restore(index)`` gets the index in
    the history of the slot clicked; ``function`` ("nbart.dream") writes each slot's tooltip as code."""

    def __init__(self, on_restore: Callable[[int], None], function: str):
        self._on_restore, self._function = on_restore, function
        self._shown = 0  # how many entries the history had at the last show()
        self.slots: list[tuple[widgets.VBox, widgets.Image, widgets.Button]] = []
        for i in range(HISTORY_SLOTS):
            img = widgets.Image(format="png", layout=widgets.Layout(height=f"{THUMB_HEIGHT}px", object_fit="contain"))
            button = widgets.Button(description="restore", layout=widgets.Layout(width="96px"))
            button.add_class("nbart-restore")
            button.on_click(lambda _b, i=i: self._clicked(i))
            box = widgets.VBox([img, button], layout=widgets.Layout(display="none", align_items="center",
                                                                     margin="0 6px 0 0"))
            self.slots.append((box, img, button))
        super().__init__([s[0] for s in self.slots], layout=widgets.Layout(overflow="auto"))
        self.add_class("nbart-history")

    def index_of(self, slot: int) -> int:
        """The history index of what slot ``slot`` shows."""
        return self._shown - min(self._shown, HISTORY_SLOTS) + slot

    def _clicked(self, slot: int) -> None:
        self._on_restore(self.index_of(slot))

    def show(self, history: list[Result]) -> None:
        """Fill the slots with the last entries of ``history``; hide the rest."""
        self._shown = len(history)
        shown = history[-HISTORY_SLOTS:]
        offset = len(history) - len(shown)
        for i, (box, img, button) in enumerate(self.slots):
            if i < len(shown):
                entry = shown[i]
                with img.hold_sync():
                    img.format, img.value = "jpeg", encode(entry.image, "jpeg", THUMB_SIDE)
                button.description = f"#{offset + i + 1} restore"
                button.tooltip = f"{entry.summary}\n{to_code(entry.function or self._function, entry.params, '...')}"
                box.layout.display = None
            else:
                box.layout.display = "none"

    def set_disabled(self, disabled: bool) -> None:
        for _box, _img, button in self.slots:
            button.disabled = disabled
