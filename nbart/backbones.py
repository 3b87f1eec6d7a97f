"""Compatibility re-exports: ``nbart.backbones`` was split into :mod:`nbart.registry` (backbone data),
:mod:`nbart.weights` (which weights, and loading them), :mod:`nbart.precision` (float32 or bfloat16) and
:mod:`nbart.extractors` (cached networks and feature extractors). Import from those in new code.
"""

from nbart.errors import ParamError, WeightsError
from nbart.extractors import (
    MAX_EXTRACTORS,
    MAX_FUNCTIONS,
    MAX_MODELS,
    BoundedCache,
    Extractor,
    activations,
    cache_sizes,
    cached_extractors,
    cached_models,
    clear_cache,
    extractor,
    model,
)
from nbart.precision import bf16_speedup, cpu_has_bf16, cpu_model, probe_bf16, resolve_precision
from nbart.registry import OFFLINE_BACKBONE, Backbone, get, names
from nbart.weights import (
    Resolved,
    download_imagenet,
    hed_weights_file,
    imagenet_available,
    imagenet_cached,
    keras_home,
    offline_weights_path,
    resolve,
)

# Old private names that benchmarks and notebooks reached for: the same objects under their public names.
_extractors, _models = cached_extractors, cached_models
_cpu_has_bf16, _cpu_model, _hed_weights_file = cpu_has_bf16, cpu_model, hed_weights_file

__all__ = [
    "Backbone", "Resolved", "WeightsError", "ParamError", "get", "names", "resolve", "extractor", "resolve_precision",
    "activations", "BoundedCache", "cache_sizes", "Extractor", "model", "clear_cache", "bf16_speedup", "probe_bf16",
    "cpu_has_bf16", "cpu_model", "keras_home", "imagenet_cached", "imagenet_available", "download_imagenet",
    "offline_weights_path", "hed_weights_file", "OFFLINE_BACKBONE", "MAX_MODELS", "MAX_EXTRACTORS", "MAX_FUNCTIONS",
    "cached_models", "cached_extractors",
]
