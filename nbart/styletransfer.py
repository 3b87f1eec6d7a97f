"""Neural Style Transfer (Gatys et al.): optimize an image to keep a content's features and a style's textures.

- Losses (see :mod:`nbart.objectives`): content loss on the content layers, style loss between Gram matrices on
  the style layers (per-layer weights allowed; several style images blended by ``style_blend``), total variation.
  All are relative means, so the weights mean the same thing at any size and on any backbone.
- Optimizers: ``lbfgs`` (scipy's L-BFGS-B, bounded to the pixel range [0, 1], tolerances off so float32 gradients
  don't end it early; restarted if its line search gives up) and ``adam`` (the TensorFlow tutorial's settings).
- Multi-resolution: optimize at each of ``sizes`` (long side, coarse to fine), upscaling the result as the next
  start. ``preserve_colors`` transfers on luminance only and puts the content's chroma back.

A run is an iterator of :class:`~nbart.events.StepEvent` (one per optimizer iteration), stoppable at any step.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from nbart import backbones
from nbart.backbones import Backbone
from nbart.events import Run, StepEvent, run_with_notices
from nbart.images import ImageError, load_image, prepare, to_float
from nbart.params import ParamError, StyleParams, takes

__all__ = ["style_transfer", "style_run", "rgb_to_ycbcr", "ycbcr_to_rgb"]

# ITU-R BT.601 full range, as in JPEG and Pillow's "YCbCr" mode; images in [0, 1].
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCBCR_INV = np.linalg.inv(_YCBCR).astype(np.float32)
LBFGS_MAX_RESTARTS = 3
# Corrections L-BFGS keeps (scipy's default is 10). Its float64 workspace is about (2 * maxcor + 5) * 3 values per
# pixel: 7 saves 32 MB at 512 px, and the default run's final loss was no worse (offline VGG16, golden_gate.jpg
# with starry_night.jpg: 0.682 with 7 against 0.687 with 10; 5 gave 0.701, 2% worse).
LBFGS_MAXCOR = 7


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] (..., 3) -> Y in [0, 1], Cb and Cr centred on 0."""
    return rgb @ _YCBCR.T


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, clipped to [0, 1]."""
    return np.clip(ycc @ _YCBCR_INV.T, 0.0, 1.0)


def _luminance(rgb: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB of an image's luminance; with ``like``, its mean and spread are matched to ``like``'s luminance."""
    y = rgb_to_ycbcr(rgb)[..., 0]
    if like is not None:
        ref = rgb_to_ycbcr(like)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1)


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image (H, W, 3) to (height, width): antialiased down, bicubic up."""
    import tensorflow as tf

    if array.shape[:2] == tuple(size):
        return array
    method = "bicubic" if size[0] > array.shape[0] else "bilinear"
    return np.clip(tf.image.resize(array, size, method=method, antialias=True).numpy(), 0.0, 1.0)


def _stage_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(height, width) of an image scaled so its long side is ``long_side``."""
    scale = long_side / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _long_side_needed(size: Sequence[int], min_short: int) -> int:
    """The long side (px) at which an image of ``size`` (two sides, either order) has a short side of ``min_short``."""
    return math.ceil(min_short * max(size) / min(size))


def _layers(requested: tuple[str, ...], defaults: tuple[str, ...], bb: Backbone, model: str,
            what: str, notices: list[str]) -> tuple[str, ...]:
    if requested and bb.name != model and not all(name in bb.layers for name in requested):
        notices.append(f"{what} layers {', '.join(requested)} don't exist in {bb.name}; using {', '.join(defaults)}")
        return defaults
    return requested or defaults


