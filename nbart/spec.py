"""The generic parameter-spec machinery: declare each parameter once, derive everything else from it.

A params class is a frozen dataclass of fields declared with :func:`param` (default, one-line help, hard bounds or
choices, slider range). From that declaration come validation with a one-line :class:`~nbart.errors.ParamError`
(:class:`SpecParams`), the signature and docstring of the functions that take the parameters (:func:`takes`), the
"Show code" text (:func:`to_code`), and the CLI flags and widget controls (built from :func:`fields_of`).

Field types are kept to a closed set so that the CLI and widget builders stay small (:func:`kind_of`):
``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``Optional[int]`` and tuples of ``str``/``int``/``float``.
Anchors: ipywidgets ``interactive`` (widgets from a signature), HfArgumentParser (dataclass fields to flags).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from nbart.errors import ParamError

__all__ = ["Spec", "param", "FieldInfo", "kind_of", "fields_of", "SpecParams", "unknown_param_message", "takes",
           "params_doc", "to_code", "field_value"]


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


class _EmptyEntry(ParamError):
    pass


def _split(value: Any) -> list:
    """Tuple fields accept a tuple/list or a comma-separated string ("mixed3,mixed5"); an empty string is no
    entries, and an empty entry ("a,,b", "a,") is refused rather than dropped (a path left out by mistake)."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        if items == [""]:
            return []
        if "" in items:
            raise _EmptyEntry(f"entry {items.index('') + 1} of {value!r} is empty; give the values separated by "
                              f"single commas")
        return items
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
        except _EmptyEntry as e:
            raise ParamError(f"{name}: {e}") from None
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


def _num(x: float) -> str:
    """A bound or value as written: whole numbers in full (a seed's 4294967295, not 4.29497e+09), others as ``g``."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


def _check_bounds(info: FieldInfo, value: Any) -> None:
    spec = info.spec
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v is None or isinstance(v, (str, bool)):
            continue
        what = info.name if not isinstance(value, tuple) else f"each of {info.name}"
        if spec.low is not None:
            if spec.low_open and not v > spec.low:
                raise ParamError(f"{what} must be > {_num(spec.low)} (got {_num(v)})")
            if not spec.low_open and not v >= spec.low:
                raise ParamError(f"{what} must be >= {_num(spec.low)} (got {_num(v)})")
        if spec.high is not None and not v <= spec.high:
            raise ParamError(f"{what} must be <= {_num(spec.high)} (got {_num(v)})")


class SpecParams:
    """Base of the params dataclasses: coerce each field to its kind, check its bounds, then the class's
    cross-field rules (:meth:`_check`, overridden per task). ParamError names the first bad value."""

    def __post_init__(self) -> None:
        for info in fields_of(self):
            value = _coerce(info, getattr(self, info.name))
            _check_bounds(info, value)
            object.__setattr__(self, info.name, value)
        self._check()

    def _check(self) -> None:  # cross-field rules, per task
        pass

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
    """"unknown parameter 'strenght' for FastStyleParams; choose from strength, ...; did you mean strength?"."""
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)  # as the CLI hints a mistyped flag
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown parameter {key!r} for {cls.__name__}; choose from {', '.join(names)}{hint}"


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
            bounds.append(f"{'>' if info.spec.low_open else '>='} {_num(info.spec.low)}")
        if info.spec.high is not None:
            bounds.append(f"<= {_num(info.spec.high)}")
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


def field_value(cls: type, name: str, value: Any) -> Any:
    """``value`` for the field ``name`` of the params class ``cls``, coerced to its kind and checked against its
    bounds or choices alone (the class's cross-field rules need the other values): the same one-line ParamError as
    building the class. An unknown ``name`` is named with the choices. Used by sweeps, one value at a time."""
    info = next((i for i in fields_of(cls) if i.name == name), None)
    if info is None:
        raise ParamError(unknown_param_message(cls, name))
    value = _coerce(info, value)
    _check_bounds(info, value)
    return value
