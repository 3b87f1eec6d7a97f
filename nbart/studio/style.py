"""StyleStudio: the style-transfer panel, with a fast preview before Run."""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as widgets
from PIL import Image

from nbart.params import StyleParams
from nbart.studio import fast, regions
from nbart.studio.base import Studio
from nbart.studio.history import Result
from nbart.styletransfer import continue_run, style_run

__all__ = ["StyleStudio"]


class StyleStudio(Studio):
    """A style-transfer panel: pick a content image and one or more style images, weights and an optimizer, press
    Run, and watch the content take on the style.

    ``content`` and ``style`` are ``"sample:NAME"``, a URL or path, or an image (PIL, array, bytes); ``style`` may be
    a list (blended by ``style_blend``). Keywords are :class:`~nbart.StyleParams` fields and set the controls'
    starting values (``starting`` below, unless ``max_size`` or ``sizes`` is given: a quicker start than the
    engine's defaults); ``mode``, ``preview_size``, ``fps``, ``warm_up`` and ``estimate`` as for
    :class:`~nbart.DreamStudio`.

    ``fast_preview`` (default: on, unless the environment sets NBART_FAST_PREVIEW=0) shows the instant
    stylization (:func:`nbart.fast_style`) of what is chosen before Run is pressed, with a ``strength`` slider and a
    row of the bundled paintings that picks the style (``fast``: :class:`~nbart.studio.fast.FastPreview`); each
    preview joins the history, and Run (``init="fast"`` to start from it) or Continue refines it. ``fit_start``
    as for :class:`~nbart.DreamStudio` (on unless ``max_size`` or ``sizes`` is given).
    """

    task = "style"
    title = "nbart · Style Transfer studio"
    function = "nbart.style_transfer"
    params_cls = StyleParams
    layer_fields = {"content_layers": "content_layers", "style_layers": "style_layers"}
    pickers_spec = (("content", "Content", False, "grace_hopper"), ("style", "Style", True, "starry_night"))
    tab_titles = {"main": "Style", "image": "Size & colour", "model": "Model"}
    # The engine's defaults (50 L-BFGS steps at 256 then 512 px) took 4.4 min here on a busy 2-core CPU; these took
    # 96 s on the same busy machine (59 CPU-seconds) and keep a clear face with the style's strokes.
    starting = {"sizes": (256, 384), "steps": 30}

    def __init__(self, content: Any = None, style: Any = None, *, mode: str = "auto", preview_size: int = 384,
                 fps: float = 4.0, warm_up: bool | None = None, fast_preview: bool | None = None,
                 estimate: bool | None = None, fit_start: bool | None = None, **params: Any):
        if fast_preview is None:
            fast_preview = os.environ.get("NBART_FAST_PREVIEW", "1") != "0"
        self.fast: fast.FastPreview | None = None
        self._fast_wanted = fast_preview
        starting = {k: v for k, v in self.starting.items() if not ({k, "max_size"} & set(params))}
        super().__init__({"content": content, "style": style}, {**starting, **params}, mode=mode,
                         preview_size=preview_size, fps=fps, warm_up=warm_up, estimate=estimate,
                         fit_start=fit_start)
        if self.fast is not None:
            self.fast.request()  # the first look at once

    @staticmethod
    def _styles(items: dict[str, tuple]) -> Any:
        return list(items["style"]) if len(items["style"]) > 1 else items["style"][0]

    def _make_run(self, items: dict[str, tuple], params: StyleParams) -> Any:
        return style_run(items["content"][0], self._styles(items), params)

    def _continue_run(self, image: Image.Image, items: dict[str, tuple], params: StyleParams, steps: int) -> Any:
        # at the result's own size, starting from it (a fast preview too: Continue refines it)
        return continue_run(image, items["content"][0], self._styles(items), params, steps)

    # ----------------------------------------------------------------------------------------------------------
    # the fast preview

    def _extras(self) -> tuple[widgets.Widget, ...]:
        # the Regions control: one mask per style image (nbart.studio.regions)
        self.regions = regions.RegionControl(lambda: self.pickers["content"].source().load(max_size=1024)[0],
                                             lambda: len(self.pickers["style"].source().items), self.controls["mask"])
        if not self._fast_wanted:
            return (self.regions.widget,)
        self.fast = fast.FastPreview(self, foreground=self.mode == "foreground")
        return (self.fast.widget, self.regions.widget)

    def show_fast(self, entry: Result, notices: list[str]) -> None:
        """Show a fast preview and keep it in the history (the preview's thread, or the main thread on Colab)."""
        self.history.append(entry)
        self.current = entry
        self.show_image(entry.image, "png")
        init = self.controls["init"].value if "init" in self.controls else "content"
        self.set_status(fast.status(entry, init))
        self.say(" ".join(notices) if notices else None, "note")
        self.history_strip.show(self.history)
        self._set_busy(False)

    def _sources_changed(self) -> None:
        super()._sources_changed()
        self.regions.sources_changed()
        if self.fast is not None:
            self.fast.request()

    def _starting(self) -> None:
        if self.fast is not None:
            self.fast.cancel()  # a preview still in the making must not cover the run's frames
        super()._starting()

    def _restore_settings(self, entry: Result) -> None:
        if entry.task == "fast_style":
            if self.fast is not None:
                self.fast.show_strength(entry.params.strength)
            return
        super()._restore_settings(entry)
