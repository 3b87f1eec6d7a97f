"""The studios' "Inside" panel: what the network sees and why the picture changes, live, beside the run.

Off by default (a toggle). On, it asks the run for its inside view (:meth:`nbart.events.Run.inside`, see
:mod:`nbart.inside`) and shows, at the preview's rate: the loss's terms as curves on a log scale (a dream: each
layer's activation), the gradient map beside the picture, the chosen layer's most active channels, and for style
transfer the Gram matrices of one style layer for the picture and for the style. One plain-words caption under each.

The views are drawn here as small PNGs (matplotlib's colour maps, Pillow) and an inline SVG (the curves), in the
run's worker thread: that thread only sets widget values (DESIGN.md §4).
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw

from nbart import registry
from nbart.images import encode
from nbart.studio.compat import set_tooltip
from nbart.weights import resolve

__all__ = ["InsidePanel", "curves_svg", "heat_image", "gallery", "COLOURS"]

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
VIEW_SIDE = 176  # px: the picture and the gradient map, side by side
MAP_SIDE = 72  # px: one activation map in the gallery
GRAM_SIDE = 150  # px: one Gram matrix


def _caption_html(text: str, width: int) -> str:
    return (f"<div style='font-size:12px;color:#444;line-height:1.3;width:{width}px;white-space:normal'>"
            f"{html.escape(text)}</div>")


def _caption(text: str, width: int = 400) -> widgets.HTML:
    return widgets.HTML(_caption_html(text, width))


def _show_png(widget: widgets.Image, image: Image.Image) -> None:
    """A picture at its own size (a flex box would stretch it to the column's width)."""
    with widget.hold_sync():
        widget.layout.width, widget.layout.height = f"{image.size[0]}px", f"{image.size[1]}px"
        widget.value = encode(image, "png")


def _tick(exponent: int) -> str:
    """A power of ten as people write it: 100, 1, 0.01; 1e-05 beyond."""
    return f"{10.0 ** exponent:g}"


def curves_svg(history: list[tuple[int, dict[str, float]]], width: int = 420, height: int = 130) -> str:
    """An inline SVG of several positive series over the steps on a log scale (one grid line per power of ten), with
    a legend: ``history`` is (step, {name: value}) per step. Values <= 0 or non-finite are left out of a line."""
    names = list(dict.fromkeys(name for _, values in history for name in values))
    points = [(step, name, math.log10(v)) for step, values in history for name, v in values.items()
              if math.isfinite(v) and v > 0]
    legend_w, pad = 150, 4
    plot_w = width - legend_w
    if len(points) < 2:
        body, low, high = "", 0.0, 1.0
    else:
        low = math.floor(min(p[2] for p in points))
        high = max(math.ceil(max(p[2] for p in points)), low + 1)
        first, last = history[0][0], max(history[-1][0], history[0][0] + 1)

        def x(step: int) -> float:
            return pad + (plot_w - 2 * pad) * (step - first) / (last - first)

        def y(v: float) -> float:
            return pad + (height - 2 * pad) * (high - v) / (high - low)

        grid = "".join(f'<line x1="{pad}" y1="{y(e):.1f}" x2="{plot_w - pad}" y2="{y(e):.1f}" stroke="#e3e3e3"/>'
                       f'<text x="{pad + 1}" y="{y(e) + (10 if e > low else -2):.1f}" font-size="9" '
                       f'fill="#999">{_tick(e)}</text>'
                       for e in range(int(low), int(high) + 1))
        grid += (f'<text x="{plot_w - pad - 2}" y="{height - pad - 2}" font-size="9" fill="#999" '
                 f'text-anchor="end">step {history[-1][0]} →</text>')
        stride = max(1, len(history) // (2 * plot_w))
        lines = []
        for i, name in enumerate(names):
            pts = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, n, v in points if n == name and s % stride == 0)
            if not pts:
                continue
            dash = ' stroke-dasharray="3,2"' if "·" in name else ""
            lines.append(f'<polyline fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.6"{dash} '
                         f'points="{pts}"/>')
        body = grid + "".join(lines)
    last_values = history[-1][1] if history else {}
    legend = "".join(
        f'<text x="{plot_w + 8}" y="{14 + 13 * i}" font-size="11" fill="{COLOURS[i % len(COLOURS)]}">'
        f'{html.escape(name)} {last_values.get(name, float("nan")):.3g}</text>' for i, name in enumerate(names))
    return (f'<svg width="{width}" height="{height}" style="background:#fafafa;border:1px solid #ddd">'
            f'{body}{legend}</svg>')


def heat_image(values: np.ndarray, side: int, cmap: str = "inferno", scale: float | None = None) -> Image.Image:
    """A 2-D array as a colour-mapped picture, its long side ``side`` px (nearest: each cell stays a block).
    Scaled to [0, ``scale``] (default: the 99th percentile, so a few extreme pixels don't make the rest dark)."""
    import matplotlib

    values = np.asarray(values, np.float32)
    top = scale if scale is not None else float(np.percentile(values, 99)) if values.size else 1.0
    unit = np.clip(values / (top if top > 0 else 1.0), 0.0, 1.0)
    rgb = (matplotlib.colormaps[cmap](unit)[..., :3] * 255).astype(np.uint8)
    h, w = unit.shape
    k = side / max(h, w)
    return Image.fromarray(rgb).resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.NEAREST)


