"""The StyleStudio's fast preview: the instant stylization (:func:`nbart.fast_style_run`) of what is chosen, shown
before Run is pressed, and a row of the bundled paintings, each painted on the content, that picks the style.

Choosing a content or style image, or moving the strength slider, asks for a preview; the request is debounced
(:data:`DEBOUNCE_S`: a burst of slider moves makes one stylization) and runs in a background thread as runs do
(in the foreground on Colab, whose front-end drops a thread's updates). The latest request wins: a result that a
newer request or a press of Run has overtaken is dropped, never shown. Each preview shown joins the history as its
own entry, so Continue can refine it and Save keeps it.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from nbart import fast as fast_engine
from nbart.events import error_message
from nbart.images import encode, load_image, painting_names
from nbart.params import FastStyleParams, ParamError
from nbart.studio.compat import set_tooltip
from nbart.studio.driver import Debounced
from nbart.studio.history import Result
from nbart.studio.sources import Source

__all__ = ["FastPreview", "DEBOUNCE_S", "TILE"]

DEBOUNCE_S = 0.3  # s of stillness before a preview is made: one stylization per burst of slider moves
TILE = 96  # px, the long side of a painting's tile (the content painted in it)
FUNCTION = "nbart.fast_style"  # the call that makes a fast preview, for the history's tooltip and Save
LABEL = "fast preview"
MIN_SIZE = 128  # px, the least long side of a preview: the fast network wants a short side of 64 px or more


def _pretty(name: str) -> str:
    return name.replace("_", " ").title()


class FastPreview:
    """The fast-preview box of a StyleStudio: a ``strength`` slider and one tile per bundled painting (a picture and
    a button that picks it as the style). ``studio`` is the StyleStudio it serves; ``foreground`` makes previews in
    the caller's thread (Colab). ``widget`` is what the panel shows."""

    def __init__(self, studio: Any, foreground: bool = False):
        self.studio = studio
        self.strength = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength",
                                            readout_format=".2f", continuous_update=not foreground,
                                            style={"description_width": "60px"},
                                            layout=widgets.Layout(width="260px"))
        self.strength.add_class("nbart-strength")
        set_tooltip(self.strength, "0: the photo itself, 1: the full style (the fast preview only)")
        self.tiles: dict[str, tuple[widgets.Image, widgets.Button]] = {}
        boxes = []
        for name in painting_names():
            img = widgets.Image(format="png", value=encode(load_image(f"sample:{name}", max_size=2 * TILE), "png",
                                                           TILE), layout=widgets.Layout(height="64px",
                                                                                       object_fit="contain"))
            button = widgets.Button(description=_pretty(name), tooltip=f"use {_pretty(name)} as the style",
                                    layout=widgets.Layout(width="auto"))
            button.add_class("nbart-style-tile")
            button.on_click(lambda _b, name=name: self.pick(name))
            self.tiles[name] = (img, button)
            boxes.append(widgets.VBox([img, button], layout=widgets.Layout(align_items="center",
                                                                         margin="0 6px 0 0")))
        title = widgets.HTML("<b>Fast preview</b> <span style='color:#666'>(instant, before Run; a painting "
                             "below picks the style)</span>")
        self.widget = widgets.VBox([title, self.strength, widgets.HBox(boxes)],
                                   layout=widgets.Layout(margin="4px 0 8px 0"))
        self.widget.add_class("nbart-fast")
        self._lock = threading.Lock()  # a result is shown, or dropped, as one step against Run and new requests
        self._generation = 0  # bumped by every request and every Run: a result of an older one is dropped
        self._tiles_for: tuple | None = None  # the content items the tiles show
        self._quiet = False  # the slider is being set from a restored entry: no new preview
        self._debounced = Debounced(self._work, DEBOUNCE_S, "nbart-fast-preview", foreground)
        self.strength.observe(self.request, names="value")

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread of the latest previews (None in the foreground)."""
        return self._debounced.thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no preview is asked for or being made (at most ``timeout`` s); True if none is."""
        return self._debounced.wait(timeout)

    def pick(self, name: str) -> None:
        """Make the bundled painting ``name`` the (only) style: the style picker changes, which asks for a preview."""
        picker = self.studio.pickers["style"]
        picker.kind.value = "sample"
        picker.sample.value = (name,)

    def show_strength(self, value: float) -> None:
        """Set the slider without asking for a preview (a restored entry shows its own)."""
        self._quiet = True
        try:
            self.strength.value = value
        finally:
            self._quiet = False

    def cancel(self) -> None:
        """Drop any preview in the making (a run starts: its frames own the preview now)."""
        with self._lock:
            self._generation += 1

    def request(self, _change: Any = None) -> None:
        """Ask for a preview of what is chosen now (main thread: it reads the widgets). Nothing usable chosen, or
        a run in progress: nothing to do (Run says what is wrong)."""
        studio = self.studio
        if studio.running or self._quiet:
            return
        try:
            content, style = studio.pickers["content"].source(), studio.pickers["style"].source()
            params = self.params()
        except ValueError:  # ParamError, ImageError
            return
        with self._lock:
            self._generation += 1
            generation = self._generation
        studio.set_status("painting a fast preview…")
        self._debounced.request((generation, content, style, params))

    def params(self) -> FastStyleParams:
        """The fast stylization's parameters: the slider's strength, and the studio's style blend, colours and final
        size (at least :data:`MIN_SIZE`) where they are valid: the preview then has the size a run would give."""
        try:
            p = self.studio.params()
        except ParamError:
            return FastStyleParams(strength=self.strength.value, max_size=512)
        return FastStyleParams(strength=self.strength.value, style_blend=p.style_blend,
                               preserve_colors=p.preserve_colors, max_size=max(MIN_SIZE, p.resolution_sizes()[-1]))

    def _stale(self, generation: int) -> bool:
        return generation != self._generation or self.studio.running or self._debounced.pending()

    def _work(self, request: tuple[int, Source, Source, FastStyleParams]) -> None:
        """Make the preview (background thread), show it unless overtaken, then paint the tiles for a new content."""
        generation, content, style, params = request
        if self._stale(generation):
            return
        styles = list(style.items) if len(style.items) > 1 else style.items[0]
        try:
            run = fast_engine.fast_style_run(content.items[0], styles, params)
            image = run.run()
        except Exception as e:
            with self._lock:
                if not self._stale(generation):
                    self.studio.say(f"no fast preview: {error_message(e)}", "note")
            return
        seconds = run.latest.elapsed if run.latest is not None else 0.0
        sources = {"content": content, "style": style}
        entry = Result(image, params, sources, 1, 1, seconds, run.outcome, label=LABEL, task="fast_style",
                       function=FUNCTION, ran=run.params,
                       metadata=run.metadata(inputs=[i for s in sources.values() for i in s.describe()]))
        with self._lock:
            if self._stale(generation):
                return
            self.studio.show_fast(entry, run.notices)
        if content.items != self._tiles_for:
            self._paint_tiles(generation, content)

    def _paint_tiles(self, generation: int, content: Source) -> None:
        for name, (img, _button) in self.tiles.items():
            if self._stale(generation):
                return  # the next request paints them
            tile = fast_engine.fast_style_run(content.items[0], f"sample:{name}", max_size=TILE).run()
            img.value = encode(tile, "png")
        self._tiles_for = content.items


def status(entry: Result, init: str) -> str:
    """The status line of a fast preview on show; ``init`` is the studio's starting image for Run."""
    refine = ("press Run to refine it with the optimizer" if init == "fast"
              else "Continue refines it with the optimizer (so does Run with init 'fast')")
    return (f"{LABEL} · {entry.image.size[0]}x{entry.image.size[1]} · strength {entry.params.strength:.2f} · "
            f"{entry.seconds:.1f} s · {refine}")
