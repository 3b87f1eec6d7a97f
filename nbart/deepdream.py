"""Deep Dream: gradient ascent on chosen layers' mean activations, over octaves, with jitter and tiling.

The algorithm of the original DeepDream notebook and the TensorFlow tutorial:

- each step computes the gradient of the layers' mean activations with respect to the image, normalizes it by
  its standard deviation (or, with ``normalize="laplacian"``, each level of its Laplacian pyramid by its own, as
  the original notebook: see :mod:`nbart.pyramid`) and moves the image ``step_size`` along it (pixel values stay
  in [0, 1]);
- each layer's term is divided by its mean activation at the previous step (a constant for the gradient), so
  every layer contributes its *relative* gain and large-valued layers don't drown small ones; ``layer_weights``
  then mix them;
- octaves run from coarse to full size; the detail a dream added at one octave is upscaled and re-injected into
  the next octave's (sharp) image, as the original does;
- before each step the image is rolled by a random jitter; images larger than ``tile_size`` are split into tiles
  whose gradients are computed one at a time (bounded memory), the random roll hiding the tile seams.

Sign convention (all of nbart): objectives are losses to minimize. A dream's loss is the negative weighted mean
activation, so it falls as the dream grows.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from nbart import backbones, control, cost, images, inside, masks, runs
from nbart.errors import ParamError
from nbart.events import Outcome, Pace, Run, StepEvent, Stopped, run_with_notices
from nbart.images import to_float
from nbart.params import DreamParams, takes
from nbart.pyramid import laplacian_normalize
from nbart.tiling import octave_sizes, tiled_gradient, tiled_means, tiles

__all__ = ["dream", "dream_run", "continue_run", "prepare", "DreamPrepared", "octave_sizes", "tiles",
           "tiled_means", "tiled_gradient", "traced_functions"]


@dataclass(eq=False)
class DreamPrepared(runs.Prepared):
    """What a dream of ``params`` uses (see :func:`prepare`): ``specs``, the (layer, channel or None) pairs;
    ``layer_weights``, their weights summing to 1; and, built on first use, ``means(image)`` and
    ``gradient(image, coefficients)`` (see :func:`traced_functions`). Tests may wrap ``gradient``."""

    flip_ahead: ClassVar[bool] = True  # ~0.3 s a step less at any size (nbart.convgrad.flip), ~50 MB more held
    specs: tuple[tuple[str, int | None], ...] = ()
    layer_weights: tuple[float, ...] = ()
    fell_back: bool = False  # the asked layers were replaced: the fallback backbone lacks them
    octaves: int | None = None  # the octaves that run, where fewer than asked fit the image (set by the run)

    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.specs))

    @functools.cached_property
    def _pair(self) -> tuple[Any, Any]:
        return traced_functions(self.extractor, self.specs)

    @functools.cached_property
    def means(self) -> Any:
        return self._pair[0]

    @functools.cached_property
    def gradient(self) -> Any:
        return self._pair[1]

    def inside_step(self, request: inside.Request) -> Any:
        """The inside view's variant of ``gradient`` for ``request`` (see :mod:`nbart.inside`): ``(image,
        coefficients) -> (means, gradient, top_maps of request.layer)``, from one forward pass."""
        ext, act = inside.extractor_for(self, request.layer, self.layers())
        step = _inside_trace(ext, tuple(name for name, _ in self.specs), act)
        channels = np.asarray([-1 if channel is None else channel for _, channel in self.specs], np.int32)
        return lambda image, coefficients: step(image, coefficients, channels)

    def trace(self) -> None:
        """Build the network and trace both functions on a tiny image, as a run's first step would."""
        from nbart.quiet import tensorflow
        tf = tensorflow()

        image = tf.zeros([self.backbone.min_size, self.backbone.min_size, 3], tf.float32)
        self.means(image)  # a run's first step needs the layer means
        self.gradient(image, tf.constant(np.asarray(self.layer_weights, np.float32)))

    def ran(self) -> dict[str, Any]:
        ran = super().ran()
        # the layers that ran, never () for "the defaults": a later change of the defaults can't change a re-run
        ran["layers"] = tuple(name if channel is None else f"{name}:{channel}" for name, channel in self.specs)
        if self.fell_back:
            ran["layer_weights"] = ()
        if self.octaves is not None:
            ran.update(octaves=self.octaves)
        return ran