def gallery(maps: np.ndarray, channels: np.ndarray, side: int = MAP_SIDE, columns: int = 4) -> Image.Image:
    """Activation maps (k, h, w) as a grid of heat maps, each labelled with its channel number (bright = strong;
    each map scaled to its own maximum, so the pattern shows whatever its strength)."""
    tiles = [heat_image(m, side, "magma", float(m.max()) or 1.0) for m in maps]
    tw = max(t.size[0] for t in tiles)
    th = max(t.size[1] for t in tiles)
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * (tw + 4), rows * (th + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, channel) in enumerate(zip(tiles, channels)):
        x, y = (i % columns) * (tw + 4), (i // columns) * (th + 16)
        sheet.paste(tile, (x, y + 14))
        draw.text((x + 1, y + 1), f"channel {int(channel)}", fill=(60, 60, 60))
    return sheet


class InsidePanel(widgets.VBox):
    """The Inside panel of a studio (``studio``: a :class:`~nbart.studio.base.Studio`): a toggle, the layer
    pickers and the views. The studio calls :meth:`attach` as a run begins, :meth:`show` on each live frame and
    :meth:`clear` when the run view is cleared; nothing runs while the toggle is off."""

    def __init__(self, studio: Any):
        self.studio = studio
        self.style = studio.task == "style"
        self.toggle = widgets.ToggleButton(value=False, description="Inside the network", icon="eye",
                                           layout=widgets.Layout(width="auto"))
        set_tooltip(self.toggle, "show what the network sees and why the picture changes (a little slower)")
        self.toggle.add_class("nbart-inside-toggle")
        self.layer = widgets.Dropdown(description="layer", layout=widgets.Layout(width="230px"))
        self.layer.style.description_width = "40px"
        set_tooltip(self.layer, "the layer whose activations are shown")
        self.gram_layer = widgets.Dropdown(description="Gram of", layout=widgets.Layout(width="230px"))
        self.gram_layer.style.description_width = "56px"
        set_tooltip(self.gram_layer, "the style layer whose Gram matrices are compared")
        self.per_layer = widgets.Checkbox(value=False, description="style per layer", indent=False,
                                          layout=widgets.Layout(width="130px"))
        set_tooltip(self.per_layer, "one curve per style layer (dashed) beside the three terms")

        self.curves = widgets.HTML(curves_svg([]))
        self.curves.add_class("nbart-inside-curves")
        self.picture = widgets.Image(format="jpeg", layout=widgets.Layout(width=f"{VIEW_SIDE}px",
                                                                          height=f"{VIEW_SIDE}px",
                                                                          object_fit="contain"))
        self.gradient = widgets.Image(format="png", layout=widgets.Layout(width=f"{VIEW_SIDE}px",
                                                                           height=f"{VIEW_SIDE}px",
                                                                           object_fit="contain"))
        self.gradient.add_class("nbart-inside-gradient")
        self.maps = widgets.Image(format="png")
        self.maps.add_class("nbart-inside-maps")
        self.maps_caption = _caption("")
        self.grams = widgets.Image(format="png")
        self.grams.add_class("nbart-inside-grams")
        self.grams_caption = _caption("")
        self.note = widgets.HTML()

        if self.style:
            curves_caption = ("Each line is one part of the loss (weighted); the optimizer pushes their sum down. "
                              "Log scale: each grid line is 10 times the one below.")
        else:
            curves_caption = ("How strongly each dream layer fires (its mean activation, log scale): the dream "
                              "changes the picture to raise these.")
        column = {"margin": "0 18px 8px 0"}
        losses = widgets.VBox([widgets.HTML("<b>The loss, term by term</b>"), self.curves,
                               _caption(curves_caption, 420)], layout=widgets.Layout(**column))
        where = widgets.VBox([widgets.HTML("<b>Where the picture is being changed</b>"),
                              widgets.HBox([self.picture, self.gradient]), _caption(
            "Left: the picture. Right: where it is being changed now (bright = the pixels this step pushes "
            "hardest: the size of the gradient).", 2 * VIEW_SIDE + 8)], layout=widgets.Layout(**column))
        maps = widgets.VBox([widgets.HTML("<b>What the network sees</b>"), self.maps, self.maps_caption],
                            layout=widgets.Layout(**column))
        lower = [maps] + ([widgets.VBox([widgets.HTML("<b>The style, as the network measures it</b>"), self.grams,
                                         self.grams_caption], layout=widgets.Layout(**column))]
                          if self.style else [])
        row = {"flex_flow": "row wrap", "align_items": "flex-start"}
        self.body = widgets.VBox([widgets.HBox([losses, where], layout=widgets.Layout(**row)),
                                  widgets.HBox(lower, layout=widgets.Layout(**row)), self.note],
                                 layout=widgets.Layout(display="none"))
        pickers = [self.layer] + ([self.gram_layer, self.per_layer] if self.style else [])
        self.pickers = widgets.HBox(pickers, layout=widgets.Layout(display="none", flex_flow="row wrap"))
        super().__init__([widgets.HBox([self.toggle, self.pickers], layout=widgets.Layout(align_items="center")),
                          self.body], layout=widgets.Layout(border="1px solid #e0e0e0", padding="4px",
                                                            margin="6px 0"))
        self.add_class("nbart-inside")
        self._run: Any = None
        self._history: list[tuple[int, dict[str, float]]] = []
        self._fill_layers()
        controls = studio.controls
        for name in ("model", "content_layers", "style_layers", "layers"):
            if name in controls:
                controls[name].observe(lambda _c: self._fill_layers(), names="value")
        self.toggle.observe(self._changed, names="value")
        self.layer.observe(self._changed, names="value")
        self.gram_layer.observe(self._changed, names="value")
        self.per_layer.observe(lambda _c: self._draw_curves(), names="value")

    # ----------------------------------------------------------------------------------------------------------

    def _fill_layers(self) -> None:
        """The pickers' choices for the model in the controls, with the task's defaults selected."""
        controls = self.studio.controls
        weights = controls["weights"].value if "weights" in controls else "auto"
        # the backbone that will run: weights="auto" offline falls back to the VGG16, whose layers the controls list
        try:
            bb = resolve(controls["model"].value, "auto").backbone if weights == "auto" else \
                registry.get(controls["model"].value)
        except Exception:  # noqa: BLE001 (a model or weights the run will report itself)
            return
        # the controls' layers where they belong to bb (a model change reaches this panel before the layer lists)
        if self.style:  # the middle style layer for both: its maps are sharp, and they are what its Gram pairs
            style_layers = tuple(n for n in controls["style_layers"].value if n in bb.layers) or bb.style_layers
            default = style_layers[len(style_layers) // 2]
            keep = self.gram_layer.value if self.gram_layer.value in style_layers else default
            self.gram_layer.options, self.gram_layer.value = style_layers, keep
        else:
            names = [s.partition(":")[0] for s in controls["layers"].value]
            default = ([n for n in names if n in bb.layers] or [s.partition(":")[0] for s in bb.dream_layers])[0]
        keep = self.layer.value if self.layer.value in bb.layers else default
        self.layer.options, self.layer.value = bb.layers, keep

    def _request(self, run: Any) -> None:
        """Ask ``run`` for the inside view (or stop asking), with the pickers' layers where the run has them."""
        if not self.toggle.value:
            run.inside(False)
            return
        bb = run.prepared.backbone
        layer = self.layer.value if self.layer.value in bb.layers else None
        gram = self.gram_layer.value if self.style and self.gram_layer.value in run.prepared.style_layers else None
        run.inside(layer=layer, gram_layer=gram)

    def _changed(self, _change: Any = None) -> None:
        on = self.toggle.value
        self.body.layout.display = None if on else "none"
        self.pickers.layout.display = None if on else "none"
        run = self.studio.active_run
        if run is not None and run.prepared is not None:
            self._request(run)  # from the next step on

    # ----------------------------------------------------------------------------------------------------------
    # what the studio calls (any thread: these only set widget values)

    def attach(self, run: Any) -> None:
        """A run begins: ask it for the inside view if the toggle is on; forget the last run's curves."""
        self._run, self._history = run, []
        if run.prepared is not None:
            self._request(run)

    def clear(self) -> None:
        self._history = []
        self.curves.value = curves_svg([])
        self.note.value = ""

    def record(self, event: Any) -> None:
        """Every step: keep the curves' values (the view's floats only, not its tensors)."""
        inside = event.inside
        if inside is None:
            return
        if self.style:
            values = dict(inside.terms)
            values.update({f"style · {k}": v for k, v in inside.style_layers.items()})
        else:
            values = dict(inside.gains)
        self._history.append((event.step, values))

    def show(self, event: Any, jpeg: bytes) -> None:
        """A live frame: draw the views of ``event``'s inside view (none while it has none)."""
        inside = event.inside
        if inside is None or not self.toggle.value:
            return
        self._draw_curves()
        self.picture.value = jpeg
        self.gradient.value = encode(heat_image(inside.gradient_map(VIEW_SIDE), VIEW_SIDE), "png")
        if inside.maps is not None:
            maps, channels, _ = inside.activation_maps()
            sheet = gallery(maps, channels)
            _show_png(self.maps, sheet)
            self.maps_caption.value = _caption_html(
                f"What layer {inside.layer} sees in the picture now: its {len(channels)} most active channels, "
                f"each a map of where it fires (bright = strong).", max(300, sheet.size[0]))
        else:
            self.maps_caption.value = _caption_html(inside.note or "", 300)
        if inside.grams is not None:
            picture, style, channels = inside.gram_pair()
            # square roots on one shared scale topped at the 97th percentile: the weaker pairs stay visible
            picture, style = np.sqrt(np.abs(picture)), np.sqrt(np.abs(style))
            top = float(np.percentile(np.concatenate([style.ravel(), picture.ravel()]), 97))
            pair = [heat_image(picture, GRAM_SIDE, "viridis", top), heat_image(style, GRAM_SIDE, "viridis", top)]
            sheet = Image.new("RGB", (2 * GRAM_SIDE + 12, GRAM_SIDE + 16), "white")
            draw = ImageDraw.Draw(sheet)
            for i, (img, label) in enumerate(zip(pair, ("picture", "style"))):
                sheet.paste(img, (i * (GRAM_SIDE + 12), 16))
                draw.text((i * (GRAM_SIDE + 12) + 2, 2), label, fill=(60, 60, 60))
            _show_png(self.grams, sheet)
            self.grams_caption.value = _caption_html(
                f"Which channels of {inside.gram_layer} fire together (its Gram matrix, on the style's "
                f"{len(channels)} strongest channels): the optimizer makes the picture's (left) look like the "
                f"style's (right).", sheet.size[0])

    def _draw_curves(self) -> None:
        history = self._history
        if self.style and not self.per_layer.value:
            history = [(s, {k: v for k, v in values.items() if "·" not in k}) for s, values in history]
        self.curves.value = curves_svg(history)
