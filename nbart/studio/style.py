"""StyleStudio: the style-transfer panel."""

from __future__ import annotations

from typing import Any

from PIL import Image

from nbart.params import StyleParams
from nbart.studio.base import Studio
from nbart.styletransfer import style_run

__all__ = ["StyleStudio"]


class StyleStudio(Studio):
    """A style-transfer panel: pick a content image and one or more style images, weights and an optimizer, press
    Run, and watch the content take on the style.

    ``content`` and ``style`` are ``"sample:NAME"``, a URL or path, or an image (PIL, array, bytes); ``style`` may be
    a list (blended by ``style_blend``). Keywords are :class:`~nbart.StyleParams` fields and set the controls'
    starting values (``starting`` below, unless ``max_size`` or ``sizes`` is given: a quicker start than the
    engine's defaults); ``mode``, ``preview_size`` and ``fps`` as for :class:`~nbart.DreamStudio`.
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
                 fps: float = 4.0, warm_up: bool | None = None, **params: Any):
        starting = {k: v for k, v in self.starting.items() if not ({k, "max_size"} & set(params))}
        super().__init__({"content": content, "style": style}, {**starting, **params}, mode=mode,
                         preview_size=preview_size, fps=fps, warm_up=warm_up)

    @staticmethod
    def _styles(items: dict[str, tuple]) -> Any:
        return list(items["style"]) if len(items["style"]) > 1 else items["style"][0]

    def _make_run(self, items: dict[str, tuple], params: StyleParams) -> Any:
        return style_run(items["content"][0], self._styles(items), params)

    def _continue_run(self, image: Image.Image, items: dict[str, tuple], params: StyleParams, steps: int) -> Any:
        # more steps at the result's own size, starting from it
        return style_run(items["content"][0], self._styles(items), params.replace(sizes=(max(image.size),),
                                                                                   steps=steps), init_image=image)
