"""The studios' "Regions" control: make masks where you work, on core ipywidgets (7.7 and 8).

It shows the content with its regions overlaid in colours, and makes each region's mask with :mod:`nbart.masks`:
colour clusters (k-means, pick the clusters), a rectangle or an ellipse (range sliders, in fractions of the
picture), a linear gradient (an angle), or an uploaded mask image; then feather and invert. In the StyleStudio each
style image has its own region (one mask per style: guided Gram matrices); in the DreamStudio there is one.

"Use regions" writes each mask as a PNG beside the notebook (``mask-<hash>.png``, named by its content, written once)
and puts the paths in the ``mask`` control: the run, "Show code" and the saved PNG's settings name those files, so
the picture can be made again from the code. "Clear" empties the control (everywhere).
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from nbart import masks
from nbart.images import ImageError, save_image
from nbart.studio.compat import set_tooltip, uploaded_files

__all__ = ["RegionControl", "save_mask"]

KINDS = ("colour clusters", "rectangle", "ellipse", "gradient", "upload")
VIEW_SIZE = 256  # px, the long side of the overlay and of the content the clusters are found in


def save_mask(mask: np.ndarray, folder: str = ".") -> str:
    """Write ``mask`` ((H, W) in [0, 1]) as a greyscale PNG named by its content (``mask-<sha1 8>.png``) in
    ``folder``, unless that file is there already; returns the path relative to ``folder``."""
    data = (np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8)
    name = f"mask-{hashlib.sha1(data.tobytes() + str(data.shape).encode()).hexdigest()[:8]}.png"
    if not os.path.exists(os.path.join(folder, name)):
        save_image(Image.fromarray(data, mode="L"), os.path.join(folder, name))
    return name


class RegionControl:
    """The Regions accordion of a studio: ``widget`` to show; ``content()`` gives the picture regions are drawn on,
    ``regions()`` how many there are (the number of style images), ``mask_control`` is the studio's ``mask`` Text
    control that "Use regions" fills."""

    def __init__(self, content: Any, regions: Any, mask_control: widgets.Text, folder: str = "."):
        self._content, self._regions, self.mask_control, self.folder = content, regions, mask_control, folder
        self.masks: dict[int, np.ndarray] = {}  # region index -> its mask, at the content's view size
        full = dict(style={"description_width": "80px"}, layout=widgets.Layout(width="100%"))
        self.region = widgets.Dropdown(options=[("region 1", 0)], value=0, description="Region", **full)
        set_tooltip(self.region, "the region being set: region N is where style image N paints")
        self.kind = widgets.Dropdown(options=KINDS, value="colour clusters", description="Shape", **full)
        self.k = widgets.IntSlider(value=3, min=2, max=8, description="Clusters", continuous_update=False, **full)
        self.keep = widgets.SelectMultiple(options=[], rows=3, description="Keep", **full)
        set_tooltip(self.keep, "the colour clusters in the region, numbered dark to light")
        self.ys = widgets.FloatRangeSlider(value=(0.25, 0.75), min=0, max=1, step=0.01, description="Top-bottom",
                                           continuous_update=False, **full)
        self.xs = widgets.FloatRangeSlider(value=(0.25, 0.75), min=0, max=1, step=0.01, description="Left-right",
                                           continuous_update=False, **full)
        self.angle = widgets.FloatSlider(value=0, min=0, max=360, step=5, description="Angle",
                                         continuous_update=False, **full)
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Mask file")
        self.feather = widgets.FloatSlider(value=0, min=0, max=20, step=0.5, description="Feather px",
                                           continuous_update=False, **full)
        self.invert = widgets.Checkbox(value=False, description="Invert", indent=False)
        self.set_button = widgets.Button(description="Set region", icon="check", layout=widgets.Layout(width="auto"))
        self.use_button = widgets.Button(description="Use regions", button_style="primary",
                                         layout=widgets.Layout(width="auto"))
        self.clear_button = widgets.Button(description="Clear", layout=widgets.Layout(width="auto"))
        set_tooltip(self.use_button, "save the masks beside the notebook and use them in the next run")
        self.view = widgets.Image(format="png", layout=widgets.Layout(width=f"{VIEW_SIZE}px", object_fit="contain"))
        self.note = widgets.HTML()
        for w, name in ((self.set_button, "set"), (self.use_button, "use"), (self.clear_button, "clear"),
                        (self.kind, "kind"), (self.keep, "keep"), (self.view, "view"), (self.region, "region")):
            w.add_class(f"nbart-region-{name}")
        self.set_button.on_click(lambda _b: self.set_region())
        self.use_button.on_click(lambda _b: self.use())
        self.clear_button.on_click(lambda _b: self.clear())
        for w in (self.kind, self.k, self.keep, self.ys, self.xs, self.angle, self.upload, self.feather, self.invert):
            w.observe(lambda _change: self.refresh(), names="value")
        self.kind.observe(lambda _change: self._layout(), names="value")
        self.k.observe(lambda _change: self._relabel(), names="value")
        self.box = widgets.VBox()
        self.widget = widgets.Accordion([self.box])
        self.widget.set_title(0, "Regions (masks)")
        self.widget.selected_index = None  # closed until wanted
        self.widget.add_class("nbart-regions")
        self.widget.observe(lambda change: change["new"] is not None and self.refresh(), names="selected_index")
        self._labels: np.ndarray | None = None
        self._picture: Image.Image | None = None
        self._layout()
        self._list_regions()

    # ----------------------------------------------------------------------------------------------------------

    def picture(self) -> Image.Image:
        """The content at the view size (read once per change of source)."""
        if self._picture is None:
            self._picture = self._content()
            self._picture.thumbnail((VIEW_SIZE, VIEW_SIZE))
        return self._picture

    def sources_changed(self) -> None:
        """The content or the styles changed: masks and clusters are made again for the new picture."""
        self._picture, self._labels, self.masks = None, None, {}
        self._list_regions()
        if self.widget.selected_index is not None:
            self.refresh()

    def _count(self) -> int:
        try:
            return max(1, self._regions())
        except ImageError:  # no usable style chosen yet: one region until there is
            return 1

    def _list_regions(self) -> None:
        n = self._count()
        self.region.options = [(f"region {i + 1} (style {i + 1})" if n > 1 else "region", i) for i in range(n)]

    def candidate(self) -> np.ndarray:
        """The mask the controls describe now, at the view size: (H, W) float32 in [0, 1]."""
        img = self.picture()
        size = (img.size[1], img.size[0])
        kind = self.kind.value
        if kind == "colour clusters":
            if self._labels is None:
                self._labels = masks.cluster_labels(img, self.k.value, max_size=None)
            m = np.isin(self._labels, list(self.keep.value)).astype(np.float32)
        elif kind in ("rectangle", "ellipse"):
            (top, bottom), (left, right) = self.ys.value, self.xs.value
            if kind == "rectangle":
                m = masks.rectangle(size, (top, left, max(bottom, top + 0.01), max(right, left + 0.01)))
            else:
                m = masks.ellipse(size, ((top + bottom) / 2, (left + right) / 2),
                                  (max((bottom - top) / 2, 0.005), max((right - left) / 2, 0.005)))
        elif kind == "gradient":
            m = masks.linear_gradient(size, self.angle.value)
        else:
            files = uploaded_files(self.upload)
            if not files:
                return np.zeros(size, np.float32)
            m = masks.load_mask(files[0][1], size, what=files[0][0])[0]
        if self.feather.value:
            m = masks.feather(m, self.feather.value)
        return masks.invert(m) if self.invert.value else m

    def refresh(self) -> None:
        """Redraw the overlay: the regions set, and the one being set, in their colours (while the control is open:
        finding clusters costs a second)."""
        if self.widget.selected_index is None:
            return
        try:
            shown = dict(self.masks)
            shown[self.region.value] = self.candidate()
            img = masks.overlay(self.picture(), [shown.get(i, np.zeros_like(shown[self.region.value]))
                                                 for i in range(max(shown) + 1)])
        except (ImageError, ValueError) as e:
            self.note.value = f"<span style='color:#b00020'>{e}</span>"
            return
        buf = io.BytesIO()
        img.save(buf, "png")
        self.view.value = buf.getvalue()
        self.note.value = ""

    def set_region(self) -> None:
        """Keep the shown mask as the chosen region's."""
        self.masks[self.region.value] = self.candidate()
        self.refresh()

    def use(self) -> list[str]:
        """Save the regions' masks beside the notebook and put their paths in the ``mask`` control (a region not set
        is the shown one when it is the only one)."""
        if not self.masks:
            self.set_region()
        n = self._count()
        missing = [i + 1 for i in range(n) if i not in self.masks]
        if n > 1 and missing:
            self.note.value = (f"<span style='color:#b00020'>set region{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(map(str, missing))} too (one per style image)</span>")
            return []
        paths = [save_mask(self.masks[i], self.folder) for i in range(n)]
        self.mask_control.value = ",".join(paths)
        self.note.value = f"using {', '.join(paths)}"
        return paths

    def clear(self) -> None:
        self.masks = {}
        self.mask_control.value = ""
        self.note.value = "no mask: everywhere"
        self.refresh()

    def _relabel(self) -> None:
        self._labels = None
        self.keep.value = ()
        self.keep.options = [(f"{i} ({'darkest' if i == 0 else 'lightest' if i == self.k.value - 1 else 'mid'})", i)
                             for i in range(self.k.value)]

    def _layout(self) -> None:
        if not self.keep.options:
            self._relabel()
        kind = self.kind.value
        shape = {"colour clusters": [self.k, self.keep], "rectangle": [self.ys, self.xs],
                 "ellipse": [self.ys, self.xs], "gradient": [self.angle], "upload": [self.upload]}[kind]
        buttons = widgets.HBox([self.set_button, self.use_button, self.clear_button])
        self.box.children = [self.region, self.kind, *shape, self.feather, self.invert, buttons, self.view, self.note]
