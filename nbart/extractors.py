"""Feature extractors: a backbone's network cut at chosen layers, built once and kept in small bounded caches.

:func:`model` caches whole networks (at most ``MAX_MODELS``), :func:`extractor` caches :class:`Extractor` s (at most
``MAX_EXTRACTORS``; changing layers reuses the cached network), each extractor keeps its traced task functions (at
most ``MAX_FUNCTIONS``). One LRU helper, :class:`BoundedCache`, bounds all three, so a long session can't grow
without bound. :func:`activations` is the user-facing "what do these layers see?".

An extractor runs its network through :class:`nbart.lean.LeanNetwork` (BatchNorm folded, weights in the compute
dtype) when ``lean=True`` and the lean network proves equal to Keras on a small probe image; otherwise through the
Keras model, with a one-line notice.
"""

from __future__ import annotations

import collections
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from nbart.registry import Backbone
from nbart.weights import load as load_weights
from nbart.weights import resolve

__all__ = ["Extractor", "extractor", "model", "activations", "clear_cache", "cache_sizes", "BoundedCache",
           "cached_models", "cached_extractors", "MAX_MODELS", "MAX_EXTRACTORS", "MAX_FUNCTIONS"]

MAX_MODELS = 3
MAX_EXTRACTORS = 8
MAX_FUNCTIONS = 8  # traced functions kept per extractor (one per task and layer set)
# A style layer whose input is at most a quarter of its output (VGG's block1_conv1: the 3-channel image in, 64
# channels out) is computed again in the backward pass (nbart.grams.layer_junction) instead of being kept through
# it: 57 MB less at 437x512 px for 0.2 % more arithmetic. Deeper layers' inputs are half their output: not worth
# a forward pass.
RECOMPUTE_SMALL_INPUT = True
# Bands of rows such a layer's backward pass takes one after another (nbart.grams.layer_junction, where the layer
# says which input rows each output row reads): a quarter of the three activation-sized tensors held at once.
JUNCTION_BANDS = 4
PROBE_SIZE = 32  # px: the side of the image a lean network proves itself on (at least the backbone's min_size)


class BoundedCache(collections.OrderedDict):
    """A dict that keeps its ``limit`` most recently used entries: long sessions can't grow it without bound.

    Reading or writing an entry makes it the most recent. ``on_evict(key, value)`` (optional) is called for each
    entry dropped to make room.
    """

    def __init__(self, limit: int, on_evict: Callable[[Any, Any], None] | None = None):
        super().__init__()
        self.limit, self.on_evict = limit, on_evict

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            evicted = self.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(*evicted)

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        """The entry for ``key``, made by ``make()`` and stored if absent (callers hold the module's lock)."""
        if key in self:
            return self[key]
        value = make()
        self[key] = value
        return value


def _drop_network(key: tuple, _net: Any) -> None:
    # An extractor holds its network: drop those of an evicted network, or up to MAX_EXTRACTORS networks would
    # stay alive behind a cache of MAX_MODELS.
    for stale in [k for k in cached_extractors if k[:3] == key]:
        del cached_extractors[stale]
    clear_kernel_cache()


_lock = threading.RLock()
cached_models = BoundedCache(MAX_MODELS, on_evict=_drop_network)  # (backbone, weights, precision) -> network
cached_extractors = BoundedCache(MAX_EXTRACTORS)  # (backbone, weights, precision, layers, lean) -> Extractor


def clear_kernel_cache() -> None:
    """Empty TensorFlow's eager kernel cache, as keras.backend.clear_session does (without resetting Keras' global
    state, which would reset the dtype policy of every thread).

    Why: building a network runs one eager op per variable with a unique variable name, and each is cached, so a
    session switching between more networks than MAX_MODELS grew by every rebuild. Cached tf.functions are
    instantiated again on their next call.
    """
    try:
        from tensorflow.python.eager import context

        context.context().clear_kernel_cache()
    except Exception:  # a private API: if it moves, only the memory bound is lost
        pass


def model(bb: Backbone, weights: str, precision: str = "float32") -> Any:
    """The Keras network of ``bb`` with ``weights`` (imagenet, offline, none or a path) under ``precision``
    ("float32" or "bfloat16"), cached; WeightsError if the weights can't be had or don't fit."""
    with _lock:
        return cached_models.get_or_make((bb.name, weights, precision), lambda: load_weights(bb, weights, precision))


