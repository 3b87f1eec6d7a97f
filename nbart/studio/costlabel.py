"""The cost of a run before it starts, next to Run: "about 40 s, 1.1 GB", updated as the settings change.

:class:`CostLabel` asks :func:`nbart.cost.estimate` (uncalibrated: it never runs the timing probe itself) once the
controls have been still for :data:`DELAY` seconds, in a background thread (:class:`~nbart.studio.driver.Debounced`),
so dragging a slider makes one estimate. Cheap by design: the images are read once per source (at the largest size
the settings can use, bigger only when a larger size is asked) and kept; the backbone's layer table and this
machine's rate come from :mod:`nbart.cost`'s caches, so an estimate builds no model and runs nothing in TensorFlow
after the first. A URL is not fetched for an estimate (the run reads it). The time appears once this machine's rate
is known (:func:`nbart.cost.calibration`: the studio's warm-up measures it once per machine and backbone); until then
only the memory. A run that the engine would refuse as too big is said so here already, in the refusal's terms.
"""

from __future__ import annotations

import html
import sys
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from nbart import cost, resources
from nbart.errors import ImageError, ParamError, WeightsError
from nbart.images import load_image
from nbart.precision import resolve_precision
from nbart.studio.driver import Debounced
from nbart.weights import resolve

__all__ = ["CostLabel", "DELAY"]

DELAY = 0.3  # s: the controls still this long before an estimate
LOAD_AT_LEAST = 1024  # px: the long side an input is read at for estimates, at the least (re-read only beyond it)


def _is_url(item: Any) -> bool:
    return isinstance(item, str) and item.lower().startswith(("http://", "https://"))


class CostLabel:
    """Keeps ``widget`` (an HTML widget the panel made) showing the estimate of a ``task`` run with what ``read()``
    returns now: ``(params, sources)`` (the controls' params and the pickers' :class:`~nbart.studio.sources.Source`
    snapshots, in the task's argument order), read on the caller's thread. ``foreground`` (Colab): estimate at once
    in the caller's thread (a thread's widget updates are dropped there)."""

    def __init__(self, widget: widgets.HTML, task: str, read: Callable[[], tuple[Any, list[Any]]],
                 foreground: bool = False):
        self.widget, self.task, self._read = widget, task, read
        self.estimate: cost.Estimate | None = None  # the last estimate shown (None: none could be made)
        self._images: dict[Any, tuple[Any, int, Any]] = {}  # source item key -> (item, long side read at, image)
        self._lock = threading.Lock()
        self.debounced = Debounced(self._work, DELAY, "nbart-estimate", foreground=foreground)

    def share_images(self, other: CostLabel) -> None:
        """Read images through ``other``'s cache (and its lock): a second label on the same sources reads nothing
        again."""
        self._images, self._lock = other._images, other._lock

    def request(self, _change: Any = None) -> None:
        """Estimate again with the settings shown now (an ipywidgets ``observe`` callback as it is)."""
        try:
            request = self._read()
        except (ParamError, ImageError):  # a bad value: Run will say which; no estimate of it
            self._show(None, "")
            return
        self.debounced.request(request)

    def calibrate(self, params: Any, cancel: Callable[[], bool] | None = None) -> None:
        """Measure this machine's rate for ``params``' backbone and precision if it isn't known or was measured under
        a heavier load (:func:`nbart.cost.calibration`: 2-5 s, then cached on disk), and estimate again if it
        changed. For a background thread (the studio's warm-up). ``cancel`` stops the probe (nothing measured) once
        it returns True: a run has started."""
        backbone = resolve(params.model, params.weights).backbone.name
        precision = resolve_precision(params.precision)
        before = cost.calibration(backbone, precision, run_probe=False)
        after = cost.calibration(backbone, precision, cancel=cancel)
        if after is not None and after is not before:
            self.request()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the estimate asked for last is shown (at most ``timeout`` seconds); True if so."""
        return self.debounced.wait(timeout)

    # ----------------------------------------------------------------------------------------------------------

    def _work(self, request: tuple[Any, list[Any]]) -> None:
        params, sources = request
        if self.debounced.foreground and "tensorflow" not in sys.modules:
            return  # Colab: an estimate runs in the kernel's thread; the warm-up imports TensorFlow (seconds) first
        try:
            need = self._need(params)
            inputs = []
            for source in sources:
                if any(_is_url(item) for item in source.items):
                    self._show(None, "estimate when the URL is read (on Run)")
                    return
                loaded = [self._image(item, need) for item in source.items]
                inputs.append(loaded if source.multiple and len(loaded) > 1 else loaded[0])
            if self.debounced.pending():
                return  # the settings changed meanwhile: the next call shows theirs
            est = cost.estimate(self.task, *inputs, probe_now=False, params=params)
        except (ParamError, ImageError, WeightsError):  # the run will say it in words
            self._show(None, "")
            return
        self._show(est, self._text(est, params))

    @staticmethod
    def _need(params: Any) -> int:
        """The largest long side (px) a run of ``params`` reads an input at."""
        sizes = tuple(getattr(params, "sizes", ()) or ())
        scale = max(1.0, float(getattr(params, "style_scale", 1.0)))
        return round(max((params.max_size, *sizes)) * scale)

    def _image(self, item: Any, need: int) -> Any:
        """``item`` read at a long side of at least ``need`` px (or whole), from the cache when it was read so."""
        key = item if isinstance(item, str) else id(item)
        with self._lock:
            cached = self._images.get(key)
        if cached is not None and (cached[0] is item or isinstance(item, str)):
            _, read_at, image = cached
            if read_at >= need or max(image.size) < read_at:  # read large enough, or whole
                return image
        read_at = max(LOAD_AT_LEAST, need)
        image = load_image(item, max_size=read_at)
        with self._lock:
            self._images[key] = (item, read_at, image)  # the item kept: its id can't be reused meanwhile
        return image

    def _text(self, est: cost.Estimate, params: Any) -> str:
        gb = f"{est.peak_bytes / 1e9:.1f} GB"
        text = est.short() if est.calibrated else f"about {gb}"
        limit = None if getattr(params, "force", False) else resources.memory_limit()
        if limit is not None and est.increment_bytes > limit.bytes:
            return (f"{text}; won't fit: this process may use {limit.bytes / 1e9:.1f} GB ({limit.source}), "
                    f"Run names a size that does")
        return text

    def _show(self, est: cost.Estimate | None, text: str) -> None:
        self.estimate = est
        warn = "won't fit" in text
        color = "#b00020" if warn else "#555"
        tip = ("expected time and peak memory of a run with these settings on this machine (nbart.estimate)"
               if est is not None else "")
        self.widget.value = (f"<span class='nbart-estimate-text' title='{html.escape(tip)}' style='font-size:12px;"
                             f"color:{color};font-variant-numeric:tabular-nums'>{html.escape(text)}</span>")
