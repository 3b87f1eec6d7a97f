"""The one parameter spec of each task: :class:`DreamParams` and :class:`StyleParams`, and their rules.

Every field carries its default, a one-line help text, its hard bounds or choices and a slider range (declared
with :func:`nbart.spec.param`). From that single declaration come the keyword arguments of
``nbart.dream(...)``/``nbart.style_transfer(...)`` (and their signatures), the CLI flags, the studio controls,
validation with a clear message, and the "Show code" text; the machinery for all of that is :mod:`nbart.spec`.
Here are only the fields and the rules that need the backbone registry (layers, smallest input size).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from nbart import registry
from nbart.errors import ParamError
from nbart.spec import (  # noqa: F401  (re-exported: the spec machinery's old home)
    FieldInfo,
    Spec,
    SpecParams,
    fields_of,
    kind_of,
    param,
    params_doc,
    takes,
    to_code,
    unknown_param_message,
)

__all__ = ["ParamError", "Spec", "DreamParams", "StyleParams", "FastStyleParams", "ZoomParams", "fields_of", "to_code",
           "default_sizes", "LADDERS"]

WEIGHT_KEYWORDS = ("auto", "imagenet", "offline", "none")
COLOR_MODES = ("style", "luminance", "histogram")  # StyleParams.color's keywords; anything else is a palette image
LADDERS = {"halves": 2.0, "sqrt2": 2.0 ** 0.5}  # StyleParams.ladder: the size ratio between successive default sizes


def default_sizes(max_size: int, ladder: str = "halves") -> tuple[int, ...]:
    """A style run's default sizes (long sides, coarse to fine): ``max_size`` and the sizes below it down to 256 px,
    each ``LADDERS[ladder]`` times smaller than the next, ``max_size / ratio ** k`` rounded down (no rounding
    errors add up): halves (Gatys et al. 2017, "Controlling perceptual factors") or a factor sqrt(2) (the scales
    of crowsonkb/style-transfer-pytorch). ParamError for an unknown ladder.

    >>> default_sizes(1024), default_sizes(1024, "sqrt2")
    ((256, 512, 1024), (256, 362, 512, 724, 1024))
    """
    if ladder not in LADDERS:
        raise ParamError(f"ladder must be one of {', '.join(LADDERS)} (got {ladder!r})")
    out, k = [max_size], 1
    while (size := int(max_size / LADDERS[ladder] ** k + 1e-9)) >= 256:  # halves: as max_size // 2 ** k
        out.insert(0, size)
        k += 1
    return tuple(out)


class _Params(SpecParams):
    """The rules both tasks share: weights a keyword or a readable Keras weights file, layers and sizes that the
    chosen backbone accepts. Each task adds its own in :meth:`_task_rules`."""

    def _check(self) -> None:  # after each field's own coercion and bounds (nbart.spec.SpecParams)
        self._check_weights()
        self._task_rules()

    def _task_rules(self) -> None:  # cross-field rules, per task
        pass

    def _check_weights(self) -> None:
        w = self.weights
        if w in WEIGHT_KEYWORDS:
            return
        path = os.path.expanduser(w)
        if not os.path.isfile(path):
            raise ParamError(
                f"weights must be {', '.join(WEIGHT_KEYWORDS)} or the path of a weights file (got {w!r}: no such file)"
            )
        if not w.lower().endswith((".h5", ".hdf5", ".keras")):
            raise ParamError(f"a weights file must end in .weights.h5, .h5 or .keras (got {w!r})")
        try:
            with open(path, "rb") as f:
                head = f.read(2056)
        except OSError as e:
            raise ParamError(f"can't read the weights file {w!r}: {e.strerror}") from None
        # HDF5 puts its signature at 0 or after a user block of 512, 1024 or 2048 bytes; .keras files are zips
        hdf5 = any(head[at:at + 8] == b"\x89HDF\r\n\x1a\n" for at in (0, 512, 1024, 2048))
        if not hdf5 and not head.startswith(b"PK\x03\x04"):
            raise ParamError(f"{w!r} is not a Keras weights file (HDF5 .weights.h5/.h5, or .keras)")

    def _check_layers(self, attr: str, allow_channels: bool) -> None:
        """Layers of the model, or with ``weights="auto"`` of the backbone that will really run (the offline
        fallback's layers when ImageNet weights can't be had here), so that the layers a notice names are accepted."""
        bb = registry.get(self.model)
        for spec in getattr(self, attr):
            try:
                bb.parse_layer(spec, allow_channels=allow_channels)
            except ParamError as e:
                if self.weights != "auto" or spec.partition(":")[0] in bb.layers:  # a bad channel, say
                    raise
                from nbart.weights import resolve  # same layer; imported here only on this rare path

                ran = resolve(self.model, "auto").backbone
                if ran is bb:
                    raise
                try:
                    ran.parse_layer(spec, allow_channels=allow_channels)
                except ParamError:
                    if spec.partition(":")[0] in ran.layers:  # the fallback's layer with a bad channel: say that
                        raise
                    raise ParamError(f"{e} (or, as {ran.name} runs here instead, {ran.layer_range()})") from None

    def _check_max_size(self) -> None:
        bb = registry.get(self.model)
        if self.max_size < bb.min_size:
            raise ParamError(f"max_size must be >= {bb.min_size} px for {self.model} (got {self.max_size})")


# Fields that both tasks share, declared once.
def _model_field(default: str) -> Any:
    return param(default, "backbone network", choices=registry.names(), group="model")


def _weights_field() -> Any:
    return param("auto", "auto (ImageNet, else offline VGG16), imagenet, offline, none (random) or a weights file",
                 group="model")


def _max_size_field(what: str) -> Any:
    return param(512, f"{what}, in pixels", low=32, high=8192, ui=(128, 2048, 32), group="image")


def _seed_field() -> Any:
    return param(None, "random seed for reproducible runs (None: random)", low=0, high=2**32 - 1, group="advanced")


def _force_field() -> Any:  # read by nbart.cost.check_fits (check_fast_fits) before a run starts
    return param(False, "start even if the memory estimate says the run won't fit in what this process may use",
                 group="advanced")


def _precision_field() -> Any:
    return param("auto", "compute precision: auto uses bfloat16 only where this machine runs it faster",
                 group="advanced")


@dataclass(frozen=True, kw_only=True)
class DreamParams(_Params):
    """Parameters of a Deep Dream run. Sizes are in pixels; ``step_size`` is a fraction of the pixel range."""

    model: str = _model_field("inception_v3")
    weights: str = _weights_field()
    layers: tuple[str, ...] = param(
        (), "layers to amplify (empty: the model's defaults); 'layer:N' amplifies channel N only", group="model"
    )
    layer_weights: tuple[float, ...] = param(
        (), "weight of each layer, in the order of layers (empty: equal)", low=0.0, group="model"
    )
    octaves: int = param(4, "number of scales, from coarse to the full size", low=1, high=12, ui=(1, 8, 1))
    octave_scale: float = param(
        1.4, "size ratio between successive octaves", low=1.0, low_open=True, high=4.0, ui=(1.1, 2.0, 0.05)
    )
    steps: int = param(10, "gradient-ascent steps per octave", low=1, high=10000, ui=(1, 100, 1))
    step_size: float = param(
        0.015, "step length, as a fraction of the pixel range", low=0.0, low_open=True, high=1.0,
        ui=(0.001, 0.05, 0.001),
    )
    jitter: int = param(32, "random shift of the image before each step, in pixels", low=0, high=512, ui=(0, 128, 1))
    normalize: Literal["std", "laplacian"] = param(
        "std", "how each step's gradient is normalized: std (by its standard deviation, as the TensorFlow tutorial) "
        "or laplacian (each Laplacian-pyramid level by its own, as the original DeepDream notebook: larger, "
        "smoother patterns)"
    )
    tile_size: int = param(
        512, "largest tile for one gradient; bigger images are tiled to bound memory", low=128, high=4096,
        ui=(128, 1024, 32), group="advanced",
    )
    max_size: int = _max_size_field("the input is downscaled so its long side is at most this")
    seed: int | None = _seed_field()
    precision: Literal["auto", "float32", "bfloat16"] = _precision_field()
    force: bool = _force_field()
    mask: str = param("", "where to dream: a mask image (path, URL or sample:NAME; white = dream, grey = partly, "
                      "black = leave as it is; nbart.masks makes them); empty: everywhere", group="control")
    guide: str = param("", "dream toward this image: each position grows the guide's best-matching features (the "
                       "original DeepDream notebook's objective_guide); empty: amplify whatever the layers see",
                       group="control")

    def _task_rules(self) -> None:
        if self.guide and any(":" in spec for spec in self.layers):
            raise ParamError("guide matches whole layers: drop the ':N' channels from layers (got "
                             f"{', '.join(self.layers)})")
        self._check_layers("layers", allow_channels=True)
        n = len(self.layers) or len(registry.get(self.model).dream_layers)
        if self.layer_weights and len(self.layer_weights) != n:
            raise ParamError(f"layer_weights needs one weight per layer ({n}) (got {len(self.layer_weights)})")
        if self.layer_weights and not any(self.layer_weights):
            raise ParamError("layer_weights must not all be 0")
        self._check_max_size()


@dataclass(frozen=True, kw_only=True)
class StyleParams(_Params):
    """Parameters of a style-transfer run. Sizes are in pixels; loss weights are relative (see nbart.objectives)."""

    model: str = _model_field("vgg19")
    weights: str = _weights_field()
    content_layers: tuple[str, ...] = param(
        (), "layers whose features the result keeps from the content (empty: the model's defaults)", group="model"
    )
    style_layers: tuple[str, ...] = param(
        (), "layers whose textures (feature statistics, as style_loss matches them) the result takes from the style "
        "(empty: the model's defaults)",
        group="model",
    )
    style_layer_weights: tuple[float, ...] = param(
        (), "weight of each style layer, in the order of style_layers (empty: equal)", low=0.0, group="model"
    )
    content_weight: float = param(1.0, "how strongly the result keeps the content's structure", low=0.0, high=1e6,
                                  ui=(0.0, 10.0, 0.1))
    style_weight: float = param(30.0, "how strongly the result takes the style's textures", low=0.0, high=1e6,
                                ui=(0.0, 100.0, 0.5))
    tv_weight: float = param(10.0, "smoothness: how strongly pixel-to-pixel noise is penalized", low=0.0,
                             high=1e6, ui=(0.0, 100.0, 0.5))
    style_loss: Literal["gram", "w2", "sliced_wasserstein"] = param(
        "gram", "how the style's textures are matched: gram (Gram matrices, Gatys et al. 2016), w2 (Wasserstein-2 "
        "between the features' Gaussians: mean and covariance, as crowsonkb/style-transfer-pytorch) or "
        "sliced_wasserstein (whole feature distributions, Heitz et al. 2021); mask works with gram only"
    )
    optimizer: Literal["lbfgs", "adam"] = param(
        "lbfgs", "lbfgs (fewer, better steps) or adam (the TensorFlow tutorial's optimizer)"
    )
    steps: int = param(50, "optimizer iterations at each size", low=1, high=10000, ui=(1, 500, 1))
    learning_rate: float = param(0.02, "Adam's step size, in pixel units (lbfgs ignores it)", low=0.0,
                                 low_open=True, high=1.0, ui=(0.001, 0.1, 0.001), group="advanced")
    init: Literal["content", "noise", "style", "fast"] = param(
        "content", "starting image: the content, random noise, the (first) style image, or the fast stylization"
    )
    style_scale: float = param(1.0, "size of the style images relative to the output (smaller: finer strokes)",
                               low=0.05, high=4.0, ui=(0.25, 2.0, 0.05), group="image")
    style_blend: tuple[float, ...] = param(
        (), "weight of each style image, in their order (empty: equal)", low=0.0, group="image"
    )
    preserve_colors: bool = param(False, "transfer on luminance only, keeping the content's colours", group="image")
    sizes: tuple[int, ...] = param(
        (), "long side of each resolution, coarse to fine (empty: ladder's sizes down from max_size to 256; one "
        "size where max_size is under 512, or under 363 with ladder sqrt2)", low=32,
        high=8192, group="image",
    )
    max_size: int = _max_size_field("long side of the output (when sizes is empty)")
    seed: int | None = _seed_field()
    precision: Literal["auto", "float32", "bfloat16"] = _precision_field()
    force: bool = _force_field()
    mask: tuple[str, ...] = param(
        (), "where the style applies: one mask image (white = style, grey = partly, black = content), or one per "
        "style image, each painting its own region (guided Gram matrices: style_loss gram only); empty: "
        "everywhere", group="control")
    color: str = param(
        "style", "the result's colours: style (the style's), luminance (transfer on luminance, keep the content's "
        "colours; what preserve_colors does), histogram (match the result's colour histogram to the content's), or "
        "a palette image (path, URL or sample:NAME) whose colours the result takes", group="control")
    average_decay: float = param(
        0.0, "iterate averaging: decay of an exponential moving average of the image over each size's steps, which "
        "is what is shown, saved and carried to the next size (0: off, the last iterate; 0.9: about the last 10 "
        "steps; crowsonkb/style-transfer-pytorch averages with 0.99 over its 500-step sizes)", low=0.0, high=0.999,
        ui=(0.0, 0.99, 0.01), group="advanced")
    ladder: Literal["halves", "sqrt2"] = param(
        "halves", "the default sizes (when sizes is empty): halves of max_size down to 256 (Gatys et al. 2017), or "
        "sizes a factor sqrt(2) apart down to 256 (crowsonkb/style-transfer-pytorch): one more size per octave, "
        "smoother hand-over, more steps; the same single size as halves where max_size is under 363, and unused "
        "when sizes are given", group="image")

    def _task_rules(self) -> None:
        if self.preserve_colors:  # the older name of color="luminance", kept working
            if self.color not in ("style", "luminance"):
                raise ParamError(f"preserve_colors=True means color='luminance'; give one of them (got "
                                 f"color={self.color!r})")
            object.__setattr__(self, "color", "luminance")
        c = self.color
        if c not in COLOR_MODES and not c.startswith(("<", "sample:", "http://", "https://")) and \
                not os.path.isfile(os.path.expanduser(c)):
            raise ParamError(f"color must be one of {', '.join(COLOR_MODES)} or a palette image (got {c!r}: no such "
                             f"file)")
        self._check_layers("content_layers", allow_channels=False)
        self._check_layers("style_layers", allow_channels=False)
        bb = registry.get(self.model)
        n = len(self.style_layers) or len(bb.style_layers)
        if self.style_layer_weights and len(self.style_layer_weights) != n:
            raise ParamError(
                f"style_layer_weights needs one weight per style layer ({n}) (got {len(self.style_layer_weights)})"
            )
        if self.style_layer_weights and not any(self.style_layer_weights):
            raise ParamError("style_layer_weights must not all be 0")
        if self.style_blend and not any(self.style_blend):
            raise ParamError("style_blend must not all be 0")
        if self.content_weight == 0 and self.style_weight == 0:
            raise ParamError("content_weight and style_weight can't both be 0: there would be nothing to optimize")
        if self.mask and self.style_loss != "gram":  # regions use guided Gram matrices (nbart.control)
            raise ParamError(f"mask works with style_loss='gram' only (got style_loss={self.style_loss!r})")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ParamError(f"sizes must increase from coarse to fine (got {', '.join(map(str, self.sizes))})")
        if self.sizes and self.sizes[0] < bb.min_size:
            raise ParamError(f"sizes must be >= {bb.min_size} px for {self.model} (got {self.sizes[0]})")
        self._check_max_size()

    def resolution_sizes(self) -> tuple[int, ...]:
        """The long side of each resolution, coarse to fine: ``sizes``, or ``ladder``'s steps down from
        ``max_size`` to 256 (see :func:`default_sizes`)."""
        return self.sizes or default_sizes(self.max_size, self.ladder)


@dataclass(frozen=True, kw_only=True)
class FastStyleParams(_Params):
    """Parameters of a fast (feed-forward) stylization: Magenta's arbitrary style networks (Ghiasi et al. 2017).

    Sizes are in pixels; ``strength`` and ``style_blend`` act on the 100-number style embedding.
    """

    strength: float = param(1.0, "0 gives the content, 1 the full style (interpolated in the style embedding, "
                            "as Magenta does, and faded into the content)", low=0.0, high=1.0, ui=(0.0, 1.0, 0.05))
    style_blend: tuple[float, ...] = param(
        (), "weight of each style image, in their order (empty: equal)", low=0.0, group="image"
    )
    style_size: int = param(256, "side of the square the style network sees, rounded to a multiple of 32 (smaller: "
                            "coarser strokes)", low=64, high=1024, ui=(128, 512, 32), group="image")
    preserve_colors: bool = param(False, "transfer on luminance only, keeping the content's colours", group="image")
    max_size: int = param(1024, "long side of the output, in pixels (the content is never upscaled beyond its "
                          "size)", low=64, high=8192, ui=(128, 2048, 32), group="image")
    force: bool = _force_field()

    def _check_weights(self) -> None:  # no backbone: the networks are fixed (nbart.fast)
        pass

    def _check(self) -> None:
        if self.style_blend and not any(self.style_blend):
            raise ParamError("style_blend must not all be 0")



@dataclass(frozen=True, kw_only=True)
class ZoomParams(DreamParams):
    """Parameters of a Deep Dream zoom animation (:func:`nbart.dream_zoom`): every frame is a dream (the
    :class:`DreamParams` fields; ``steps`` and ``octaves`` per frame, fewer by default) of the previous frame zoomed
    into its centre by ``zoom`` and turned by ``rotate`` degrees, as the original DeepDream notebook's endless zoom."""

    octaves: int = param(1, "number of scales of each frame's dream, from coarse to the full size", low=1, high=12,
                         ui=(1, 8, 1))
    steps: int = param(5, "gradient-ascent steps per octave of each frame", low=1, high=10000, ui=(1, 100, 1))
    frames: int = param(30, "frames of the animation (the first is the dreamed input)", low=1, high=100000,
                        ui=(1, 300, 1), group="animation")
    zoom: float = param(1.05, "scale from one frame to the next (1: no zoom, >1 zooms in, <1 zooms out with the "
                        "edges filled by reflection)", low=0.5, high=2.0,
                        ui=(1.0, 1.2, 0.005), group="animation")
    rotate: float = param(0.0, "turn from one frame to the next, in degrees (counter-clockwise)", low=-45.0,
                          high=45.0, ui=(-10.0, 10.0, 0.5), group="animation")
    fps: float = param(12.0, "frames per second of the written animation", low=1.0, high=60.0, ui=(1.0, 30.0, 1.0),
                       group="animation")
