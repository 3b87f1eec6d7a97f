"""What leaves a studio: the code that makes its picture, the PNG with its settings inside, the run as a GIF, and
the files offered for download.

Files are written atomically by :mod:`nbart.images`; the download is Colab's own where the kernel runs on Colab, and
elsewhere an HTML link holding the file as base64 data (it works in every front-end, with no server route).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import html
import io
import os
import tempfile
from typing import Any

from PIL import Image

from nbart.images import encode, load_image, save_gif, save_image
from nbart.params import to_code
from nbart.studio.compat import in_colab
from nbart.studio.history import Result
from nbart.studio.sources import Source

__all__ = ["code_text", "result_code", "metadata", "free_name", "save_inputs", "input_names", "save_result",
           "download_links", "offer"]

RUN_OF = {"nbart.dream": "nbart.dream_run", "nbart.style_transfer": "nbart.style_run",
          "nbart.fast_style": "nbart.fast_style_run"}  # a one-call function -> the run it wraps
Saved = dict  # (file name, SHA-1 of its bytes) -> the path it was saved as: an input is written once


def code_text(function: str, params: Any, codes: list[str], notes: list[str] = ()) -> str:
    """The Python code that makes a picture with ``params`` (nothing run yet): ``function`` ("nbart.dream") called
    with ``codes`` (how the code names each source, see :func:`save_inputs`) as its image arguments and every
    parameter that differs from the default; ``notes`` become comments."""
    lines = ["import nbart", ""] + [f"# {note}" for note in notes]
    if params.seed is None:
        lines.append("# seed=None: every run differs; Show code after a run gives the seed it used")
    lines += [f"result = {to_code(function, params, *codes)}", "result"]
    return "\n".join(lines)


def result_code(entry: Result, function: str, codes: dict[str, str], notes: list[str] = ()) -> str:
    """The Python code that makes ``entry``'s picture again, pixel for pixel: each run of its chain (the runs it
    continued from first) with the parameters that really ran (the concrete seed, the backbone after any fallback),
    a run stopped early as a loop that stops at the same step, a continuation as the engine's ``continue_run`` does
    it (a dream: one octave from the image; a style transfer: from the image at its size), a fast preview as
    :func:`nbart.fast_style`. ``codes`` names each source (see :func:`save_inputs`); ``function`` is the studio's
    call ("nbart.dream")."""
    lines = ["import nbart", ""] + [f"# {note}" for note in notes]
    chain = []
    while entry is not None:
        chain.insert(0, entry)
        entry = entry.parent
    for i, e in enumerate(chain):
        if i:
            lines.append("")
        lines += _one_run(e, e.function or function, codes)
    return "\n".join(lines + ["result"])


def _one_run(entry: Result, function: str, codes: dict[str, str]) -> list[str]:
    params = entry.ran if entry.ran is not None else entry.params
    args = list(codes.values())
    if entry.continued:
        if function == "nbart.dream":
            args = ["result"]  # deepdream.continue_run: the image is the input, octaves=1, steps=n
        else:
            args.append("init_image=result")  # styletransfer.continue_run: from the image, sizes=(its size,)
    head = [f"# Continue: {entry.total} more steps from that picture"] if entry.continued else []
    if function == "nbart.dream_zoom":  # an animation (nbart.studio.animate): its frames, written as a video
        call = to_code(function, params, *args)
        made = f"list({call})" if entry.steps_done >= entry.total else \
            f"[frame for _, frame in zip(range({entry.steps_done}), {call})]  # the frames the studio made"
        return head + [f"frames = {made}", f"nbart.save_video(frames, 'zoom.mp4', fps={params.fps:g})",
                       "result = frames[-1]"]
    if entry.steps_done >= entry.total:
        return head + [f"result = {to_code(function, params, *args)}"]
    return head + [f"run = {to_code(RUN_OF[function], params, *args)}",
                   "for event in run:",
                   f"    if event.step == {entry.steps_done}:  # where the studio's run ended ({entry.outcome})",
                   "        break",
                   "result = run.image()"]


def metadata(task: str, entry: Result, inputs: list[str] | None = None) -> dict[str, Any]:
    """What a saved PNG records of ``entry`` (JSON-friendly): the engine's ``Run.metadata()`` of the run that made
    it (the task, the parameters that ran with the concrete seed, the steps done, how it ended), ``inputs`` naming
    the sources (default: as the run described them), and for a continued picture the run it went on from as
    ``continued_from`` (recursively). :func:`nbart.images.read_params` reads it back."""
    meta = dict(entry.metadata) or {"task": entry.task or task, "params": entry.params.to_dict(),
                                    "steps_done": entry.steps_done, "ended": str(entry.outcome)}
    meta["inputs"] = inputs if inputs is not None else [i for s in entry.sources.values() for i in s.describe()]
    if entry.parent is not None:
        meta["continued_from"] = metadata(task, entry.parent, inputs)
    return meta


def save_inputs(sources: dict[str, Source], saved: Saved, folder: str = ".") -> tuple[dict[str, str], list[str]]:
    """How code names each source, saving what exists only in the studio beside the notebook first: an upload (its
    bytes as sent, under its own name, or ``NAME-1.EXT`` if a different file holds that name) and an image given in
    code that the notebook has no name for (as ``image.png``). A file is written once (``saved`` remembers it) and
    never over another. Returns (source name -> code, the paths written by this call)."""
    codes, written = {}, []
    for key, source in sources.items():
        if source.kind == "upload":
            files = [(name, bytes(item)) for name, item in zip(source.names, source.items)]
        elif source.kind == "given" and source.code is None:
            files = [(f"{key}.png" if len(sources) > 1 else "image.png", encode(load_image(item), "png"))
                     for item in source.items]
        else:
            codes[key] = source.code
            continue
        paths = []
        for name, data in files:
            path, new = _save_once(name, data, saved, folder)
            paths.append(path)
            written += [path] if new else []
        codes[key] = repr(paths) if source.multiple and len(paths) > 1 else repr(paths[0])
    return codes, written


def input_names(codes: dict[str, str]) -> list[str]:
    """The inputs as a saved PNG's metadata lists them: the paths (or samples, URLs) the codes of
    :func:`save_inputs` are literals of; a notebook's variable name as it is."""
    names: list[str] = []
    for code in codes.values():
        try:
            value = ast.literal_eval(code)
        except (ValueError, SyntaxError):
            value = code
        names += value if isinstance(value, list) else [value]
    return names