class Extractor:
    """Maps RGB images in [0, 1], (batch, height, width, 3) float32, to the activations of chosen layers.

    ``lean`` (default True): run through :class:`nbart.lean.LeanNetwork` if it proves equal to the Keras model on a
    small probe image; where it can't (an unreadable network, a Keras release that changed the privates it reads,
    a mismatch), the Keras model runs and ``notice`` says so in one line (also issued as a ``RuntimeWarning``).
    ``self.lean`` is the lean network in use, or None. ``flip_ahead`` (default False): the lean network flips its
    kernels for the input gradient once, not in each backward pass (see :func:`nbart.convgrad.flip`): dreams ask
    for it (faster steps, ~50 MB more held for VGG16), style runs don't (their memory peak is the tighter bound).
    """

    def __init__(self, bb: Backbone, weights: str, precision: str, layers: tuple[str, ...], lean: bool = True,
                 warn: bool = True, flip_ahead: bool = False):
        import keras

        self.backbone, self.weights, self.precision, self.layers = bb, weights, precision, tuple(layers)
        self.flip_ahead = flip_ahead
        net = model(bb, weights, precision)
        self.model = keras.Model(net.input, [net.get_layer(name).output for name in self.layers])
        self.channels = {name: net.get_layer(name).output.shape[-1] for name in self.layers}
        # traced tf.functions of the tasks, kept with the extractor and bounded like it
        self.functions: BoundedCache = BoundedCache(MAX_FUNCTIONS)
        self.lean = None
        self.notice: str | None = None
        if lean:
            self.lean, self.notice = self._lean_network()
            if self.notice and warn:  # a run says it among its notices instead (warn=False)
                warnings.warn(self.notice, RuntimeWarning, stacklevel=2)

    def _lean_network(self) -> tuple[Any, str | None]:
        import numpy as np

        from nbart.lean import LeanNetwork

        side = max(PROBE_SIZE, self.backbone.min_size)
        probe = self.backbone.preprocess(np.random.default_rng(0).random((1, side, side, 3), np.float32))
        try:  # the same network with BatchNorm folded and no Keras layer overhead; see nbart/lean.py
            return LeanNetwork(self.model, "bfloat16" if self.precision == "bfloat16" else "float32", probe,
                               flip_ahead=self.flip_ahead), None
        except Exception as e:  # whatever a changed Keras raises: the Keras model is the reference and the fallback
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
            return None, f"lean executor off for {self.backbone.name} ({reason}); running the Keras model"

    def __call__(self, images: Any, float32: bool = True) -> list:
        """The chosen layers' activations, each (batch, H', W', C): float32, or with ``float32=False`` in the
        compute dtype (bfloat16 under that precision), for a caller that casts them itself."""
        from nbart.quiet import tensorflow
        tf = tensorflow()

        x = self.backbone.preprocess(images)
        if self.lean is not None:
            outputs = self.lean(x)
        else:
            outputs = self.model(x)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [tf.cast(a, tf.float32) for a in outputs] if float32 else list(outputs)

    def features_and_grams(self, images: Any, gram_layers: Sequence[int]) -> tuple[list, list]:
        """``(features, grams)`` for a style step: the activations of the layers not in ``gram_layers`` (indices
        into ``self.layers``), float32 (batch, H', W', C), in order; and the Gram matrices of the ``gram_layers``,
        float32 (batch, C, C), in the order given.

        The values and gradients of :func:`nbart.objectives.gram_matrix` of the float32 activations, at a lower
        memory peak (see :mod:`nbart.grams`): with the lean network each Gram is taken inside it, where the
        layer's output goes on (:func:`~nbart.grams.gram_junction`); with the Keras model beside it
        (:func:`~nbart.grams.gram_of`).
        """
        from nbart.quiet import tensorflow
        tf = tensorflow()

        from nbart import grams  # imports TensorFlow: not at import time, so `import nbart` stays fast

        gram_layers = list(gram_layers)
        x = self.backbone.preprocess(images)
        if self.lean is not None:
            taken: dict[int, Any] = {}

            def junction(index: int, activations: Any) -> Any:
                activations, taken[index] = grams.gram_junction(activations)
                return activations

            def recomputed(index: int, layer: Any, inputs: Any) -> Any:
                halo = self.lean.row_halo(index)
                activations, taken[index] = grams.layer_junction(layer, inputs, halo,
                                                                 JUNCTION_BANDS if halo is not None else 1)
                return activations

            recompute = [i for i in gram_layers if RECOMPUTE_SMALL_INPUT and self.lean.small_input(i)]
            outputs = self.lean(x, taps={i: (lambda a, i=i: junction(i, a)) for i in gram_layers if i not in recompute},
                                wraps={i: (lambda layer, v, i=i: recomputed(i, layer, v)) for i in recompute})
            gram_values = [taken[i] for i in gram_layers]
        else:
            outputs = self.model(x)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            gram_values = [grams.gram_of(outputs[i]) for i in gram_layers]
        features = [tf.cast(a, tf.float32) for i, a in enumerate(outputs) if i not in gram_layers]
        return features, gram_values

    def features_and_moments(self, images: Any, moment_layers: Sequence[int]) -> tuple[list, list]:
        """``(features, moments)`` for a Wasserstein-2 style step: as :meth:`features_and_grams`, with each Gram
        matrix (the second raw moment, (batch, C, C)) paired with the layer's mean activation (batch, C), float32:
        ``moments[k] = (mean, gram)``. The mean is taken from the activations the network passes on, so its
        gradient joins theirs."""
        from nbart.quiet import tensorflow
        tf = tensorflow()

        from nbart import grams

        moment_layers = list(moment_layers)
        x = self.backbone.preprocess(images)
        means: dict[int, Any] = {}
        if self.lean is not None:
            taken: dict[int, Any] = {}

            def junction(index: int, activations: Any) -> Any:
                activations, taken[index] = grams.gram_junction(activations)
                means[index] = tf.reduce_mean(tf.cast(activations, tf.float32), axis=[1, 2])
                return activations

            outputs = self.lean(x, taps={i: (lambda a, i=i: junction(i, a)) for i in moment_layers})
        else:
            outputs = self.model(x)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            taken = {i: grams.gram_of(outputs[i]) for i in moment_layers}
            means = {i: tf.reduce_mean(tf.cast(outputs[i], tf.float32), axis=[1, 2]) for i in moment_layers}
        features = [tf.cast(a, tf.float32) for i, a in enumerate(outputs) if i not in moment_layers]
        return features, [(means[i], taken[i]) for i in moment_layers]


