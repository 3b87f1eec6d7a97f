"""DreamStudio: the Deep Dream panel."""

from __future__ import annotations

from typing import Any

from PIL import Image

from nbart.deepdream import continue_run, dream_run
from nbart.params import DreamParams
from nbart.studio import regions
from nbart.studio.animate import AnimateControls
from nbart.studio.base import Studio

__all__ = ["DreamStudio"]


class DreamStudio(Studio):
    """A Deep Dream panel: pick an image, a model, layers, octaves and steps, press Run, watch the dream grow.

    ``image`` is ``"sample:NAME"``, a URL or path, or an image (PIL, array, bytes); keywords are
    :class:`~nbart.DreamParams` fields and set the controls' starting values. ``mode``: ``auto`` (a worker thread,
    or the foreground on Colab), ``thread`` or ``foreground``. ``warm_up`` (default: on, unless the environment
    sets NBART_WARM_UP=0) builds the network in the background as the panel opens, so Run shows a preview at once.
    ``estimate`` (default: on, unless NBART_ESTIMATE=0) shows the run's expected time and memory next to Run
    (:mod:`nbart.studio.costlabel`).
    ``fit_start`` (default: on unless ``max_size`` is given; with the warm-up) then lowers the starting size where
    the cost model expects the run to take over a minute here, and says so with a button back to the asked size
    (:mod:`nbart.studio.startsize`).
    End a cell with the studio to show it.

    For scripts and tests: ``controls`` (field name -> widget), ``preview``, ``start()``, ``stop()``,
    ``wait(timeout)``, ``continue_run(steps)``, ``result``, ``history``, ``code_text()``, ``save(path)``;
    ``start(block=True)`` runs in the calling thread (for notebooks executed headless).
    """

    task = "dream"
    title = "nbart · Deep Dream studio"
    function = "nbart.dream"
    params_cls = DreamParams
    layer_fields = {"layers": "dream_layers"}
    pickers_spec = (("image", "Image", False, "grace_hopper"),)
    tab_titles = {"main": "Dream", "image": "Size", "model": "Model"}

    def __init__(self, image: Any = None, *, mode: str = "auto", preview_size: int = 384, fps: float = 4.0,
                 warm_up: bool | None = None, estimate: bool | None = None, fit_start: bool | None = None,
                 **params: Any):
        super().__init__({"image": image}, params, mode=mode, preview_size=preview_size, fps=fps, warm_up=warm_up,
                         estimate=estimate, fit_start=fit_start)
        self.explore.follow_studio_estimate()  # the panel is built: the Explore tab's estimate follows the studio's

    def _extras(self) -> tuple[Any, ...]:
        # the Regions control: where to dream (nbart.studio.regions)
        self.regions = regions.RegionControl(lambda: self.pickers["image"].source().load(max_size=1024)[0],
                                             lambda: 1, self.controls["mask"])
        self.animate = AnimateControls()  # Run makes a zoom animation when ticked (nbart.studio.animate)
        return (self.regions.widget, self.animate)

    def _sources_changed(self) -> None:
        super()._sources_changed()
        self.regions.sources_changed()

    def _extra_tabs(self) -> tuple[tuple[str, Any], ...]:
        from nbart.studio.explore import ExploreTab  # issue 18: which layer? one small dream per layer

        self.explore = ExploreTab(self)
        return (("Explore", self.explore),)

    def _make_run(self, items: dict[str, tuple], params: DreamParams) -> Any:
        zoom = self.animate.params(params)
        if zoom is not None:
            from nbart.zoom import dream_zoom_run

            return dream_zoom_run(items["image"][0], zoom)
        return dream_run(items["image"][0], params)

    def run_ended(self, job: Any, run: Any, frames: Any, outcome: str) -> None:
        shown = len(self.history)
        super().run_ended(job, run, frames, outcome)
        if run.task == "zoom" and len(self.history) > shown:  # a result was kept: Show code writes the animation
            self.history[-1].function, self.history[-1].task = "nbart.dream_zoom", "zoom"

    def _continue_run(self, image: Image.Image, items: dict[str, tuple], params: DreamParams, steps: int) -> Any:
        return continue_run(image, params, steps)  # one octave at full size: the run that made it did the octaves
