"""The DreamStudio's "Animate" option: Run makes a zoom animation (:func:`nbart.dream_zoom_run`) instead of one
dream, each frame shown live in the preview as it is made; the timeline under the preview then scrubs its frames and
Save writes them as GIF or MP4 (:mod:`nbart.studio.timeline`).

The controls come from :class:`~nbart.params.ZoomParams`' spec (their help, bounds and slider ranges); each frame
is a dream of ``steps per frame`` steps at one octave, with the Dream tab's other settings.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from nbart.params import ZoomParams, fields_of
from nbart.studio.compat import set_tooltip

__all__ = ["AnimateControls", "ANIMATE_FIELDS"]

ANIMATE_FIELDS = ("frames", "zoom", "rotate", "steps")  # the ZoomParams the box shows ("steps": per frame)
LABELS = {"steps": "steps/frame"}


class AnimateControls(widgets.VBox):
    """A checkbox "Animate: zoom" and, while it is ticked, sliders for the frames, zoom, turn and steps per frame."""

    def __init__(self) -> None:
        infos = {info.name: info for info in fields_of(ZoomParams)}
        self.enabled = widgets.Checkbox(value=False, description="Animate: zoom into the dream", indent=False)
        self.enabled.add_class("nbart-animate")
        set_tooltip(self.enabled, "Run makes a zoom animation: each frame dreams on the previous one, zoomed in")
        self.sliders: dict[str, widgets.Widget] = {}
        for name in ANIMATE_FIELDS:
            info = infos[name]
            low, high, step = info.spec.ui
            cls = widgets.IntSlider if info.kind == "int" else widgets.FloatSlider
            kw = {} if info.kind == "int" else {"readout_format": ".3g"}
            slider = cls(value=info.default, min=low, max=high, step=step, description=LABELS.get(name, name),
                         continuous_update=False, layout=widgets.Layout(width="380px"), **kw)
            set_tooltip(slider, info.spec.help)
            slider.add_class(f"nbart-animate-{name}")
            self.sliders[name] = slider
        self.box = widgets.VBox(list(self.sliders.values()), layout=widgets.Layout(display="none"))
        self.enabled.observe(lambda c: setattr(self.box.layout, "display", None if c["new"] else "none"),
                             names="value")
        super().__init__([self.enabled, self.box])

    def params(self, dream: Any) -> ZoomParams | None:
        """The zoom's parameters from the dream's (``dream``, a DreamParams) and the sliders, one octave a frame;
        None when Animate is off."""
        if not self.enabled.value:
            return None
        values = dream.to_dict()
        values.update(octaves=1, **{name: slider.value for name, slider in self.sliders.items()})
        return ZoomParams(**values)