def _save_once(name: str, data: bytes, saved: Saved, folder: str) -> tuple[str, bool]:
    """The path of a file holding ``data`` beside the notebook, written now (True) unless it already is."""
    key = (name, hashlib.sha1(data).hexdigest())
    path = saved.get(key)
    if path is not None and _holds(path, folder, data):
        return path, False
    stem, ext = os.path.splitext(os.path.basename(name) or "upload.png")
    n = 0
    while True:
        path = f"{stem}-{n}{ext}" if n else f"{stem}{ext}"
        full = os.path.join(folder, path)
        if _holds(path, folder, data):  # the same file is there already (saved before): use it
            saved[key] = path
            return path, False
        if not os.path.exists(full):
            # written beside, then linked: atomic, and never over a file that appeared meanwhile
            fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=".nbart-", suffix=ext)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.link(tmp, full)
            except FileExistsError:
                n += 1
                continue
            finally:
                os.unlink(tmp)
            saved[key] = path
            return path, True
        n += 1


def _holds(path: str, folder: str, data: bytes) -> bool:
    full = os.path.join(folder, path)
    try:
        if os.path.getsize(full) != len(data):
            return False
        with open(full, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def free_name(task: str, folder: str = ".") -> str:
    """The first ``TASK-NNN.png`` (from 001) not taken in ``folder``."""
    n = 1
    while os.path.exists(os.path.join(folder, f"{task}-{n:03d}.png")):
        n += 1
    return f"{task}-{n:03d}.png"


def save_result(entry: Result, task: str, path: str, gif: bool, inputs: list[str] | None = None) -> list[str]:
    """Write ``entry``'s picture to ``path`` (``.png`` added if missing) with :func:`metadata` inside (``inputs``
    naming the sources), and with ``gif`` the run's frames (the final picture last) beside it as ``.gif``; returns
    the paths written."""
    if not path.lower().endswith(".png"):
        path += ".png"
    save_image(entry.image, path, metadata(task, entry, inputs))
    written = [path]
    if gif:
        frames = [Image.open(io.BytesIO(f)) for f in entry.frames] or [entry.image]
        gif_path = path[:-4] + ".gif"
        save_gif(frames + [entry.image.resize(frames[-1].size)], gif_path)
        written.append(gif_path)
    return written


def download_links(paths: list[str]) -> str:
    """HTML links that download ``paths`` (PNG, GIF or MP4) from data carried in the page itself."""
    links = []
    for path in paths:
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        kind = {".gif": "image/gif", ".mp4": "video/mp4"}.get(os.path.splitext(path)[1].lower(), "image/png")
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