@takes(StyleParams)
def style_run(content: Any, style: Any, params: StyleParams | None = None, *, init_image: Any = None,
              **kwargs: Any) -> Run:
    """Start a style transfer and return its :class:`~nbart.events.Run` (an iterator of step events).

    ``content`` is anything :func:`nbart.load_image` reads; ``style`` is one such image or a list of them (blended
    by ``style_blend``). ``init_image`` (optional, any image) is the starting image instead of ``init``: a previous
    result, to go on optimizing it. Bad parameters and unreadable images raise before any work; nothing is computed
    until the first event is pulled.
    """
    p = StyleParams.from_kwargs(params, **kwargs)
    style_sources = list(style) if isinstance(style, (list, tuple)) else [style]
    if not style_sources:
        raise ParamError("give at least one style image")
    blend = p.style_blend or (1.0,) * len(style_sources)
    if len(blend) != len(style_sources):
        raise ParamError(f"style_blend needs one weight per style image ({len(style_sources)}) (got {len(blend)})")
    resolved = backbones.resolve(p.model, p.weights)
    notices = [resolved.notice] if resolved.notice else []
    bb = resolved.backbone
    # Never decoded larger than the largest size asked for (big JPEGs decode at a fraction of their size).
    content_img, original = prepare(content, max_size=max(p.resolution_sizes()), what="content image")
    sizes = p.resolution_sizes()
    w, h = content_img.size
    needed = _long_side_needed(original, bb.min_size)
    if not p.sizes and max(w, h) < p.max_size:  # don't upscale a small content beyond what the backbone needs
        sizes = p.replace(max_size=min(p.max_size, max(max(w, h), needed))).resolution_sizes()
    if sizes[-1] < needed:
        raise ImageError(f"content image is too thin: {original[0]}x{original[1]} px can't fit within {sizes[-1]} px "
                         f"with its short side at least {bb.min_size} px; crop it or raise max_size")
    if not p.sizes:  # default sizes: drop coarse ones too small for the backbone, as dream octaves do
        sizes = tuple(s for s in sizes if s >= needed)
    style_cap = max(bb.min_size, round(sizes[-1] * p.style_scale))
    styles = []
    for source in style_sources:
        style_img, (ow, oh) = prepare(source, max_size=style_cap)
        # A thin style is upscaled at each stage until its short side reaches the backbone's minimum (a texture's
        # size is secondary); only one so thin that this would cost more than a square style does is refused.
        grown = _long_side_needed(style_img.size, bb.min_size)
        if grown * bb.min_size > max(style_cap, 512) ** 2:
            raise ImageError(f"style image is too thin: {ow}x{oh} px would have to grow to {grown} px long for its "
                             f"short side to reach the {bb.min_size} px {bb.name} accepts; crop it")
        styles.append(style_img)
    content_layers = _layers(p.content_layers, bb.content_layers, bb, p.model, "content", notices)
    style_layers = _layers(p.style_layers, bb.style_layers, bb, p.model, "style", notices)
    layer_weights = p.style_layer_weights if style_layers == (p.style_layers or bb.style_layers) and \
        p.style_layer_weights else (1.0,) * len(style_layers)
    stages = [_stage_size(*content_img.size, s) for s in sizes]
    if min(stages[0]) < bb.min_size:
        raise ParamError(f"the content's short side would be {min(stages[0])} px at size {sizes[0]}, below the "
                         f"{bb.min_size} px {bb.name} accepts; raise sizes or crop the content")
    output_size = stages[-1]
    if not p.sizes and min(output_size) > min(content_img.size) and max(content_img.size) < p.max_size:
        notices.append(f"content upscaled from {original[0]}x{original[1]} to {output_size[1]}x{output_size[0]} px, "
                       f"the smallest {bb.name} accepts")
    start = content_img.resize(output_size[::-1], Image.Resampling.LANCZOS) if content_img.size != output_size[::-1] \
        else content_img
    plan = _Plan(p, resolved, content_layers, style_layers, layer_weights, blend, stages)

    init = to_float(load_image(init_image)) if init_image is not None else None

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        start_image = init
        if start_image is None and p.init == "fast":  # the first stage starts from the instant stylization
            from nbart.fast import fast_start

            start_image = fast_start(content_img, style_sources, blend, p.preserve_colors)
        return _style_steps(plan, to_float(content_img), [to_float(s) for s in styles], stop, notices, start_image)

    return Run("style", p, steps, len(stages) * p.steps, start, notices)


class _Plan:
    """What a style run was asked to do, resolved: backbone, layers, weights and stage sizes."""

    def __init__(self, p: StyleParams, resolved: backbones.Resolved, content_layers: tuple[str, ...],
                 style_layers: tuple[str, ...], layer_weights: Sequence[float], blend: Sequence[float],
                 stages: list[tuple[int, int]]):
        self.p, self.resolved = p, resolved
        self.content_layers, self.style_layers = content_layers, style_layers
        total = float(sum(layer_weights))
        self.layer_weights = np.asarray([w / total for w in layer_weights], np.float32)
        self.blend, self.stages = tuple(blend), stages


