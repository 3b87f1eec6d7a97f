"""The studios' Compare tab: one or two parameters and their values, every combination rendered small
(:func:`nbart.sweep_run`), thumbnails that fill in live; a click restores that result and its settings in the panel
(it joins the history, so Continue, Save and Show code work on it as on any run).

Widgets are made on the main thread when the tab is built; the worker only sets their values (DESIGN.md §4).
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as widgets

from nbart.errors import ParamError, error_message
from nbart.params import fields_of
from nbart.studio.compat import set_tooltip
from nbart.studio.explore import Background, Thumbs
from nbart.studio.history import Result

__all__ = ["CompareTab", "MAX_SLOTS"]

MAX_SLOTS = 16  # combinations the tab shows (a 4x4 sheet); nbart.sweep takes up to 36
NONE = "(none)"
KINDS = ("int", "float", "bool", "choice", "optional_int")  # parameters whose values read well in a box
FIRST = {"dream": ("step_size", "0.01, 0.02, 0.04"), "style": ("style_weight", "10, 30, 100")}


class CompareTab(widgets.VBox):
    """Compare settings: parameter 1 and its values, optionally parameter 2 and its values, a size (px, default
    128), Compare. The other settings are the panel's (its seed, or 0 where it is random, so the pictures differ by
    the compared values only).

    For tests: ``start(block=None)``, ``stop()``, ``wait(timeout)``, ``sweep``, ``entries``, ``pick(index)``.
    """

    def __init__(self, studio: Any):
        self.studio = studio
        self.sweep: Any = None
        self.entries: list[Result | None] = []
        names = [i.name for i in fields_of(studio.params_cls)
                 if (i.kind in KINDS or i.choices or i.name in studio.layer_fields) and i.name != "force"]
        first, example = FIRST.get(studio.task, (names[0], ""))
        width = widgets.Layout(width="200px")
        self.first = widgets.Dropdown(options=names, value=first, description="compare", layout=width)
        # the values box takes what the row has left (a fixed width was cut off by the 384 px tab)
        fill = dict(flex="1 1 0%", width="auto", min_width="0")
        self.first_values = widgets.Text(value=example, placeholder="values, comma-separated",
                                         layout=widgets.Layout(**fill))
        self.second = widgets.Dropdown(options=[NONE, *names], value=NONE, description="and", layout=width)
        self.second_values = widgets.Text(placeholder="values, comma-separated", layout=widgets.Layout(**fill))
        for box in (self.first_values, self.second_values):
            set_tooltip(box, "values separated by commas; a list of layers joins them with '+' (mixed3+mixed5)")
        self.size = widgets.BoundedIntText(value=128, min=32, max=1024, description="size (px)",
                                           layout=widgets.Layout(width="160px"))
        self.first_values.add_class("nbart-compare-values")
        self.second.add_class("nbart-compare-second")
        self.second_values.add_class("nbart-compare-second-values")
        self.go = widgets.Button(description="Compare", icon="th", button_style="info",
                                 layout=widgets.Layout(width="auto"))
        self.go.add_class("nbart-compare-run")
        set_tooltip(self.go, "render every combination small; click a thumbnail to bring it and its settings back")
        self.halt = widgets.Button(description="Stop", icon="stop", disabled=True, layout=widgets.Layout(width="auto"))
        self.halt.add_class("nbart-compare-stop")
        self.status = widgets.HTML()
        self.status.add_class("nbart-compare-status")
        self.thumbs = Thumbs(MAX_SLOTS, self.pick, "nbart-compare-pick")
        self.worker = Background(f"nbart-{studio.task}-compare", studio.mode == "foreground", self._failed)
        self.go.on_click(lambda _b: self.start())
        self.halt.on_click(lambda _b: self.stop())
        super().__init__([widgets.HBox([self.first, self.first_values]),
                          widgets.HBox([self.second, self.second_values]),
                          widgets.HBox([self.size, self.go, self.halt]), self.status, self.thumbs])
        self.add_class("nbart-compare")

    def _say(self, text: str, color: str = "#555") -> None:
        self.status.value = f"<div style='font-size:12px;color:{color}'>{html.escape(text)}</div>"

    def _failed(self, error: BaseException) -> None:
        self._say(error_message(error), "#b00020")
        self._busy(False)

    def _busy(self, busy: bool) -> None:
        self.go.disabled, self.halt.disabled = busy, not busy

    def _over(self) -> dict[str, list]:
        from nbart.sweeps import values_from_text

        over = {self.first.value: values_from_text(self.studio.task, self.first.value, self.first_values.value)}
        if self.second.value != NONE:
            if self.second.value in over:
                raise ParamError(f"compare two different parameters (got {self.second.value} twice)")
            over[self.second.value] = values_from_text(self.studio.task, self.second.value, self.second_values.value)
        count = 1
        for values in over.values():
            count *= len(values)
        if count > MAX_SLOTS:
            raise ParamError(f"the studio compares at most {MAX_SLOTS} combinations (got {count}); use "
                             f"nbart.sweep for up to 36")
        return over

    def start(self, block: bool | None = None) -> bool:
        """Render every combination with the panel's other settings; False if one is running or a value is bad
        (the tab says why)."""
        from nbart.sweeps import sweep_run

        if self.worker.busy:
            return False
        studio = self.studio
        try:
            over = self._over()
            base = studio.params()
            fixed = {i.name: getattr(base, i.name) for i in fields_of(base) if i.name not in over}
            if fixed.get("seed", 0) is None:
                del fixed["seed"]  # the sweep's seed 0: the pictures differ by the compared values only
            size = None if "max_size" in over else self.size.value
            fixed.pop("max_size", None)
            sources = {name: p.source() for name, p in studio.pickers.items()}
            inputs = [item for s in sources.values() for item in (s.items if s.multiple else s.items[:1])]
            self.sweep = sweep_run(studio.task, *inputs, over=over, size=size, **fixed)
        except Exception as e:  # noqa: BLE001 (shown in words)
            self._failed(e)
            return False
        sw = self.sweep
        labels = [", ".join(f"{k}={_text(v)}" for k, v in c.items()) for c in sw.combinations]
        self.entries = [None] * len(labels)
        self.thumbs.show_labels(labels)
        self._busy(True)
        self._say(f"rendering {len(labels)} combinations at {size or 'each max_size'} px…")

        def work(_stop: threading.Event) -> None:
            try:
                for i, r in enumerate(sw):
                    params = base.replace(**r.values, max_size=r.params["max_size"], seed=r.params["seed"])
                    self.entries[i] = Result(r.image, params, sources, r.steps_done, r.total, r.seconds, r.outcome,
                                             ran=studio.params_cls.from_kwargs(**r.params), metadata=r.metadata)
                    self.thumbs.fill(i, r.image, labels[i], f"{labels[i]}: {r.outcome}; click to restore it")
                    self._say(f"{len(sw.results)}/{len(labels)} done")
                done = len(sw.results)
                self._say(f"{done}/{len(labels)} done; click a thumbnail to restore it and its settings"
                          if done == len(labels) else f"stopped: {done}/{len(labels)} done")
            finally:
                self._busy(False)

        return self.worker.start(work, block)

    def stop(self) -> None:
        self.worker.stop()
        if self.sweep is not None:
            self.sweep.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)

    def pick(self, index: int) -> None:
        """Restore combination ``index``: its picture and settings in the panel (it joins the history)."""
        entry = self.entries[index]
        if entry is None or self.studio.running:
            return
        if not any(e is entry for e in self.studio.history):
            self.studio.history.append(entry)
            self.studio.history_strip.show(self.studio.history)
        self.studio.restore(next(i for i, e in enumerate(self.studio.history) if e is entry))


def _text(value: Any) -> str:
    from nbart.sweeps import value_text

    return value_text(value)
