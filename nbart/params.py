"""The one parameter spec: each task's parameters declared once.

Every field of :class:`DreamParams` and :class:`StyleParams` carries its default, a one-line help text, its hard
bounds or choices and a slider range. From that single declaration come the keyword arguments of
``nbart.dream(...)``/``nbart.style_transfer(...)`` (and their signatures), the CLI flags, the studio controls,
validation with a clear message, and the "Show code" text.

Field types are kept to a closed set so that the CLI and widget builders stay small:
``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``Optional[int]`` and tuples of ``str``/``int``/``float``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from nbart import backbones

__all__ = ["ParamError", "Spec", "DreamParams", "StyleParams", "FastStyleParams", "fields_of", "to_code"]

WEIGHT_KEYWORDS = ("auto", "imagenet", "offline", "none")


class ParamError(ValueError):
    """A parameter value is out of range or of the wrong type; the message names the value and what is allowed."""


@dataclass(frozen=True)
class Spec:
    """What one parameter allows and how front-ends show it.

    ``low``/``high`` are hard bounds (``low_open`` makes the lower one exclusive); ``choices`` lists the allowed
    strings of a ``str`` field; ``ui`` is the slider range ``(low, high, step)``; ``group`` orders studio panels.
    """

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    ui: tuple[float, float, float] | None = None
    group: str = "main"


def param(default: Any, help: str, **spec: Any) -> Any:
    """Declare one parameter: its default, help text and :class:`Spec` keywords."""
    return field(default=default, metadata={"spec": Spec(help, **spec)})


@dataclass(frozen=True)
class FieldInfo:
    """A parameter as the front-ends see it: name, kind (see :func:`kind_of`), default and spec."""

    name: str
    kind: str
    default: Any
    spec: Spec
    choices: tuple[str, ...] | None


def kind_of(tp: Any) -> tuple[str, tuple | None]:
    """Map a field's type to one of the closed set of kinds, and its Literal choices if any."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp in (int, float, bool, str):
        return tp.__name__, None
    if origin is Literal:
        return "choice", tuple(args)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        if inner is int:
            return "optional_int", None
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in (str, int, float):
        return f"{args[0].__name__}_tuple", None
    raise TypeError(f"parameter type {tp!r} is outside the closed set the front-ends support")


def fields_of(cls_or_obj: Any) -> list[FieldInfo]:
    """The parameters of a params class (or instance), in declaration order."""
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind, literal_choices = kind_of(hints[f.name])
        spec = f.metadata["spec"]
        out.append(FieldInfo(f.name, kind, f.default, spec, literal_choices or spec.choices))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or _is_numpy_number(value)


def _is_numpy_number(value: Any) -> bool:
    mod = type(value).__module__
    return mod == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf" and getattr(value, "ndim", 0) == 0