def prepare(params: DreamParams) -> DreamPrepared:
    """Resolve what a dream of ``params`` uses: backbone and weights (``auto`` may fall back, with a notice), the
    layers (replaced by the fallback backbone's defaults where it lacks them, with a notice) and their weights.

    Cheap: the network, the precision probe and the traced functions are built on first use of ``means`` or
    ``gradient`` (or by :meth:`DreamPrepared.trace`). Raises WeightsError if the weights can't be had here.
    """
    resolved, notices = runs.start(params)
    bb = resolved.backbone
    layers = runs.fallback_layers(params.layers, bb.dream_layers, bb, params.model, "layers", notices)
    fell_back = bool(params.layers) and layers != params.layers
    weights = params.layer_weights if params.layer_weights and not fell_back else (1.0,) * len(layers)
    total = sum(weights)
    return DreamPrepared(params, resolved, notices, specs=tuple(bb.parse_layer(s) for s in layers),
                         layer_weights=tuple(w / total for w in weights), fell_back=fell_back)


def traced_functions(ext: backbones.Extractor, specs: tuple[tuple[str, int | None], ...]) -> tuple[Any, Any]:
    """The (means, means_and_gradient) pair of one (extractor, layer specs), serving every image size.

    ``means(image)`` gives each chosen layer's mean activation (of one channel, for a 'layer:N' spec);
    ``means_and_gradient(image, coefficients)`` also gives the gradient of ``sum(coefficients * means)`` with
    respect to the image (H, W, 3). The traced functions are keyed by the layers only: the channels enter as a
    tensor, so trying channel after channel of a layer never traces again.
    """
    names = tuple(name for name, _ in specs)
    for name, channel in specs:
        if channel is not None and channel >= ext.channels[name]:
            from nbart.params import ParamError

            raise ParamError(f"layer {name} has channels 0..{ext.channels[name] - 1} (got {channel})")
    key = ("dream", names)
    if key not in ext.functions:
        ext.functions[key] = _trace(ext, names)
    means, means_and_gradient = ext.functions[key]
    # numpy, not a tf constant: the Prepared holding these may be freed in a studio's worker thread as it ends,
    # and freeing an eager tensor there let a waiting thread see the worker alive for a few ms more
    channels = np.asarray([-1 if channel is None else channel for _, channel in specs], np.int32)
    return (lambda image: means(image, channels),
            lambda image, coefficients: means_and_gradient(image, coefficients, channels))


