"""The few places where ipywidgets 7.7 (Google Colab's) and ipywidgets 8 differ, and where Colab differs."""

from __future__ import annotations

import sys
from typing import Any

import ipywidgets as widgets

IPYWIDGETS_7 = widgets.__version__.startswith("7.")


def in_colab() -> bool:
    """Whether this kernel runs on Google Colab (whose front-end drops widget updates sent from threads)."""
    return "google.colab" in sys.modules


def set_tooltip(widget: Any, text: str) -> None:
    """Hover text on a control: ``description_tooltip`` in ipywidgets 7, ``tooltip`` in 8 (7's name is deprecated)."""
    if IPYWIDGETS_7 and not isinstance(widget, widgets.Button):
        widget.description_tooltip = text
    else:
        widget.tooltip = text


def set_titles(container: Any, titles: list[str]) -> None:
    """Titles of a Tab or Accordion's pages (``set_title`` exists in both versions; ``titles`` only in 8)."""
    for i, title in enumerate(titles):
        container.set_title(i, title)


def uploaded_files(upload: Any) -> list[tuple[str, bytes, int]]:
    """The files in a FileUpload as (name, content, declared size in bytes).

    ipywidgets 7 keeps ``{name: {"metadata": {...}, "content": bytes}}``; ipywidgets 8 a tuple of dicts with
    ``name``, ``size`` and ``content`` (a memoryview).
    """
    value = upload.value
    if isinstance(value, dict):
        return [(name, bytes(item["content"]), int(item.get("metadata", {}).get("size", len(item["content"]))))
                for name, item in value.items()]
    return [(item["name"], bytes(item["content"]), int(item.get("size", len(item["content"])))) for item in value]