def _functions(ext: backbones.Extractor, n_content: int, n_style: int) -> tuple[Any, Any]:
    """The traced (features, loss_and_gradient) pair of an extractor whose layers are content then style layers."""
    key = ("style", n_content, n_style)
    if key in ext.functions:
        return ext.functions[key]
    import tensorflow as tf

    from nbart import objectives

    image_spec = tf.TensorSpec([None, None, 3], tf.float32)
    content_specs = [tf.TensorSpec([1, None, None, ext.channels[name]], tf.float32)
                     for name in ext.layers[:n_content]]
    style_specs = [tf.TensorSpec([1, ext.channels[name], ext.channels[name]], tf.float32)
                   for name in ext.layers[n_content:]]

    # autograph off: these have no tensor-dependent Python control flow, and converting them took ~0.4 s of the
    # first preview (the loss's trace 0.20-0.22 s without it, 0.59-0.61 s with it)
    @tf.function(input_signature=[image_spec], autograph=False)
    def features(image: Any) -> tuple[Any, Any]:
        outputs = ext(image[None])
        return outputs[:n_content], [objectives.gram_matrix(f) for f in outputs[n_content:]]

    @tf.function(input_signature=[image_spec, content_specs, style_specs, tf.TensorSpec([3], tf.float32),
                                  tf.TensorSpec([n_style], tf.float32)], autograph=False)
    def loss_and_gradient(image: Any, content_targets: Any, style_targets: Any, weights: Any,
                          style_layer_weights: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            # Style layers stay in the compute dtype (see objectives.gram_of). With the lean executor each style
            # layer's Gram is taken where the layer's output goes on through the network, so that its share of the
            # gradient waits there for the network's (objectives.gram_junction: a lower peak).
            grams: dict[int, Any] = {}

            def junction(index: int, activations: Any) -> Any:
                activations, grams[index] = objectives.gram_junction(activations)
                return activations

            style_outputs = range(n_content, n_content + n_style)
            taps = {i: functools.partial(junction, i) for i in style_outputs} if ext.lean is not None else None
            outputs = ext(image[None], float32=False, taps=taps)
            content = tf.add_n([objectives.content_loss(tf.cast(f, tf.float32), t)
                                for f, t in zip(outputs[:n_content], content_targets)])
            content = content / n_content
            style_grams = [grams[i] if taps else objectives.gram_of(outputs[i]) for i in style_outputs]
            style = tf.add_n([w * objectives.style_loss(g, t) for g, t, w in
                              zip(style_grams, style_targets, tf.unstack(style_layer_weights))])
            tv = objectives.total_variation(image)
            parts = tf.stack([content, style, tv])
            total = tf.reduce_sum(weights * parts)
        return total, parts, tape.gradient(total, image)

    ext.functions[key] = (features, _InFixedOrder(loss_and_gradient))
    return ext.functions[key]


class _InFixedOrder:
    """Calls a traced tf.function with TensorFlow's single-threaded executor, on a CPU.

    The default executor runs a graph's ops on a pool of threads in whatever order they become ready, so which
    tensors are alive together, and with them the peak, varies from call to call (223-245 MB in use for one 512 px
    style gradient) and the allocator's pool grows to the worst case. The single-threaded executor runs the ops one
    at a time in one topological order (each op still uses every core): no slower here, and the default style run's
    median peak RSS fell ~30 MB (1199 against 1230 MB over 12 and 9 alternating fresh runs). It supports CPU graphs
    only, without reference-typed edges (which grappler may introduce) or v1 control flow: where it refuses a graph,
    the default executor runs it from then on (``fixed_order`` turns False).
    """

    def __init__(self, function: Callable):
        import tensorflow as tf

        self.function = function
        self.fixed_order = not tf.config.list_physical_devices("GPU")

    def __call__(self, *args: Any) -> Any:
        import tensorflow as tf

        if self.fixed_order:
            try:
                with tf.experimental.function_executor_type("SINGLE_THREADED_EXECUTOR"):
                    return self.function(*args)
            except (tf.errors.UnimplementedError, tf.errors.FailedPreconditionError):
                # refused when instantiated, before any op ran (an error of the graph itself recurs below)
                self.fixed_order = False
        return self.function(*args)


def _style_steps(plan: _Plan, content: np.ndarray, styles: list[np.ndarray], stop: threading.Event,
                 notices: list[str], init: np.ndarray | None = None) -> Iterator[StepEvent]:
    import tensorflow as tf

    from nbart import objectives

    p = plan.p
    t0 = time.perf_counter()
    precision = backbones.resolve_precision(p.precision)
    layers = plan.content_layers + plan.style_layers  # an extractor may list a layer twice: it's used twice
    ext = backbones.extractor(plan.resolved.backbone, plan.resolved.weights, precision, layers)
    features, loss_and_gradient = _functions(ext, len(plan.content_layers), len(plan.style_layers))
    weights = tf.constant([p.content_weight, p.style_weight, p.tv_weight], tf.float32)
    style_layer_weights = tf.constant(plan.layer_weights)
    rng = np.random.default_rng(p.seed)
    output_size = plan.stages[-1]
    full_content = _resize(content, output_size)
    chroma = rgb_to_ycbcr(full_content)[..., 1:] if p.preserve_colors else None
    if p.preserve_colors:  # luminance-only transfer (Gatys et al. 2016): styles matched to the content's luminance
        styles = [_luminance(s, like=content) for s in styles]
        content = _luminance(content)

    def finish(x: np.ndarray) -> np.ndarray:
        """An iterate at output size, with the content's colours put back when asked."""
        x = _resize(x, output_size)
        if chroma is None:
            return x
        return ycbcr_to_rgb(np.concatenate([rgb_to_ycbcr(x)[..., :1], chroma], axis=-1))

    step, total, image = 0, len(plan.stages) * p.steps, None
    if init is not None:  # going on from an earlier result: it is the first stage's start
        image = _luminance(init) if p.preserve_colors else init
    for stage, size in enumerate(plan.stages):
        content_s = _resize(content, size)
        content_targets, _ = features(tf.constant(content_s))
        style_grams = []
        for s in styles:
            min_size = plan.resolved.backbone.min_size
            # at least the long side that keeps a thin style's short side within what the backbone accepts
            needed = _long_side_needed(s.shape[:2], min_size)
            style_size = _stage_size(s.shape[1], s.shape[0], max(min_size, needed, round(max(size) * p.style_scale)))
            style_grams.append(features(tf.constant(_resize(s, style_size)))[1])
        style_targets = [objectives.blend_grams(g, plan.blend) for g in zip(*style_grams)]
        if image is not None:
            x0 = _resize(image, size)
        elif p.init == "noise":
            x0 = rng.random((*size, 3), dtype=np.float32)
            x0 = _luminance(x0) if p.preserve_colors else x0
        elif p.init == "style":
            x0 = _resize(styles[0], size)
        else:
            x0 = content_s

        def evaluate(x: Any, content_targets: Any = content_targets, style_targets: Any = style_targets) -> tuple:
            return loss_and_gradient(x, content_targets, style_targets, weights, style_layer_weights)

        optimize = _lbfgs if p.optimizer == "lbfgs" else _adam
        label = f"size {stage + 1}/{len(plan.stages)} · {size[1]}x{size[0]}"
        iterations = optimize(evaluate, x0, p, stop)
        try:
            for x, loss, parts in iterations:
                # The image too: Adam's update with a non-finite gradient leaves a finite loss (computed before
                # the update) beside a NaN image.
                if not (np.isfinite(loss) and np.isfinite(x).all()):
                    notices.append(f"stopped at step {step + 1}: the loss or image became non-finite; "
                                   f"kept the last finite image")
                    return "failed"
                image = x
                step += 1
                yield StepEvent(step, total, stage, len(plan.stages), label, loss, time.perf_counter() - t0,
                                output_size, render=lambda x=x: finish(x), done=step == total,
                                metrics=dict(zip(("content", "style", "tv"), map(float, parts))))
                if stop.is_set():
                    return "stopped"
        finally:
            iterations.close()  # ends L-BFGS's helper thread at once
        if stop.is_set():
            return "stopped"
        if image is None:  # not stopped, yet not one step: the optimizer could not move from the start
            notices.append(f"the optimizer made no progress at {label}; try optimizer='adam' or other weights")
            return "failed"
        step = (stage + 1) * p.steps  # a stage whose optimizer ended early still counts its planned steps
    return "completed"


def _adam(evaluate: Callable, x0: np.ndarray, p: StyleParams, stop: threading.Event) -> Iterator[tuple]:
    """The TensorFlow tutorial's optimizer: Adam(lr, beta_1=0.99, epsilon=0.1), clipping to [0, 1] each step."""
    import keras
    import tensorflow as tf

    image = tf.Variable(x0, dtype=tf.float32)
    optimizer = keras.optimizers.Adam(learning_rate=p.learning_rate, beta_1=0.99, epsilon=0.1)
    for _ in range(p.steps):
        if stop.is_set():
            return
        loss, parts, gradient = evaluate(image)
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        yield image.numpy(), float(loss), parts.numpy()


class _Cancelled(Exception):
    """Raised in L-BFGS's objective to end scipy's run at once when the run is stopped or closed."""


def _lbfgs(evaluate: Callable, x0: np.ndarray, p: StyleParams, stop: threading.Event) -> Iterator[tuple]:
    """scipy's L-BFGS-B, bounded to [0, 1], yielding after each iteration.

    scipy's fmin_l_bfgs_b is a blocking call, so it runs in a helper thread in lock-step with this generator: its
    iteration callback hands the iterate over and waits until the consumer pulls the next event. A stop (or the
    generator being closed) makes the callback raise StopIteration, which ends scipy's run cleanly. Tolerances are
    off so float32 gradients don't end the run early; if the line search gives up, L-BFGS restarts from where it
    is (at most LBFGS_MAX_RESTARTS times without progress).
    """
    import tensorflow as tf
    from scipy.optimize import fmin_l_bfgs_b

    shape = x0.shape
    last_parts: list[Any] = [np.zeros(3)]
    last_loss = [float("nan")]  # at the last evaluated point, which is the iterate when an iteration ends
    # The bounds as one (0, 1) tuple referenced n times. minimize(bounds=Bounds(0, 1)) expands them into n tuples of
    # new floats that live as long as the run: ~110 MB of Python objects at 512 px (measured: peak RSS of the same
    # 40 iterations at n = 437*512*3, 305 MB with minimize, 222 MB with this, identical result).
    bounds = [(0.0, 1.0)] * x0.size

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        if cancel.is_set() or stop.is_set():  # a line search may evaluate many times per step: stop between them
            raise _Cancelled
        loss, parts, gradient = evaluate(tf.constant(x.reshape(shape), tf.float32))
        last_parts[0], last_loss[0] = parts.numpy(), float(loss)
        gradient = gradient.numpy().astype(np.float64).ravel()
        if not (np.isfinite(float(loss)) and np.isfinite(gradient).all()):
            # scipy ends quietly on a non-finite value (even at the start, before any iteration): tell the consumer
            non_finite.set()
            raise _Cancelled
        return float(loss), gradient

    handoff: queue.Queue = queue.Queue()
    proceed = threading.Semaphore(0)
    cancel, non_finite = threading.Event(), threading.Event()

    def callback(xk: np.ndarray) -> None:  # scipy hands a copy of the iterate
        handoff.put(("step", xk, last_loss[0], last_parts[0]))
        proceed.acquire()
        if cancel.is_set():
            raise StopIteration

    def work(x: np.ndarray, iterations: int) -> None:
        try:
            fmin_l_bfgs_b(fun, x, bounds=bounds, m=LBFGS_MAXCOR, factr=0.0, pgtol=0.0, maxiter=iterations,
                          maxfun=iterations * 4, callback=callback)
            handoff.put(("end",))
        except _Cancelled:
            handoff.put(("end",))
        except BaseException as e:  # handed to the consumer's thread, raised there
            handoff.put(("error", e))

    x, done, stalls = x0.astype(np.float64).ravel(), 0, 0
    while done < p.steps and stalls <= LBFGS_MAX_RESTARTS and not stop.is_set():
        worker = threading.Thread(target=work, args=(x, p.steps - done), daemon=True, name="nbart-lbfgs")
        worker.start()
        progressed = False
        try:
            while True:
                message = handoff.get()
                if message[0] == "end":
                    break
                if message[0] == "error":
                    raise message[1]
                _, x, loss, parts = message
                done += 1
                progressed = True
                yield x.reshape(shape).astype(np.float32), loss, parts
                proceed.release()
        finally:
            if worker.is_alive():
                cancel.set()
                proceed.release()
                worker.join()
        if non_finite.is_set():
            yield x.reshape(shape).astype(np.float32), float("nan"), last_parts[0]  # the consumer stops on it
            return
        stalls = 0 if progressed else stalls + 1


@takes(StyleParams)
def style_transfer(content: Any, style: Any, params: StyleParams | None = None, **kwargs: Any) -> Image.Image:
    """Paint ``content`` in the manner of ``style`` and return the result as a PIL image (a notebook shows it).

    ``content`` and ``style`` are anything :func:`nbart.load_image` reads (``"sample:grace_hopper"``,
    ``"sample:starry_night"``, a path, URL, array...); ``style`` may be a list of images. Runs :func:`style_run` to
    the end; its notices are issued as warnings.
    """
    return run_with_notices(style_run(content, style, params, **kwargs))
