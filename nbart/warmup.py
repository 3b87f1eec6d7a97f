"""Warm-up: build a run's network and trace its step function ahead of time, so that Run shows a preview at once.

A cold start pays for building the Keras network (about 1 s for InceptionV3 on 2 CPU cores), the lean executor and
tracing the gradient function (about 0.5 s), and on first use of ``precision="auto"`` the bfloat16 probe; all are
cached per process afterwards. A studio calls :func:`warm_up` in a background thread when it opens (and when the
model or layers change), so that a click on Run only waits for one optimization step.
"""

from __future__ import annotations

from typing import Any

from nbart.params import DreamParams, StyleParams

__all__ = ["warm_up"]


def warm_up(task: str, params: Any = None, **kwargs: Any) -> None:
    """Build and trace what a ``task`` ("dream" or "style") run with these parameters will use; idempotent.

    Parameters are those of :func:`nbart.dream` or :func:`nbart.style_transfer` (a params object and/or keywords).
    Nothing is computed on images; weights are fetched as a run would fetch them. ValueError for another ``task``.
    """
    if task == "dream":
        from nbart import deepdream

        deepdream.prepare(DreamParams.from_kwargs(params, **kwargs)).trace()
    elif task == "style":
        from nbart import styletransfer

        styletransfer.prepare(StyleParams.from_kwargs(params, **kwargs)).trace()
    else:
        raise ValueError(f"task must be 'dream' or 'style' (got {task!r})")
