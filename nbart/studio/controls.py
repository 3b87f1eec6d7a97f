"""Controls built from the parameter spec: one widget per field, named as the field.

Sliders come from ``spec.ui``, dropdowns from choices, a multi-select for each layer list (its options follow the
chosen model), a checkbox for booleans and a text box for the rest (tuples as "a, b", an empty seed as "random").
Reading the controls back goes through the params dataclass, so validation and its messages are the engine's own.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from nbart import backbones
from nbart.params import WEIGHT_KEYWORDS, FieldInfo, ParamError, fields_of
from nbart.studio.compat import set_tooltip

__all__ = ["ControlSet", "label_of"]

DESCRIPTION_WIDTH = "134px"  # fits "style layer weights"


def label_of(name: str) -> str:
    """A field name as a person reads it: ``octave_scale`` -> ``octave scale``."""
    return name.replace("_", " ")


def _decimals(step: float) -> int:
    text = f"{step:.10f}".rstrip("0")
    return len(text.partition(".")[2])


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


class ControlSet:
    """The widgets of one params class, and the two-way mapping between them and a params instance.

    ``layer_fields`` maps each layer-list field to the :class:`~nbart.backbones.Backbone` attribute that holds its
    defaults (``{"layers": "dream_layers"}``): an empty tuple in the params means "the model's defaults", which the
    multi-select shows selected.
    """

    def __init__(self, params_cls: type, values: Any, layer_fields: dict[str, str]):
        self.params_cls = params_cls
        self.layer_fields = layer_fields
        self.infos = {info.name: info for info in fields_of(params_cls)}
        self.widgets: dict[str, widgets.Widget] = {}
        for name, info in self.infos.items():
            self.widgets[name] = self._make(info, getattr(values, name))
        if "model" in self.widgets and layer_fields:
            self.widgets["model"].observe(self._model_changed, names="value")
            if "weights" in self.widgets:
                self.widgets["weights"].observe(self._weights_changed, names="value")
        # a layer list is taller than its few rows: a line under it says what is picked
        self.notes = {name: widgets.HTML(layout=widgets.Layout(margin=f"0 0 4px {DESCRIPTION_WIDTH}"))
                      for name in layer_fields}
        for name in layer_fields:
            self.widgets[name].observe(lambda _change, name=name: self._note(name), names="value")
            self._note(name)
        # under the model: which network really runs when weights="auto" falls back (offline: the VGG16)
        self.model_note = widgets.HTML(layout=widgets.Layout(margin=f"0 0 4px {DESCRIPTION_WIDTH}"))
        self._note_model()

    def view(self, name: str) -> widgets.Widget:
        """What the panel shows for a field: its control, and for a layer list the line saying what is picked."""
        if name in self.notes:
            return widgets.VBox([self.widgets[name], self.notes[name]])
        if name == "model" and self.layer_fields:
            return widgets.VBox([self.widgets[name], self.model_note])
        return self.widgets[name]

    def _note_model(self) -> None:
        model = self._model()
        ran = self._backbone(model)
        self.model_note.value = "" if ran.name == model else (
            f'<div style="font-size:12px;line-height:1.35;color:#8a5a00">runs {ran.name} here: no ImageNet '
            f'weights for {model} (offline); the layers below are {ran.name}\'s</div>')

    def _note(self, name: str) -> None:
        picked = self.widgets[name].value
        suffix = " (the model's defaults)" if picked == self._defaults_of(name, self._model()) else ""
        self.notes[name].value = (f'<div style="font-size:12px;line-height:1.35;color:#555">picked: '
                                  f'{", ".join(picked) or "none"}{suffix}</div>')

    # ----------------------------------------------------------------------------------------------------------
    # building

    def _make(self, info: FieldInfo, value: Any) -> widgets.Widget:
        # width auto: the column stretches the control to its own width less the control's 2 px margins (a width
        # of 100% plus those margins overflowed the settings tab, which cut off the controls' right edges)
        common = dict(description=label_of(info.name), style={"description_width": DESCRIPTION_WIDTH},
                      layout=widgets.Layout(width="auto"))
        spec, kind = info.spec, info.kind
        if info.name in self.layer_fields:
            w = widgets.SelectMultiple(rows=6, **common)
            self._fill_layers(w, info.name, value)
        elif info.choices:
            w = widgets.Dropdown(options=list(info.choices), value=value, **common)
        elif kind == "bool":
            w = widgets.Checkbox(value=value, indent=True, **common)
        elif kind in ("int", "float") and spec.ui:
            low, high, step = spec.ui
            low, high = min(low, value), max(high, value)  # a value beyond the slider's usual range widens it
            if kind == "int":
                w = widgets.IntSlider(value=value, min=int(low), max=int(high), step=int(step), **common)
            else:
                w = widgets.FloatSlider(value=value, min=low, max=high, step=step,
                                        readout_format=f".{_decimals(step)}f", **common)
            w.continuous_update = False  # one message when the thumb is let go, not dozens while dragging
        elif kind in ("int", "float"):
            cls = widgets.BoundedIntText if kind == "int" else widgets.BoundedFloatText
            w = cls(value=value, min=spec.low if spec.low is not None else -1e12,
                    max=spec.high if spec.high is not None else 1e12, **common)
        elif info.name == "weights":
            w = widgets.Combobox(value=value, options=list(WEIGHT_KEYWORDS), ensure_option=False, **common)
        else:
            placeholder = "random" if kind == "optional_int" else "default" if info.default == () else ""
            w = widgets.Text(value=_as_text(value), placeholder=placeholder, **common)
        set_tooltip(w, spec.help)
        w.add_class(f"nbart-param-{info.name}")
        return w

    def _backbone(self, model: str, weights: str | None = None) -> Any:
        """The backbone that a run of ``model`` really uses with the chosen weights: ``auto`` is resolved (offline
        it falls back to the VGG16), so the layer lists offer layers that will run."""
        if weights is None:
            weights = self.widgets["weights"].value if "weights" in self.widgets else "auto"
        if weights == "auto":
            try:
                return backbones.resolve(model, weights).backbone
            except Exception:  # noqa: BLE001 (the run itself reports a weights problem; the list keeps the model's)
                pass
        return backbones.get(model)

    def _defaults_of(self, field: str, model: str) -> tuple[str, ...]:
        return tuple(getattr(self._backbone(model), self.layer_fields[field]))

    def _model(self) -> str:
        return self.widgets["model"].value if "model" in self.widgets else self.infos["model"].default

    def _fill_layers(self, w: widgets.SelectMultiple, field: str, value: tuple[str, ...], model: str | None = None):
        """Offer the layers of ``model`` (plus any 'layer:channel' picks) and select ``value`` or the defaults."""
        model = model or self._model()
        layers = self._backbone(model).layers
        extra = tuple(v for v in value if v not in layers)
        w.options = layers + extra
        w.value = tuple(value) or self._defaults_of(field, model)

    def _model_changed(self, change: dict) -> None:
        self._relist(self._backbone(change["old"]), change["new"])

    def _weights_changed(self, change: dict) -> None:
        if change["old"] == "auto" or change["new"] == "auto":  # the network that runs may change with them
            model = self._model()
            self._relist(self._backbone(model, change["old"]), model)

    def _relist(self, before: Any, model: str) -> None:
        """Refill the layer lists for ``model`` after the network that runs was ``before``; its defaults become the
        new network's defaults, picks that exist in both are kept."""
        after = self._backbone(model)
        for field in self.layer_fields:
            w = self.widgets[field]
            kept = tuple(v for v in w.value if v.partition(":")[0] in after.layers)
            if set(w.value) == set(getattr(before, self.layer_fields[field])):
                kept = ()
            self._fill_layers(w, field, kept, model)
        self._note_model()

    # ----------------------------------------------------------------------------------------------------------
    # values

    def _read(self, name: str) -> Any:
        info, w = self.infos[name], self.widgets[name]
        value = w.value
        if name in self.layer_fields:
            value = tuple(value)
            return () if value == self._defaults_of(name, self._model()) else value
        if info.kind == "optional_int":
            text = value.strip()
            if not text:
                return None
            try:
                return int(text)
            except ValueError:
                raise ParamError(f"{name} must be a whole number or empty for random (got {text!r})") from None
        return value

    def params(self) -> Any:
        """The params instance the controls show; :class:`~nbart.params.ParamError` names a bad value."""
        return self.params_cls.from_kwargs(**{name: self._read(name) for name in self.widgets})

    def show(self, params: Any) -> None:
        """Set every control to ``params`` (model first, so the layer lists follow it)."""
        for name, w in self.widgets.items():
            value = getattr(params, name)
            if name in self.layer_fields:
                self._fill_layers(w, name, value, params.model)
            elif isinstance(w, widgets.Text):  # also the weights Combobox, whose value is a plain string
                w.value = _as_text(value)
            elif isinstance(w, (widgets.IntSlider, widgets.FloatSlider)):
                w.min, w.max = min(w.min, value), max(w.max, value)
                w.value = value
            else:
                w.value = value
        if self.layer_fields:
            self._note_model()