def _trace(ext: backbones.Extractor, names: tuple[str, ...]) -> tuple[Any, Any]:
    from nbart.quiet import tensorflow
    tf = tensorflow()

    index = [ext.layers.index(name) for name in names]

    def layer_means(image: Any, channels: Any) -> Any:
        return _layer_means(ext(image[None]), index, channels)

    image_spec = tf.TensorSpec([None, None, 3], tf.float32)
    channel_spec = tf.TensorSpec([len(names)], tf.int32)

    # autograph off: no tensor-dependent Python control flow here, and converting the network's Python to graph
    # code took ~2.8 s of a fresh process's first dream step (2-core AVX2 EPYC; tracing alone takes ~0.5 s)
    @tf.function(input_signature=[image_spec, channel_spec], autograph=False)
    def means(image: Any, channels: Any) -> Any:
        return layer_means(image, channels)

    @tf.function(input_signature=[image_spec, tf.TensorSpec([len(names)], tf.float32), channel_spec], autograph=False)
    def means_and_gradient(image: Any, coefficients: Any, channels: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            m = layer_means(image, channels)
            objective = tf.reduce_sum(coefficients * m)
        return m, tape.gradient(objective, image)

    return means, means_and_gradient


def _layer_means(activations: list, index: list[int], channels: Any) -> Any:
    """Traced: the mean activation of each dream layer (``activations[index[k]]``), of one channel where
    ``channels[k] >= 0``, as a (len(index),) tensor: what a dream raises."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    out = []
    for k, i in enumerate(index):
        per_channel = tf.reduce_mean(activations[i], axis=[0, 1, 2])
        channel = channels[k]  # -1: the whole layer
        out.append(tf.where(channel < 0, tf.reduce_mean(per_channel), tf.gather(per_channel, tf.maximum(channel, 0))))
    return tf.stack(out)


def _inside_trace(ext: backbones.Extractor, names: tuple[str, ...], act: int) -> Any:
    """The dream step's inside-view variant (see :mod:`nbart.inside`), traced once per extractor: the same
    ``(means, gradient)`` as ``means_and_gradient`` from the same forward pass, plus :func:`nbart.inside.top_maps`
    of the extractor's output ``act``."""
    key = ("dream-inside", names, act)
    if key in ext.functions:
        return ext.functions[key]
    from nbart.quiet import tensorflow
    tf = tensorflow()

    index = [ext.layers.index(name) for name in names]

    # autograph off: no tensor-dependent Python control flow here (and autograph re-reads the source to convert)
    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32),
                                  tf.TensorSpec([len(names)], tf.float32), tf.TensorSpec([len(names)], tf.int32)],
                 autograph=False)
    def step(image: Any, coefficients: Any, channels: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            activations = ext(image[None])
            m = _layer_means(activations, index, channels)
            objective = tf.reduce_sum(coefficients * m)
        return m, tape.gradient(objective, image), inside.top_maps(activations[act])

    ext.functions[key] = step
    return step


@takes(DreamParams)
def dream_run(image: Any, params: DreamParams | None = None, **kwargs: Any) -> Run:
    """Start a Deep Dream on ``image`` and return its :class:`~nbart.events.Run` (an iterator of step events).

    ``image`` is anything :func:`nbart.load_image` reads. Parameters come as a :class:`DreamParams` and/or
    keywords (see :func:`dream`); ``seed=None`` is replaced by a concrete seed, kept on ``run.params``. Bad
    parameters and unreadable images raise before any work; a run whose expected peak memory exceeds what this
    process may use raises :class:`nbart.cost.WontFit` (a ParamError naming a ``max_size`` that fits) unless
    ``force=True``; nothing is computed until the first event is pulled. ``mask`` (where to dream; see
    :mod:`nbart.masks`) and ``guide`` (an image to dream toward) may be images given in code (a PIL image, an array,
    a mask maker's result); the params then record ``"<ndarray>"`` and the like.
    """
    for name in ("mask", "guide"):
        if isinstance(kwargs.get(name), (list, tuple)):  # one mask per style image is style transfer's
            raise ParamError(f"a dream takes one {name} image (got a list of {len(kwargs[name])})")
    kwargs, held = masks.hold_images(kwargs, ("mask", "guide"))
    p = runs.with_seed(DreamParams.from_kwargs(params, **kwargs))
    prepared = prepare(p)
    bb, notices = prepared.backbone, prepared.notices
    start, original = images.prepare(image, p.max_size, bb.min_size)
    if min(start.size) > round(min(original) * min(1.0, p.max_size / max(original))):  # beyond the downscale
        notices.append(runs.upscaled("image", original, start.size, bb))
    sizes = octave_sizes(start.size[1], start.size[0], p.octaves, p.octave_scale, bb.min_size)
    if len(sizes) < p.octaves:  # the coarse octaves would be smaller than the backbone accepts
        prepared.octaves = len(sizes)
        notices.append(f"running {len(sizes)} of the {p.octaves} octaves asked: at {start.size[0]}x{start.size[1]} "
                       f"px with octave_scale {p.octave_scale:g}, the others would have a side under the "
                       f"{bb.min_size} px {bb.name} accepts; raise max_size or lower octave_scale for more")
    cost.check_fits("dream", (start,), p)  # a run that won't fit in memory is refused here, unless p.force

    mask = guide = None
    if p.mask:
        mask, notice = masks.load_mask(masks.source_of("mask", p.mask, held), (start.size[1], start.size[0]))
        notices.extend([notice] if notice else [])
    if p.guide:  # at most 224 px, the size of the original notebook's guides: it bounds the matching's memory
        with masks.naming("guide"):  # "guide: no such file ...": the option named, as mask's errors do
            guide = to_float(images.prepare(masks.source_of("guide", p.guide, held), max_size=max(224, bb.min_size),
                                            min_size=bb.min_size, what="guide image")[0])

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        return _dream_steps(to_float(start), prepared, sizes, stop, mask, guide)

    def continued(run: Run, steps: int) -> Run:
        follow = continue_run(run.image(), run.params, steps, **held)
        follow.inputs = run.inputs
        return follow

    return Run("dream", p, steps, len(sizes) * p.steps, start, notices, prepared=prepared,
               inputs=(runs.describe(image),), continue_with=continued)


def continue_run(image: Any, params: DreamParams, steps: int, **images: Any) -> Run:
    """A dream that goes on from ``image`` (an earlier result) for ``steps`` more steps at its full size: one
    octave, since the octaves were done by the run that made it; the other parameters are ``params``'. ``images``
    gives again the ``mask``/``guide`` images given in code, if any."""
    return dream_run(image, params.replace(octaves=1, steps=steps), **images)


def _dream_steps(original: np.ndarray, prepared: DreamPrepared, sizes: list[tuple[int, int]],
                 stop: threading.Event, mask: np.ndarray | None = None,
                 guide: np.ndarray | None = None) -> Iterator[StepEvent]:
    from nbart.quiet import tensorflow
    tf = tensorflow()

    t0 = time.perf_counter()
    p, notices = prepared.params, prepared.notices
    means_fn, gradient_fn = prepared.means, prepared.gradient
    controlled = mask is not None or guide is not None  # nbart.control: the mask rides as a fourth channel
    if controlled:
        names = tuple(name for name, _ in prepared.specs)
        guides = None if guide is None else control.guide_features(prepared.extractor, names, guide)
        means_fn, gradient_fn = control.dream_functions(prepared.extractor, prepared.specs, guides)
        full_mask = tf.constant(np.ones(original.shape[:2], np.float32) if mask is None else mask)[..., None]
    min_size = prepared.backbone.min_size
    weights = np.asarray(prepared.layer_weights, np.float32)
    rng = np.random.default_rng(p.seed)
    full = tf.constant(original)
    full_size = tuple(original.shape[:2])

    def resize(x: Any, size: tuple[int, int]) -> Any:
        return x if tuple(x.shape[:2]) == size else tf.image.resize(x, size, antialias=True)

    def composite(image: Any, base: Any) -> Any:
        """The dream at full size: the sharp original plus the upscaled detail the dream added."""
        if tuple(image.shape[:2]) == full_size:
            return image.numpy()
        return tf.clip_by_value(full + resize(image - base, full_size), 0.0, 1.0).numpy()

    small_originals: dict[tuple[int, int], Any] = {}

    def composite_small(image: Any, base: Any, size: tuple[int, int]) -> Any:
        """:func:`composite` made straight at a preview ``size``: the original and the detail, both resized."""
        if tuple(image.shape[:2]) == full_size:
            return None  # already full size: the event downsizes the full image, which is cheaper
        if size not in small_originals:
            small_originals.clear()
            small_originals[size] = resize(full, size)
        return tf.clip_by_value(small_originals[size] + resize(image - base, size), 0.0, 1.0).numpy()

    step, total, detail, means = 0, len(sizes) * p.steps, None, None
    pace = Pace([h * w for h, w in sizes], p.steps, **cost.pace_hints(prepared.backbone.name, prepared.precision))
    for octave, size in enumerate(sizes):
        base = resize(full, size)
        image = base if detail is None else tf.clip_by_value(base + resize(detail, size), 0.0, 1.0)
        tiled = max(size) > p.tile_size
        octave_mask = tf.clip_by_value(resize(full_mask, size), 0.0, 1.0) if controlled else None
        for _ in range(p.steps):
            if stop.is_set():
                return Outcome.STOPPED
            shift = tuple(int(s) for s in rng.integers(-p.jitter, p.jitter + 1, size=2)) if p.jitter else (0, 0)
            if tiled:  # move the tile seams to a new random place at every step
                shift = (shift[0] + int(rng.integers(0, p.tile_size)), shift[1] + int(rng.integers(0, p.tile_size)))
            seen = image if not controlled else tf.concat([image, octave_mask], axis=-1)
            request, looked = getattr(stop, "inside", None), []  # a consumer's inside view (nbart.inside)
            step_fn = gradient_fn
            if request is not None and not tiled and not controlled:  # the variant that also gives the maps
                inside_fn = prepared.inside_step(request)

                def step_fn(x: Any, c: Any, inside_fn: Any = inside_fn, looked: list = looked) -> tuple[Any, Any]:
                    m, g, maps = inside_fn(x, c)
                    looked.append(maps)
                    return m, g
            try:
                if means is None:  # tiled too: a big first octave must not run the network on the whole image
                    means = tiled_means(means_fn, seen, p.tile_size, stop, min_size)
                # Each layer's weight over its current mean activation: every layer contributes its relative gain.
                coefficients = tf.constant(weights / (np.abs(means) + 1e-3), tf.float32)
                means, gradient = tiled_gradient(step_fn, seen, coefficients, p.tile_size, shift, stop, min_size)
            except Stopped:
                return Outcome.STOPPED
            loss = -float(np.dot(weights, means))
            if step == 0 and math.isfinite(loss) and not bool(tf.reduce_any(gradient != 0.0)):
                # nothing to climb (a layer whose activation is 0 everywhere): the run goes on, leaving it as is
                notices.append(f"nothing to dream at {size[1]}x{size[0]}: the layers' activation "
                               f"({-loss:.4g}) has a zero gradient, so the image stays as it is; try other layers")
            if not (math.isfinite(loss) and bool(tf.reduce_all(tf.math.is_finite(gradient)))):
                notices.append(runs.non_finite(step + 1, "the loss or gradient"))
                return Outcome.FAILED
            if controlled:  # the step times the mask, normalized over the masked pixels only
                gradient = raw = gradient[..., :3]
                if p.normalize == "laplacian":  # the pyramid's smoothing first; the mask then bounds where it acts
                    gradient = laplacian_normalize(gradient)
                spread = tf.sqrt(tf.reduce_sum(octave_mask * tf.square(gradient)) / (3.0 * tf.reduce_sum(octave_mask)))
                gradient = octave_mask * gradient / (spread + 1e-8)
            elif p.normalize == "laplacian":  # the original notebook's Laplacian-pyramid normalization
                raw = gradient
                gradient = laplacian_normalize(gradient)
            else:
                raw = gradient  # of the objective (the layers' relative gains), before the step's normalisation
                gradient = gradient / (tf.math.reduce_std(gradient) + 1e-8)
            image = tf.clip_by_value(image + p.step_size * gradient, 0.0, 1.0)
            step += 1
            elapsed = time.perf_counter() - t0
            yield StepEvent(
                step=step, total=total, stage=octave, stages=len(sizes),
                label=f"octave {octave + 1}/{len(sizes)} · {size[1]}x{size[0]}",
                loss=loss, elapsed=elapsed, size=full_size, eta=pace.seconds_left(step, elapsed),
                render=lambda image=image, base=base: composite(image, base), done=step == total,
                metrics={"activation": -loss},
                inside=None if request is None else _step_inside(prepared, request, means, raw, looked, shift, size),
                render_small=lambda size, image=image, base=base: composite_small(image, base, size),
            )
        detail = image - base
    return Outcome.COMPLETED


def _step_inside(prepared: DreamPrepared, request: inside.Request, means: np.ndarray, gradient: Any, looked: list,
                 shift: tuple[int, int], size: tuple[int, int]) -> inside.StepInside:
    """A dream step's inside view: each layer's term of the loss (minus its weight times its mean activation), its
    gain (the mean), the step's gradient and, untiled, the layer's maps rolled back by the step's jitter."""
    names = [name if channel is None else f"{name}:{channel}" for name, channel in prepared.specs]
    weights = np.asarray(prepared.layer_weights, np.float64)
    maps, note = None, None
    if looked:
        from nbart.quiet import tensorflow
        tf = tensorflow()

        images, index, top = looked[0]
        h, w = int(images.shape[1]), int(images.shape[2])  # the jitter, in the maps' pixels
        images = tf.roll(images, [-round(shift[0] * h / size[0]), -round(shift[1] * w / size[1])], axis=[1, 2])
        maps = (images, index, top)
    elif max(size) > prepared.params.tile_size:
        note = f"no activation maps for a tiled dream (the image is larger than tile_size {prepared.params.tile_size})"
    else:
        note = "no activation maps for a masked or guided dream"
    return inside.StepInside(terms=dict(zip(names, (-weights * means).tolist())), layer=request.layer,
                             gains=dict(zip(names, np.asarray(means, np.float64).tolist())), gradient=gradient,
                             maps=maps, note=note)


@takes(DreamParams)
def dream(image: Any, params: DreamParams | None = None, **kwargs: Any) -> Image.Image:
    """Deep-dream ``image`` and return the result as a PIL image (a notebook shows it).

    ``image`` is anything :func:`nbart.load_image` reads: a path, URL, ``"sample:grace_hopper"``, bytes, array or
    PIL image. Runs :func:`dream_run` to the end; its notices (such as a fallback to the offline backbone) are
    issued as warnings.
    """
    run = dream_run(image, params, **kwargs)
    return run_with_notices(run)
