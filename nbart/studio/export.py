"""What leaves a studio: the code that makes its picture, the PNG with its settings inside, the run as a GIF, and
the files offered for download.

Files are written atomically by :mod:`nbart.images`; the download is Colab's own where the kernel runs on Colab, and
elsewhere an HTML link holding the file as base64 data (it works in every front-end, with no server route).
"""

from __future__ import annotations

import base64
import html
import io
import os
from typing import Any

from PIL import Image

from nbart.images import save_gif, save_image
from nbart.params import to_code
from nbart.studio.compat import in_colab
from nbart.studio.history import Result
from nbart.studio.sources import Source

__all__ = ["code_text", "metadata", "free_name", "save_result", "download_links", "offer"]


def code_text(function: str, params: Any, sources: list[Source]) -> str:
    """The Python code that makes the picture: ``function`` ("nbart.dream") called with ``sources`` as its image
    arguments and every parameter that differs from the default, a comment for an input only the studio knows."""
    call = to_code(function, params, *(s.code for s in sources))
    lines = ["import nbart", ""]
    lines += [f"# {s.code}: {s.note}" for s in sources if s.note]
    if params.seed is None:
        lines.append("# seed=None: every run differs; restore a result from the history to get its seed")
    lines += [f"result = {call}", "result"]
    return "\n".join(lines)


def metadata(task: str, entry: Result) -> dict[str, Any]:
    """What a saved PNG records of ``entry`` (JSON-friendly): the task (``entry.task`` where it names its own), its
    parameters (with the concrete seed the run used), the steps done and the inputs by name.
    :func:`nbart.images.read_params` reads it back."""
    return {"task": entry.task or task, "params": entry.params.to_dict(), "steps_done": entry.steps_done,
            "inputs": [item for s in entry.sources.values() for item in s.describe()]}


def free_name(task: str, folder: str = ".") -> str:
    """The first ``TASK-NNN.png`` (from 001) not taken in ``folder``."""
    n = 1
    while os.path.exists(os.path.join(folder, f"{task}-{n:03d}.png")):
        n += 1
    return f"{task}-{n:03d}.png"


def save_result(entry: Result, task: str, path: str, gif: bool) -> list[str]:
    """Write ``entry``'s picture to ``path`` (``.png`` added if missing) with :func:`metadata` inside, and with
    ``gif`` the run's frames (the final picture last) beside it as ``.gif``; returns the paths written."""
    if not path.lower().endswith(".png"):
        path += ".png"
    save_image(entry.image, path, metadata(task, entry))
    written = [path]
    if gif:
        frames = [Image.open(io.BytesIO(f)) for f in entry.frames] or [entry.image]
        gif_path = path[:-4] + ".gif"
        save_gif(frames + [entry.image.resize(frames[-1].size)], gif_path)
        written.append(gif_path)
    return written


def download_links(paths: list[str]) -> str:
    """HTML links that download ``paths`` (PNG or GIF) from data carried in the page itself."""
    links = []
    for path in paths:
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        kind = "image/gif" if path.endswith(".gif") else "image/png"
        name = html.escape(os.path.basename(path))
        links.append(f"<a download='{name}' href='data:{kind};base64,{data}'>download {name}</a>")
    return " · ".join(links)


def offer(paths: list[str], links: Any) -> None:
    """Offer saved files for download: Colab's own download there; elsewhere links set in the HTML widget
    ``links``."""
    if in_colab():
        from google.colab import files

        for path in paths:
            files.download(path)
        return
    links.value = download_links(paths)