def extractor(bb: Backbone, weights: str, precision: str, layers: Sequence[str], lean: bool = True,
              warn: bool = True, flip_ahead: bool = False) -> Extractor:
    """A cached :class:`Extractor`; changing the layers reuses the cached network, it never rebuilds it.
    ``warn=False``: a lean-executor fallback is only in ``Extractor.notice`` (a run lists it among its notices).
    ``flip_ahead`` as for :class:`Extractor`."""
    with _lock:
        if (bb.name, weights, precision) in cached_models:
            cached_models.move_to_end((bb.name, weights, precision))  # a network in use is not the one to evict
        key = ((bb.name, weights, precision, tuple(layers)) + (() if lean else ("keras",))
               + (("flip_ahead",) if flip_ahead and lean else ()))
        return cached_extractors.get_or_make(key, lambda: Extractor(bb, weights, precision, tuple(layers), lean,
                                                                    warn, flip_ahead))


def cache_sizes() -> dict[str, int]:
    """How much the caches hold: networks, extractors and traced functions (for soak tests and diagnostics)."""
    with _lock:
        return {"models": len(cached_models), "extractors": len(cached_extractors),
                "functions": sum(len(e.functions) for e in cached_extractors.values())}


def activations(image: Any, layers: Sequence[str], model: str = "vgg16", weights: str = "auto",
                max_size: int = 512) -> dict[str, Any]:
    """What chosen layers see: ``{layer: activations (H', W', channels) as a float32 numpy array}``.

    ``image`` is anything :func:`nbart.load_image` reads, downscaled so its long side is at most ``max_size`` px.
    With ``weights="auto"`` the backbone may fall back to the offline VGG16 (see :func:`nbart.weights.resolve`);
    ask for layers that exist in it. ParamError for an unknown layer, WeightsError for weights not to be had.
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
        cached_extractors.clear()
        cached_models.clear()
        if "tensorflow" in sys.modules:
            clear_kernel_cache()
