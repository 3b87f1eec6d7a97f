"""Warm-up: build a run's network and trace its step function ahead of time, so that Run shows a preview at once.

A cold start pays for building the Keras network (about 1 s for InceptionV3 on 2 CPU cores), the lean executor and
tracing the gradient function (about 0.5 s), and on first use of ``precision="auto"`` the bfloat16 probe; all are
cached per process afterwards. A studio calls :func:`warm_up` in a background thread when it opens (and when the
model or layers change), so that a click on Run only waits for one optimization step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nbart import backbones
from nbart.params import DreamParams, StyleParams

__all__ = ["warm_up"]


def warm_up(task: str, params: Any = None, **kwargs: Any) -> None:
    """Build and trace what a ``task`` ("dream" or "style") run with these parameters will use; idempotent.

    Parameters are those of :func:`nbart.dream` or :func:`nbart.style_transfer` (a params object and/or keywords).
    Nothing is computed on images; weights are fetched as a run would fetch them.
    """
    import tensorflow as tf

    if task == "dream":
        from nbart import deepdream

        p = DreamParams.from_kwargs(params, **kwargs)
        resolved = backbones.resolve(p.model, p.weights)
        bb = resolved.backbone
        specs, layer_weights = deepdream._layer_specs(p, bb, [])
        layers = tuple(dict.fromkeys(name for name, _ in specs))
        ext = backbones.extractor(bb, resolved.weights, backbones.resolve_precision(p.precision), layers)
        means, gradient = deepdream._functions(ext, specs)
        image = tf.zeros([bb.min_size, bb.min_size, 3], tf.float32)
        means(image)  # a run's first step needs the layer means
        gradient(image, tf.constant(np.asarray(layer_weights, np.float32)))
    elif task == "style":
        import scipy.optimize  # noqa: F401  L-BFGS's first iteration would import it: 0.3-0.5 s of the first preview

        from nbart import styletransfer

        p = StyleParams.from_kwargs(params, **kwargs)
        resolved = backbones.resolve(p.model, p.weights)
        bb = resolved.backbone
        content = styletransfer._layers(p.content_layers, bb.content_layers, bb, p.model, "content", [])
        style = styletransfer._layers(p.style_layers, bb.style_layers, bb, p.model, "style", [])
        ext = backbones.extractor(bb, resolved.weights, backbones.resolve_precision(p.precision), content + style)
        features, loss_and_gradient = styletransfer._functions(ext, len(content), len(style))
        image = tf.fill([bb.min_size, bb.min_size, 3], 0.5)
        content_targets, grams = features(image)
        weights = tf.constant([1.0, 1.0, 1.0], tf.float32)
        loss_and_gradient(image, content_targets, grams, weights, tf.fill([len(style)], 1.0 / len(style)))
    else:
        raise ValueError(f"task must be 'dream' or 'style' (got {task!r})")