def _split(value: Any) -> list:
    """Tuple fields accept a tuple/list or a comma-separated string ("mixed3,mixed5")."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ParamError("expected a list or a comma-separated string")


def _coerce_scalar(name: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
        raise ParamError(f"{name} must be True or False (got {value!r})")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise ParamError(f"{name} must be a string (got {value!r})")
    if kind == "int":
        if _is_number(value) and float(value).is_integer():
            return int(value)
        if _is_number(value) and not math.isfinite(float(value)):
            raise ParamError(f"{name} must be a finite integer (got {value!r})")
        raise ParamError(f"{name} must be an integer (got {value!r})")
    if kind == "float":
        if not _is_number(value):
            raise ParamError(f"{name} must be a number (got {value!r})")
        value = float(value)
        if not math.isfinite(value):
            raise ParamError(f"{name} must be a finite number (got {value})")
        return value
    raise AssertionError(kind)


def _coerce(info: FieldInfo, value: Any) -> Any:
    name, kind = info.name, info.kind
    if kind == "choice" or (kind == "str" and info.choices):
        if value not in info.choices:
            raise ParamError(f"{name} must be one of {', '.join(map(str, info.choices))} (got {value!r})")
        return value
    if kind == "optional_int":
        return None if value is None else _coerce_scalar(name, "int", value)
    if kind.endswith("_tuple"):
        item_kind = kind[: -len("_tuple")]
        try:
            items = _split(value)
        except ParamError:
            raise ParamError(f"{name} must be a list of {item_kind} values (got {value!r})") from None
        if item_kind != "str":
            items = [_parse_number(name, item_kind, v) if isinstance(v, str) else v for v in items]
        return tuple(_coerce_scalar(f"each of {name}", item_kind, v) for v in items)
    return _coerce_scalar(name, kind, value)


def _parse_number(name: str, kind: str, text: str) -> Any:
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        raise ParamError(f"{name}: {text!r} is not a number") from None


def _check_bounds(info: FieldInfo, value: Any) -> None:
    spec = info.spec
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is None or isinstance(v, (str, bool)):
            continue
        what = info.name if not isinstance(value, tuple) else f"each of {info.name}"
        if spec.low is not None:
            if spec.low_open and not v > spec.low:
                raise ParamError(f"{what} must be > {spec.low:g} (got {v:g})")
            if not spec.low_open and not v >= spec.low:
                raise ParamError(f"{what} must be >= {spec.low:g} (got {v:g})")
        if spec.high is not None and not v <= spec.high:
            raise ParamError(f"{what} must be <= {spec.high:g} (got {v:g})")


class _Params:
    """Validation shared by the params dataclasses: coerce each field, check bounds, then cross-field rules."""

    def __post_init__(self) -> None:
        for info in fields_of(self):
            value = _coerce(info, getattr(self, info.name))
            _check_bounds(info, value)
            object.__setattr__(self, info.name, value)
        self._check_weights()
        self._check()

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

    def _check(self) -> None:  # cross-field rules, per task
        pass

    def _check_layers(self, attr: str, allow_channels: bool) -> None:
        bb = backbones.get(self.model)
        for spec in getattr(self, attr):
            bb.parse_layer(spec, allow_channels=allow_channels)

    def _check_max_size(self) -> None:
        bb = backbones.get(self.model)
        if self.max_size < bb.min_size:
            raise ParamError(f"max_size must be >= {bb.min_size} px for {self.model} (got {self.max_size})")

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ParamError(unknown_param_message(type(self), sorted(unknown)[0]))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The parameters as a JSON-friendly dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_kwargs(cls, params: Any = None, **kwargs: Any):
        """Build from an existing instance and/or keyword arguments, naming any unknown keyword."""
        names = {f.name for f in dataclasses.fields(cls)}
        for key in kwargs:
            if key not in names:
                raise ParamError(unknown_param_message(cls, key))
        if params is None:
            return cls(**kwargs)
        if not isinstance(params, cls):
            raise ParamError(f"params must be a {cls.__name__} (got {type(params).__name__})")
        return params.replace(**kwargs) if kwargs else params


def unknown_param_message(cls: type, key: str) -> str:
    names = [f.name for f in dataclasses.fields(cls)]
    return f"unknown parameter {key!r} for {cls.__name__}; choose from {', '.join(names)}"


# Fields that both tasks share, declared once.
def _model_field(default: str) -> Any:
    return param(default, "backbone network", choices=backbones.names(), group="model")


def _weights_field() -> Any:
    return param("auto", "auto (ImageNet, else offline VGG16), imagenet, offline, none (random) or a weights file",
                 group="model")


def _max_size_field(what: str) -> Any:
    return param(512, f"{what}, in pixels", low=32, high=8192, ui=(128, 2048, 32), group="image")


def _seed_field() -> Any:
    return param(None, "random seed for reproducible runs (None: random)", low=0, high=2**32 - 1, group="advanced")


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
    tile_size: int = param(
        512, "largest tile for one gradient; bigger images are tiled to bound memory", low=128, high=4096,
        ui=(128, 1024, 32), group="advanced",
    )
    max_size: int = _max_size_field("the input is downscaled so its long side is at most this")
    seed: int | None = _seed_field()
    precision: Literal["auto", "float32", "bfloat16"] = _precision_field()

    def _check(self) -> None:
        self._check_layers("layers", allow_channels=True)
        n = len(self.layers) or len(backbones.get(self.model).dream_layers)
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
        (), "layers whose textures (Gram matrices) the result takes from the style (empty: the model's defaults)",
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
        (), "long side of each resolution, coarse to fine (empty: halves of max_size down to 256)", low=32,
        high=8192, group="image",
    )
    max_size: int = _max_size_field("long side of the output (when sizes is empty)")
    seed: int | None = _seed_field()
    precision: Literal["auto", "float32", "bfloat16"] = _precision_field()

    def _check(self) -> None:
        self._check_layers("content_layers", allow_channels=False)
        self._check_layers("style_layers", allow_channels=False)
        bb = backbones.get(self.model)
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
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ParamError(f"sizes must increase from coarse to fine (got {', '.join(map(str, self.sizes))})")
        if self.sizes and self.sizes[0] < bb.min_size:
            raise ParamError(f"sizes must be >= {bb.min_size} px for {self.model} (got {self.sizes[0]})")
        self._check_max_size()

    def resolution_sizes(self) -> tuple[int, ...]:
        """The long side of each resolution, coarse to fine: ``sizes``, or halves of ``max_size`` down to 256."""
        if self.sizes:
            return self.sizes
        sizes = [self.max_size]
        while sizes[0] // 2 >= 256:
            sizes.insert(0, sizes[0] // 2)
        return tuple(sizes)


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

    def _check_weights(self) -> None:  # no backbone: the networks are fixed (nbart.fast)
        pass

    def _check(self) -> None:
        if self.style_blend and not any(self.style_blend):
            raise ParamError("style_blend must not all be 0")


def takes(cls: type) -> Any:
    """Decorator: give a function ``f(image, params=None, **kwargs)`` the fields of ``cls`` as its keyword-only
    parameters in its signature (help() and shift-tab show them) and its docstring."""

    def decorate(fn: Any) -> Any:
        own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        hints = typing.get_type_hints(cls)
        fields = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
            for f in dataclasses.fields(cls)
        ]
        fn.__signature__ = inspect.Signature(own + fields, return_annotation=inspect.signature(fn).return_annotation)
        fn.__doc__ = f"{fn.__doc__ or ''}\n\n    Keyword parameters ({cls.__name__}):\n{params_doc(cls)}\n"
        return fn

    return decorate


def params_doc(cls: type) -> str:
    """The "Parameters" lines of a docstring, generated from the spec."""
    lines = []
    for info in fields_of(cls):
        bounds = []
        if info.choices:
            bounds.append("one of " + ", ".join(map(str, info.choices)))
        if info.spec.low is not None:
            bounds.append(f"{'>' if info.spec.low_open else '>='} {info.spec.low:g}")
        if info.spec.high is not None:
            bounds.append(f"<= {info.spec.high:g}")
        extra = f" ({'; '.join(bounds)})" if bounds else ""
        lines.append(f"    {info.name} = {info.default!r}: {info.spec.help}{extra}")
    return "\n".join(lines)


def to_code(function: str, params: Any, *args: str) -> str:
    """The Python call that reproduces ``params``: only fields that differ from their defaults are written."""
    defaults = type(params)()
    parts = list(args)
    for info in fields_of(params):
        value = getattr(params, info.name)
        if value != getattr(defaults, info.name):
            parts.append(f"{info.name}={value!r}")
    return f"{function}({', '.join(parts)})"
