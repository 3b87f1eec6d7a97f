"""The studios: ipywidgets panels over the engine, with a live preview. The only package that imports ipywidgets."""

from nbart.studio.base import Result, Studio
from nbart.studio.dream import DreamStudio
from nbart.studio.style import StyleStudio

__all__ = ["DreamStudio", "StyleStudio", "Studio", "Result"]
