"""Where a studio's input images come from: a bundled sample, a URL or file path, an upload, or an image given in code.

A :class:`SourcePicker` is read on the kernel's main thread into a :class:`Source` (a snapshot: what to load and how
to write it in code); the images themselves are loaded later, in the run's worker, so a slow URL never blocks the
kernel.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
from PIL import Image

from nbart.images import ImageError, encode, load_image, sample_names
from nbart.studio.compat import in_colab, set_tooltip, uploaded_files

__all__ = ["Source", "SourcePicker", "names_in_caller", "naming_uploads"]

THUMB_SIZE = 72  # px, the long side of a source's thumbnail
TITLE_WIDTH = "64px"  # the picker's name ("Content", bold) beside its four choices, in the panel's 420 px column
MIN_INPUT_WIDTH = 200  # px: a sample list or URL box narrower than this puts the thumbnails under it


def _filling() -> widgets.Layout:
    """An input that fills what its row leaves (and may shrink below its content's width)."""
    return widgets.Layout(flex="1 1 auto", width="auto", min_width="0")


@dataclass(frozen=True)
class Source:
    """A snapshot of a picker: ``items`` are what :func:`nbart.load_image` reads; ``code`` is how a script names them
    (None: an image given in code that has no name in the notebook); ``note`` explains a name that only exists in the
    studio (an upload, an image given in code). ``kind`` is the picker's choice (``sample``, ``url``, ``upload``,
    ``given``); ``names`` the uploaded files' names, one per item; ``multiple``: a list is written for one item too
    only where the picker takes several."""

    items: tuple
    code: str | None
    note: str | None = None
    kind: str = ""
    names: tuple[str, ...] = ()
    multiple: bool = False

    def load(self, max_size: int | None = None) -> list[Image.Image]:
        """The images, read (raises :class:`~nbart.images.ImageError` with a one-line reason)."""
        return [load_image(item, max_size=max_size) for item in self.items]

    def describe(self) -> list[str]:
        """JSON-friendly names of the items, for a saved image's metadata (an upload by its file's name)."""
        if self.names:
            return list(self.names)
        return [item if isinstance(item, str) else f"<{type(item).__name__}>" for item in self.items]

    def name_error(self, error: ImageError) -> ImageError:
        """``error`` with "the image data" replaced by the uploaded file's name where one of the uploads is what
        fails to load (the engine reads the upload's bytes and knows no name); otherwise ``error`` itself."""
        text = str(error)
        if not self.names or "the image data" not in text:
            return error
        for name, item in zip(self.names, self.items):
            try:
                load_image(item, max_size=64)
            except ImageError:
                return ImageError(text.replace("the image data", name, 1))
        return error


def _pretty(name: str) -> str:
    return name.replace("_", " ").title()


class SourcePicker(widgets.VBox):
    """A labelled row choosing one image (or several, with ``multiple``) and thumbnails of what is chosen.

    ``value`` may be ``"sample:NAME"``, a URL or path, or an image object (PIL, array, bytes) given in code; a list
    of those when ``multiple``.
    """

    def __init__(self, label: str, value: Any = None, multiple: bool = False, default_sample: str = "grace_hopper",
                 given_code: str | None = None):
        self.multiple = multiple
        self._given: tuple = ()
        self._given_code = given_code  # how the notebook names an image given in code (None: no name found)
        self._uploads: list[tuple[str, bytes, int]] = []
        self._listeners: list[Callable[[], None]] = []
        samples = [(_pretty(n), n) for n in sample_names()]
        kinds = [("Sample", "sample"), ("URL / file", "url"), ("Upload", "upload")]
        values = list(value) if multiple and isinstance(value, (list, tuple)) else [] if value is None else [value]
        if values and not all(isinstance(v, str) for v in values):
            self._given = tuple(values)
            kinds.append(("Your image", "given"))

        # each button as wide as its label ("Your image" was cut in a fixed 86 px and the row wrapped)
        self.kind = widgets.ToggleButtons(options=kinds, style={"button_width": "auto"})
        self.kind.add_class("nbart-source-kind")
        # the inputs take the row's width that the thumbnails leave (a width of 100% pushed them out of the panel)
        if multiple:
            self.sample = widgets.SelectMultiple(options=samples, rows=len(samples), layout=_filling())
        else:
            self.sample = widgets.Dropdown(options=samples, layout=_filling())
        self.url = widgets.Text(placeholder="https://... or a file path" + (", several separated by commas"
                                                                        if multiple else ""),
                                layout=_filling())
        self.upload = widgets.FileUpload(accept="image/*", multiple=multiple, description="Choose file")
        set_tooltip(self.upload, "an image from your computer (on Colab: under 1 MB, or use the Colab button)")
        self.colab_upload = widgets.Button(description="Upload (Colab)", icon="upload",
                                           tooltip="Colab's own upload dialog, for files of 1 MB or more")
        self.colab_upload.on_click(self.upload_with_colab)
        self._colab_out = widgets.Output()
        self.given = widgets.HTML("the image passed in code")
        # created once, here on the main thread; showing thumbnails later only sets their values
        self._thumb_widgets = [widgets.Image(format="png", layout=widgets.Layout(
            max_height=f"{THUMB_SIZE}px", margin="0 4px 0 0", display="none")) for _ in range(4)]
        # the thumbnails keep their size; where they don't fit beside the inputs they go under them (wrap)
        self.thumbs = widgets.HBox(self._thumb_widgets, layout=widgets.Layout(
            min_height=f"{THUMB_SIZE}px", flex="0 0 auto", flex_flow="row wrap"))
        self.thumbs.add_class("nbart-source-thumbs")
        self.inputs = widgets.Box(layout=widgets.Layout(flex=f"1 1 {MIN_INPUT_WIDTH}px", min_width="0"))

        sample_values = [v[len("sample:"):] for v in values if isinstance(v, str) and v.startswith("sample:")]
        if self._given:
            self.kind.value = "given"
        elif values and len(sample_values) == len(values) and all(v in sample_names() for v in sample_values):
            self.sample.value = tuple(sample_values) if multiple else sample_values[0]
        elif values:
            self.kind.value, self.url.value = "url", ", ".join(values)
        elif multiple:
            self.sample.value = (default_sample,)
        else:
            self.sample.value = default_sample

        title = widgets.HTML(f"<b>{label}</b>", layout=widgets.Layout(width=TITLE_WIDTH, flex="0 0 auto"))
        super().__init__([widgets.HBox([title, self.kind]),
                          widgets.HBox([self.inputs, self.thumbs], layout=widgets.Layout(flex_flow="row wrap"))])
        self.add_class("nbart-source")
        for w, trait in ((self.kind, "value"), (self.sample, "value"), (self.upload, "value"), (self.url, "value")):
            w.observe(self._changed, names=trait)
        self._layout_inputs()
        self._refresh_thumbs()

    # ----------------------------------------------------------------------------------------------------------

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the choice changes."""
        self._listeners.append(callback)

    def _changed(self, change: dict) -> None:
        if change["owner"] is self.upload:
            self._uploads = uploaded_files(self.upload)
        if change["owner"] is self.kind:
            self._layout_inputs()
        if change["owner"] is not self.url:  # a URL is fetched at run time, not on every key press
            self._refresh_thumbs()
        for callback in self._listeners:
            callback()

    def _layout_inputs(self) -> None:
        kind = self.kind.value
        if kind == "sample":
            children = [self.sample]
        elif kind == "url":
            children = [self.url]
        elif kind == "upload":
            children = [self.upload] + ([self.colab_upload, self._colab_out] if in_colab() else [])
        else:
            children = [self.given]
        self.inputs.children = children

    def upload_with_colab(self, _button: Any = None) -> None:
        """Colab's own upload dialog (``google.colab.files.upload``), which takes files widget uploads drop."""
        from google.colab import files  # only offered on Colab

        with self._colab_out:
            chosen = files.upload()
        self._uploads = [(name, bytes(data), len(data)) for name, data in chosen.items()]
        self._refresh_thumbs()
        for callback in self._listeners:
            callback()

    # ----------------------------------------------------------------------------------------------------------

    def source(self) -> Source:
        """What is chosen now, as a :class:`Source`; :class:`~nbart.images.ImageError` if nothing usable is."""
        kind = self.kind.value
        if kind == "sample":
            names = self.sample.value if self.multiple else (self.sample.value,)
            if not names:
                raise ImageError("choose at least one sample image")
            items = tuple(f"sample:{n}" for n in names)
            return Source(items, self._code(items), kind="sample", multiple=self.multiple)
        if kind == "url":
            items = tuple(v.strip() for v in (self.url.value.split(",") if self.multiple else [self.url.value]))
            items = tuple(v for v in items if v)
            if not items:
                raise ImageError("type the address of an image (https://...) or the path of an image file")
            return Source(items, self._code(items), kind="url", multiple=self.multiple)
        if kind == "upload":
            if not self._uploads:
                raise ImageError("choose a file to upload first")
            for name, content, size in self._uploads:
                if not content:
                    raise ImageError(
                        f"the upload of {name} arrived empty ({size:,} bytes were sent)"
                        + ("; Colab drops widget uploads of 1 MB or more: use the 'Upload (Colab)' button"
                           if in_colab() else "")
                    )
            names = tuple(name for name, _, _ in self._uploads)
            return Source(tuple(content for _, content, _ in self._uploads), self._code(names),
                          f"the file{'s' if len(names) > 1 else ''} you uploaded, saved beside the notebook",
                          kind="upload", names=names, multiple=self.multiple)
        return Source(self._given, self._given_code, "the image you passed to the studio", kind="given",
                      multiple=self.multiple)

    def _code(self, items: tuple) -> str:
        return repr(list(items)) if self.multiple and len(items) > 1 else repr(items[0])

    def _refresh_thumbs(self) -> None:
        try:
            images = self.source().load(max_size=4 * THUMB_SIZE) if self.kind.value != "url" else []
        except ImageError:
            images = []
        self.show_thumbnails(images)

    def show_thumbnails(self, images: list[Image.Image]) -> None:
        """Show small copies of ``images`` beside the picker (safe from the run's worker: it only sets values)."""
        for i, w in enumerate(self._thumb_widgets):
            if i < len(images):
                w.value = encode(images[i], "png", THUMB_SIZE)
                w.layout.display = None
            else:
                w.layout.display = "none"


def naming_uploads(sources: dict[str, Any], make_run: Callable[[], Any]) -> Callable[[], Any]:
    """``make_run`` whose image errors name the uploaded file that failed ("holiday.csv is not an image file")
    instead of the engine's "the image data"."""
    def make() -> Any:
        try:
            return make_run()
        except ImageError as e:
            for source in sources.values():
                named = source.name_error(e)
                if named is not e:
                    raise named from None
            raise
    return make


def names_in_caller(given: dict[str, Any]) -> dict[str, str]:
    """How the notebook names each image given in code (``DreamStudio(photo)`` -> ``"photo"``): a variable of the
    first frame outside nbart bound to that very object (a list of images: the list's name, or its items'), so
    Show code can call it by that name."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "nbart":
        frame = frame.f_back
    if frame is None:
        return {}
    scopes = [frame.f_locals, frame.f_globals]

    def name_of(obj: Any) -> str | None:
        for scope in scopes:
            for name, value in scope.items():
                if value is obj and not name.startswith("_"):
                    return name
        return None

    names = {}
    for key, value in given.items():
        if value is None or isinstance(value, str):
            continue
        name = name_of(value)
        if name is None and isinstance(value, (list, tuple)):
            parts = [name_of(v) for v in value]
            name = f"[{', '.join(parts)}]" if parts and None not in parts else None
        if name is not None:
            names[key] = name
    return names
