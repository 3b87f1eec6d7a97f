"""The DreamStudio's Explore tab: one small dream per layer (or channel) as thumbnails that fill in as they finish;
a click puts that layer (or ``layer:channel``) in the studio's layers for the main run. Also :class:`Thumbs` and
:class:`Background`, shared with the Compare tab (:mod:`nbart.studio.compare`).

Widgets are made on the main thread when the tab is built; the worker (a thread, or the foreground on Colab, as the
studio's runs) only sets their values (DESIGN.md §4).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbart.errors import error_message
from nbart.images import encode
from nbart.studio.compat import set_tooltip
from nbart.studio.costlabel import CostLabel
from nbart.studio.driver import apply_keras_state, keras_state

__all__ = ["ExploreTab", "Thumbs", "Background", "THUMB_SIDE", "EXPLORE_SIZE"]

THUMB_SIDE = 112  # px, a thumbnail's box
EXPLORE_SIZE = 128  # px, the long side of the explored dreams
MAX_SLOTS = 16  # thumbnails a tab holds: every layer of the registry's backbones (13 at most), or 16 channels


class Thumbs(widgets.Box):
    """``slots`` thumbnails (picture and a button under it), made once; :meth:`show_labels` and :meth:`fill` only
    set values (any thread). ``on_click(index)`` gets the index of the thumbnail clicked. CSS: each button has
    ``css`` (``nbart-explore-pick``), each picture ``css + "-image"``."""

    def __init__(self, slots: int, on_click: Callable[[int], None], css: str):
        self.images, self.buttons, self.boxes = [], [], []
        for i in range(slots):
            img = widgets.Image(format="png", layout=widgets.Layout(width=f"{THUMB_SIDE}px",
                                                                     height=f"{THUMB_SIDE}px", object_fit="contain",
                                                                     border="1px solid #ddd"))
            img.add_class(f"{css}-image")
            button = widgets.Button(description="", disabled=True,
                                    layout=widgets.Layout(width=f"{THUMB_SIDE + 2}px", height="auto"))
            button.add_class(css)
            button.on_click(lambda _b, i=i: on_click(i))
            box = widgets.VBox([img, button], layout=widgets.Layout(display="none", margin="0 4px 4px 0"))
            self.images.append(img)
            self.buttons.append(button)
            self.boxes.append(box)
        super().__init__(self.boxes, layout=widgets.Layout(flex_flow="row wrap"))

    def show_labels(self, labels: list[str]) -> None:
        """Show one empty slot per label (its button waits, disabled, until its picture comes); hide the rest."""
        for i, box in enumerate(self.boxes):
            box.layout.display = None if i < len(labels) else "none"
            if i < len(labels):
                self.images[i].value = b""
                self.buttons[i].description, self.buttons[i].disabled = labels[i], True
                set_tooltip(self.buttons[i], labels[i])

    def fill(self, index: int, image: Any, label: str, tooltip: str) -> None:
        """Slot ``index`` gets its picture (PIL) and becomes clickable."""
        with self.images[index].hold_sync():
            self.images[index].format = "jpeg"
            self.images[index].value = encode(image, "jpeg", 2 * THUMB_SIDE)
        self.buttons[index].description, self.buttons[index].disabled = label, False
        set_tooltip(self.buttons[index], tooltip)


class Background:
    """Runs ``work(stop)`` in a daemon thread with the main thread's Keras state (or at once, in the foreground
    on Colab, where updates from threads are dropped); one at a time. :meth:`stop` asks it to end (``stop`` is a
    threading.Event the work checks); :meth:`wait` blocks until it has."""

    def __init__(self, name: str, foreground: bool, failed: Callable[[BaseException], None]):
        self.name, self.foreground, self.failed = name, foreground, failed
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, work: Callable[[threading.Event], None], block: bool | None = None) -> bool:
        if self.busy:
            return False
        self.stop_event = threading.Event()
        stop, state = self.stop_event, keras_state()

        def body() -> None:
            apply_keras_state(state)
            try:
                work(stop)
            except KeyboardInterrupt:  # the cell's interrupt, in the foreground: what finished stays
                stop.set()
            except Exception as e:  # shown in the tab, in words
                self.failed(e)

        if block if block is not None else self.foreground:
            body()
            return True
        self.thread = threading.Thread(target=body, name=self.name, daemon=True)
        self.thread.start()
        return True

    def stop(self) -> None:
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.busy


class ExploreTab(widgets.VBox):
    """The Explore tab of a DreamStudio: "every layer" or "channels of" one layer of the backbone that runs (the
    studio's model and weights: ``auto`` resolved as a run resolves it), dreamed small on the studio's image by
    :func:`nbart.explore_run`. Clicking a thumbnail sets the studio's layers to it.

    For tests: ``start(block=None)``, ``stop()``, ``wait(timeout)``, ``exploration``, ``specs``, ``pick(index)``.
    """

    def __init__(self, studio: Any):
        self.studio = studio
        self.exploration: Any = None
        self.specs: list[str] = []
        self.size, self.steps = EXPLORE_SIZE, 5  # of the explored dreams (px, steps): nbart.explore's defaults
        self.what = widgets.Dropdown(options=[("every layer", "layers"), ("channels of", "channels")],
                                     value="layers", description="explore", layout=widgets.Layout(width="220px"))
        self.layer = widgets.Dropdown(options=[], layout=widgets.Layout(width="150px", display="none"))
        self.count = widgets.BoundedIntText(value=8, min=1, max=MAX_SLOTS, description="most active",
                                            layout=widgets.Layout(width="160px", display="none"))
        self.what.observe(self._what_changed, names="value")
        self.go = widgets.Button(description="Explore", icon="th", button_style="info",
                                 layout=widgets.Layout(width="auto"))
        set_tooltip(self.go, f"dream the studio's image small ({EXPLORE_SIZE} px) once per layer or channel")
        self.go.add_class("nbart-explore-run")
        self.halt = widgets.Button(description="Stop", icon="stop", disabled=True, layout=widgets.Layout(width="auto"))
        self.halt.add_class("nbart-explore-stop")
        self.status = widgets.HTML()
        self.status.add_class("nbart-explore-status")
        # what Explore will cost, before it runs (nbart.estimate("explore", ...)), beside the button
        self.cost_label = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        self.cost_label.add_class("nbart-explore-estimate")
        self.cost = CostLabel(self.cost_label, "explore", self._estimate_request, studio.mode == "foreground")
        self.thumbs = Thumbs(MAX_SLOTS, self.pick, "nbart-explore-pick")
        self.worker = Background("nbart-explore", studio.mode == "foreground", self._failed)
        self.go.on_click(lambda _b: self.start())
        self.halt.on_click(lambda _b: self.stop())
        for name in ("model", "weights"):
            if name in studio.controls:
                studio.controls[name].observe(lambda _c: self._relist(), names="value")
        self._relist()
        for w in (self.what, self.layer, self.count):
            w.observe(self.request_estimate, names="value")
        help_line = widgets.HTML("<span style='color:#666;font-size:12px'>Which layer? Each thumbnail is a small "
                                 "dream of one layer; click one to dream with it.</span>")
        super().__init__([help_line, widgets.HBox([self.what, self.layer, self.count]),
                          widgets.HBox([self.go, self.halt, self.cost_label], layout=widgets.Layout(
                              align_items="center")), self.status, self.thumbs])
        self.add_class("nbart-explore")

    # ----------------------------------------------------------------------------------------------------------

    def _backbone(self) -> Any:
        from nbart.weights import resolve

        p = self.studio.params()
        return resolve(p.model, p.weights).backbone

    def _settings(self) -> dict[str, Any]:
        """The keywords :func:`nbart.explore_run` gets from the tab and the studio (main thread)."""
        p = self.studio.params()
        channels = self.count.value if self.what.value == "channels" else None
        return dict(model=p.model, weights=p.weights, layers=self.layer.value if channels else None,
                    channels=channels, size=self.size, steps=self.steps, precision=p.precision)

    def _estimate_request(self) -> tuple[Any, list[Any]]:
        from nbart.cost import ExploreSettings

        return ExploreSettings(self._settings()), [self.studio.pickers["image"].source()]

    def follow_studio_estimate(self) -> None:
        """Once the panel is built: the tab's estimate follows the studio's (a new image, model or calibration
        updates it) and reads the image through the studio's label (read once); nothing where the studio shows no
        estimates (estimate=False, NBART_ESTIMATE=0)."""
        if getattr(self.studio, "cost", None) is None:
            return
        self.cost.share_images(self.studio.cost)
        self.studio.cost_label.observe(self.request_estimate, names="value")
        self.request_estimate()

    def request_estimate(self, _change: Any = None) -> None:
        """Estimate the exploration the tab would run now, once the studio's own estimate (which reads the image)
        has been made; its label's change calls this again."""
        if getattr(self.studio, "cost", None) is not None and self.studio.cost.estimate is not None:
            self.cost.request()

    def _relist(self) -> None:
        try:
            bb = self._backbone()
        except Exception:  # noqa: BLE001 (a bad setting: the run says why; the list stays)
            return
        self.layer.options = list(bb.layers)
        self.layer.value = bb.dream_layers[0]

    def _what_changed(self, change: dict) -> None:
        shown = None if change["new"] == "channels" else "none"
        self.layer.layout.display = self.count.layout.display = shown

    def _say(self, text: str, color: str = "#555") -> None:
        self.status.value = f"<div style='font-size:12px;color:{color}'>{html.escape(text)}</div>"

    def _failed(self, error: BaseException) -> None:
        self._say(error_message(error), "#b00020")
        self._busy(False)

    def _busy(self, busy: bool) -> None:
        self.go.disabled, self.halt.disabled = busy, not busy

    # ----------------------------------------------------------------------------------------------------------

    def start(self, block: bool | None = None) -> bool:
        """Explore with the studio's image, model, weights and precision; False if one is running (or a setting
        is bad: the tab says why)."""
        from nbart.explorer import explore_run

        if self.worker.busy:
            return False
        try:
            settings = self._settings()
            channels = settings["channels"]
            image = self.studio.pickers["image"].source().items[0]
            self.exploration = explore_run(image, **settings)
        except Exception as e:  # noqa: BLE001 (shown in words)
            self._failed(e)
            return False
        ex = self.exploration
        self.specs = list(ex.specs)
        self.thumbs.show_labels(self.specs)
        self._busy(True)
        self._say(f"dreaming {len(self.specs)} thumbnails of {ex.specs[0].partition(':')[0]}…" if channels else
                  f"dreaming one thumbnail per layer ({len(self.specs)})…")

        def work(_stop: threading.Event) -> None:  # stop() reaches the exploration itself
            try:
                for r in ex:
                    self.thumbs.fill(self.specs.index(r.spec), r.image, r.spec,
                                     f"{r.spec}: activation x{r.gain:.3g}; click to dream with it")
                    self._say(f"{len(ex.results)}/{len(self.specs)} done" + (" (cached)" if r.cached else ""))
                done = len(ex.results)
                self._say(f"{done}/{len(self.specs)} done; click a thumbnail to set the layers"
                          if done == len(self.specs) else f"stopped: {done}/{len(self.specs)} done")
            finally:
                self._busy(False)

        return self.worker.start(work, block)

    def stop(self) -> None:
        self.worker.stop()
        if self.exploration is not None:
            self.exploration.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)

    def pick(self, index: int) -> None:
        """Set the studio's layers to thumbnail ``index``'s layer (or ``layer:channel``)."""
        spec = self.specs[index]
        try:
            self.studio.set_params(layers=(spec,), layer_weights=())
        except Exception as e:  # noqa: BLE001 (a bad setting elsewhere in the panel: said in words)
            self._failed(e)
            return
        self._say(f"layers set to {spec}: press Run", "#1b5e20")
