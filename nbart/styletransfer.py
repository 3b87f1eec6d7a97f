"""Neural Style Transfer (Gatys et al.): optimize an image to keep a content's features and a style's textures.

- Losses (see :mod:`nbart.objectives`): content loss on the content layers, a style loss on the style layers
  (``style_loss``: Gram matrices, Wasserstein-2 or sliced Wasserstein, see :mod:`nbart.stylelosses`; per-layer
  weights allowed; several style images blended by ``style_blend``), total variation.
  All are relative means, so the weights mean the same thing at any size and on any backbone.
- Optimizers (see :mod:`nbart.optimizers`): ``lbfgs`` (scipy's L-BFGS-B, bounded to the pixel range [0, 1]) and
  ``adam`` (the TensorFlow tutorial's settings).
- Multi-resolution (see :mod:`nbart.styleplan`): optimize at each of ``sizes`` (long side, coarse to fine; by
  default ``ladder``'s: halves of ``max_size``, or sizes a factor sqrt(2) apart), upscaling the result as the next
  start; Adam's moments are resized to the next size, L-BFGS restarts at each. ``preserve_colors`` transfers on
  luminance only and puts the content's chroma back.
- Iterate averaging (``average_decay`` > 0, as crowsonkb/style-transfer-pytorch): each step shows a bias-corrected
  exponential moving average of the size's iterates (:class:`nbart.optimizers.IterateAverage`), which the run
  saves and the next size starts from; the step's ``loss`` and ``metrics`` stay the optimizer's iterate's.

A run is an iterator of :class:`~nbart.events.StepEvent` (one per optimizer iteration), stoppable at any step.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from nbart import backbones, control, cost, images, inside, masks, optimizers, pixels, runs, styleplan
from nbart.events import Outcome, Pace, Run, StepEvent, run_with_notices
from nbart.executor import SingleThreaded as _InFixedOrder
from nbart.images import ImageError, load_image, to_float
from nbart.params import COLOR_MODES, ParamError, StyleParams, takes
from nbart.pixels import rgb_to_ycbcr, ycbcr_to_rgb

__all__ = ["style_transfer", "style_run", "continue_run", "prepare", "StylePrepared", "rgb_to_ycbcr",
           "ycbcr_to_rgb"]


# Adam's state from one size to the next (issue 21): "resize" carries its moments over, resized (as
# crowsonkb/style-transfer-pytorch's scale_adam), "reset" starts each size afresh. L-BFGS always restarts per size:
# its curvature pairs belong to the previous size's objective and scipy's L-BFGS-B takes none. The benchmark
# (benchmarks/bench_averaging.py) flips this to measure both.
ADAM_ACROSS_SIZES = "resize"


@dataclass(eq=False)
class StylePrepared(runs.Prepared):
    """What a style transfer of ``params`` uses (see :func:`prepare`): the content and style layers (after any
    fallback), the style layers' weights summing to 1, and, built on first use, the traced ``features(image) ->
    (content features, style summaries)`` (Grams for ``style_loss="gram"``: see
    :func:`nbart.stylelosses.summaries`) and ``loss_and_gradient(image, content_targets, style_targets,
    loss_weights (content, style, tv), style_layer_weights) -> (loss, parts, gradient)``. Tests may wrap either."""

    content_layers: tuple[str, ...] = ()
    style_layers: tuple[str, ...] = ()
    layer_weights: np.ndarray = None  # type: ignore[assignment]  # float32 (n_style,), sums to 1
    fell_back: tuple[bool, bool] = (False, False)  # (content, style) layers replaced: the fallback lacks them

    def layers(self) -> tuple[str, ...]:
        return self.content_layers + self.style_layers  # an extractor may list a layer twice: it's used twice

    @functools.cached_property
    def _pair(self) -> tuple[Any, Any]:
        return _functions(self.extractor, len(self.content_layers), len(self.style_layers), self.params.style_loss)

    @functools.cached_property
    def features(self) -> Any:
        return self._pair[0]

    @functools.cached_property
    def loss_and_gradient(self) -> Any:
        return self._pair[1]

    def inside_step(self, request: inside.Request) -> Any:
        """The inside view's variant of ``loss_and_gradient`` for ``request`` (see :mod:`nbart.inside`): the same
        arguments, and after (loss, parts, gradient) the per-layer terms, the picture's Grams and the layer's maps."""
        ext, act = inside.extractor_for(self, request.layer, self.content_layers)
        return _inside_function(ext, len(self.content_layers), len(self.style_layers), act, self.params.style_loss)

    def trace(self) -> None:
        """Build the network and trace both functions on a tiny image, as a run's first step would."""
        import scipy.optimize  # noqa: F401  L-BFGS's first iteration would import it: 0.3-0.5 s of the first preview

        from nbart.quiet import tensorflow
        tf = tensorflow()

        from nbart import stylelosses

        image = tf.fill([self.backbone.min_size, self.backbone.min_size, 3], 0.5)
        content_targets, summaries = self.features(image)
        n = len(self.style_layers)
        targets = stylelosses.blend_targets(self.params.style_loss, [summaries], (1.0,),
                                            _locations(summaries, self.params.style_loss), 0, 0)
        self.loss_and_gradient(image, content_targets, targets, tf.constant([1.0, 1.0, 1.0], tf.float32),
                               tf.fill([n], 1.0 / n))

    def ran(self) -> dict[str, Any]:
        ran = super().ran()
        # the layers that ran, never () for "the defaults": a later change of the defaults can't change a re-run
        ran.update(content_layers=tuple(self.content_layers), style_layers=tuple(self.style_layers))
        if self.fell_back[1]:
            ran["style_layer_weights"] = ()
        return ran


def prepare(params: StyleParams) -> StylePrepared:
    """Resolve what a style transfer of ``params`` uses: backbone and weights (``auto`` may fall back, with a
    notice), the content and style layers (replaced by the fallback backbone's defaults where it lacks them, with a
    notice) and the style layers' weights.

    Cheap: the network, the precision probe and the traced functions are built on first use of ``features`` or
    ``loss_and_gradient`` (or by :meth:`StylePrepared.trace`). Raises WeightsError if the weights can't be had.
    """
    p = params
    resolved, notices = runs.start(p)
    bb = resolved.backbone
    content_layers = runs.fallback_layers(p.content_layers, bb.content_layers, bb, p.model, "content layers", notices)
    style_layers = runs.fallback_layers(p.style_layers, bb.style_layers, bb, p.model, "style layers", notices)
    layer_weights = p.style_layer_weights if style_layers == (p.style_layers or bb.style_layers) and \
        p.style_layer_weights else (1.0,) * len(style_layers)
    total = float(sum(layer_weights))
    fell_back = (bool(p.content_layers) and content_layers != p.content_layers,
                 bool(p.style_layers) and style_layers != p.style_layers)
    return StylePrepared(p, resolved, notices, content_layers=content_layers, style_layers=style_layers,
                         layer_weights=np.asarray([w / total for w in layer_weights], np.float32), fell_back=fell_back)


@takes(StyleParams)
def style_run(content: Any, style: Any, params: StyleParams | None = None, *, init_image: Any = None,
              **kwargs: Any) -> Run:
    """Start a style transfer and return its :class:`~nbart.events.Run` (an iterator of step events).

    ``content`` is anything :func:`nbart.load_image` reads; ``style`` is one such image or a list of them (blended
    by ``style_blend``). ``init_image`` (optional, any image) is the starting image instead of ``init``: a previous
    result, to go on optimizing it (see :func:`continue_run`). ``mask`` (a path, PIL image, array or a
    :mod:`nbart.masks` maker's result; or a list of them, one per style image) and ``color`` (a keyword or a palette
    image) may be images given in code; the params then record ``"<ndarray>"`` and the like. ``seed=None`` is
    replaced by a concrete seed, kept on ``run.params``. Bad parameters and unreadable images raise before any work;
    a run whose expected peak memory exceeds what this process may use raises :class:`nbart.cost.WontFit` (a
    ParamError naming a ``max_size`` that fits) unless ``force=True``; nothing is computed until the first event is
    pulled.
    """
    kwargs, held = masks.hold_images(kwargs, ("mask", "color"))
    p = runs.with_seed(StyleParams.from_kwargs(params, **kwargs))
    style_sources = list(style) if isinstance(style, (list, tuple)) else [style]
    if not style_sources:
        raise ParamError("give at least one style image")
    blend = p.style_blend or (1.0,) * len(style_sources)
    if len(blend) != len(style_sources):
        raise ParamError(f"style_blend needs one weight per style image ({len(style_sources)}) (got {len(blend)})")
    prepared = prepare(p)
    bb, notices = prepared.backbone, prepared.notices
    # Never decoded larger than the largest size asked for (big JPEGs decode at a fraction of their size).
    content_img, original = images.prepare(content, max_size=p.resolution_sizes()[-1], what="content image")
    stages = styleplan.stage_sizes(content_img.size, original, p.max_size, p.sizes, bb.min_size, bb.name,
                                  p.ladder)
    style_cap = max(bb.min_size, round(max(stages[-1]) * p.style_scale))
    styles = []
    for source in style_sources:
        style_img, (ow, oh) = images.prepare(source, max_size=style_cap)
        # A thin style is upscaled at each stage until its short side reaches the backbone's minimum (a texture's
        # size is secondary); only one so thin that this would cost more than a square style does is refused.
        grown = runs.long_side_for(style_img.size, bb.min_size)
        if grown * bb.min_size > max(style_cap, 512) ** 2:
            raise ImageError(f"style image is too thin: {ow}x{oh} px would have to grow to {grown} px long for its "
                             f"short side to reach the {bb.min_size} px {bb.name} accepts; crop it")
        styles.append(style_img)
    output_size = stages[-1]
    if not p.sizes and min(output_size) > min(content_img.size) and max(content_img.size) < p.max_size:
        notices.append(runs.upscaled("content", original, output_size[::-1], bb))
    start = content_img.resize(output_size[::-1], Image.Resampling.LANCZOS) if content_img.size != output_size[::-1] \
        else content_img
    with masks.naming("init_image"):
        init = to_float(load_image(init_image)) if init_image is not None else None
    cost.check_fits("style", (content_img, styles), p)  # a run that won't fit in memory is refused here
    region_masks = _region_masks(p, held, len(style_sources), output_size, notices)
    palette = None
    if p.color not in COLOR_MODES:
        with masks.naming("color"):
            palette = to_float(images.prepare(masks.source_of("color", p.color, held), max_size=512,
                                              what="palette image")[0])

    def steps(stop: threading.Event) -> Iterator[StepEvent]:
        start_image = init
        if start_image is None and p.init == "fast":  # the first stage starts from the instant stylization
            from nbart.fast import fast_start

            start_image = fast_start(content_img, style_sources, blend, p.preserve_colors)
        return _style_steps(prepared, stages, tuple(blend), to_float(content_img), [to_float(s) for s in styles],
                            stop, start_image, region_masks, palette)

    def continue_with(run: Run, steps: int) -> Run:
        follow = continue_run(run.image(), content, style, run.params, steps, **held)
        follow.inputs = run.inputs
        return follow

    return Run("style", p, steps, len(stages) * p.steps, start, notices, prepared=prepared,
               inputs=tuple(runs.describe(s) for s in [content, *style_sources]), continue_with=continue_with)


def continue_run(image: Any, content: Any, style: Any, params: StyleParams, steps: int, **images: Any) -> Run:
    """A style transfer that goes on from ``image`` (an earlier result of ``content`` and ``style``; anything
    :func:`nbart.load_image` reads) for ``steps`` more steps at the image's own size, starting from it; the other
    parameters are ``params``'. ``images`` gives again the ``mask``/``color`` images given in code, if any."""
    image = load_image(image)
    return style_run(content, style, params.replace(sizes=(max(image.size),), steps=steps), init_image=image,
                     **images)


def _region_masks(p: StyleParams, held: dict[str, Any], n_styles: int, size: tuple[int, int],
                  notices: list[str]) -> list[np.ndarray] | None:
    """The masks of a run at its output ``size`` (height, width): one (the styles, blended, apply there) or one per
    style image (each paints its region); None without masks. Resized masks get a notice; bad ones raise."""
    if not p.mask:
        return None
    sources = masks.source_of("mask", p.mask, held)
    sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    if len(sources) not in (1, n_styles):
        raise ParamError(f"mask needs one mask, or one per style image ({n_styles}) (got {len(sources)})")
    out = []
    for i, source in enumerate(sources):
        mask, notice = masks.load_mask(source, size, what=f"mask {i + 1}" if len(sources) > 1 else "mask")
        out.append(mask)
        if notice:
            notices.append(notice)
    return out


def _functions(ext: backbones.Extractor, n_content: int, n_style: int, style_loss: str = "gram") -> tuple[Any, Any]:
    """The traced (features, loss_and_gradient) pair of an extractor whose layers are content then style layers;
    the style term is ``style_loss``'s (see :mod:`nbart.stylelosses`)."""
    key = ("style", n_content, n_style) + (() if style_loss == "gram" else (style_loss,))
    if key in ext.functions:
        return ext.functions[key]
    from nbart.quiet import tensorflow
    tf = tensorflow()

    from nbart import stylelosses

    image_spec = tf.TensorSpec([None, None, 3], tf.float32)
    content_specs = [tf.TensorSpec([1, None, None, ext.channels[name]], tf.float32)
                     for name in ext.layers[:n_content]]
    style_specs = stylelosses.target_specs(style_loss, [ext.channels[name] for name in ext.layers[n_content:]])

    # autograph off: these have no tensor-dependent Python control flow, and converting them took ~0.4 s of the
    # first preview (the loss's trace 0.20-0.22 s without it, 0.59-0.61 s with it)
    @tf.function(input_signature=[image_spec], autograph=False)
    def features(image: Any) -> tuple[Any, Any]:
        outputs = ext(image[None])
        return outputs[:n_content], stylelosses.summaries(style_loss, outputs[n_content:])

    @tf.function(input_signature=[image_spec, content_specs, style_specs, tf.TensorSpec([3], tf.float32),
                                  tf.TensorSpec([n_style], tf.float32)], autograph=False)
    def loss_and_gradient(image: Any, content_targets: Any, style_targets: Any, weights: Any,
                          style_layer_weights: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            contents, styles, tv, _, _ = _terms(ext, n_content, n_style, image, content_targets, style_targets,
                                                style_layer_weights, style_loss)
            parts = tf.stack([tf.add_n(contents) / n_content, tf.add_n(styles), tv])
            total = tf.reduce_sum(weights * parts)
        return total, parts, tape.gradient(total, image)

    ext.functions[key] = (features, _InFixedOrder(loss_and_gradient))
    return ext.functions[key]


def _terms(ext: backbones.Extractor, n_content: int, n_style: int, image: Any, content_targets: Any,
           style_targets: Any, style_layer_weights: Any,
           style_loss: str = "gram") -> tuple[list, list, Any, list, list]:
    """Traced: the loss's terms at ``image`` (H, W, 3): per content layer, per style layer (``style_loss``'s, see
    :mod:`nbart.stylelosses`, weighted by ``style_layer_weights``) and the total variation; with the features of the
    extractor's non-style layers and the picture's Gram matrices of the style layers (``[]`` for a loss that doesn't
    compute them). The one loss both the step and its inside view (:func:`_inside_function`) run."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    from nbart import objectives, stylelosses

    style = range(n_content, n_content + n_style)
    if style_loss == "gram":  # the Gram matrices at the lower memory peak of nbart.grams (inside the lean network)
        features, style_grams = ext.features_and_grams(image[None], style)
        raw = [objectives.style_loss(g, t) for g, t in zip(style_grams, style_targets)]
    else:
        features, raw = stylelosses.layer_losses(style_loss, ext, image[None], n_content, n_style, style_targets)
        style_grams = []
    contents = [objectives.content_loss(f, t) for f, t in zip(features[:n_content], content_targets)]
    styles = [w * r for r, w in zip(raw, tf.unstack(style_layer_weights))]
    return contents, styles, objectives.total_variation(image), features, style_grams


def _inside_function(ext: backbones.Extractor, n_content: int, n_style: int, act: int,
                     style_loss: str = "gram") -> Any:
    """The step's inside-view variant (see :mod:`nbart.inside`), traced once per extractor: the same loss and
    gradient as ``loss_and_gradient`` from the same forward pass, plus the per-layer content and style terms (n,),
    the picture's Gram matrices and :func:`nbart.inside.top_maps` of the non-Gram layer at index ``act``."""
    key = ("style-inside", n_content, n_style, act, style_loss)
    if key in ext.functions:
        return ext.functions[key]
    from nbart.quiet import tensorflow
    tf = tensorflow()

    channels = [ext.channels[name] for name in ext.layers]
    content_specs = [tf.TensorSpec([1, None, None, c], tf.float32) for c in channels[:n_content]]
    from nbart import stylelosses

    style_specs = stylelosses.target_specs(style_loss, channels[n_content:n_content + n_style])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32), content_specs, style_specs,
                                  tf.TensorSpec([3], tf.float32), tf.TensorSpec([n_style], tf.float32)],
                 autograph=False)
    def step(image: Any, content_targets: Any, style_targets: Any, weights: Any, style_layer_weights: Any) -> tuple:
        with tf.GradientTape() as tape:
            tape.watch(image)
            contents, styles, tv, features, grams = _terms(ext, n_content, n_style, image, content_targets,
                                                           style_targets, style_layer_weights, style_loss)
            parts = tf.stack([tf.add_n(contents) / n_content, tf.add_n(styles), tv])
            total = tf.reduce_sum(weights * parts)
        return (total, parts, tape.gradient(total, image), tf.stack(contents) / n_content, tf.stack(styles), grams,
                inside.top_maps(features[act]))

    ext.functions[key] = _InFixedOrder(step)
    return ext.functions[key]


def _locations(summaries: list, style_loss: str) -> list[int]:
    """H*W of each style layer's activations, from an image's summaries (only sliced_wasserstein needs them)."""
    if style_loss != "sliced_wasserstein":
        return [0] * len(summaries)
    return [int(f.shape[1]) * int(f.shape[2]) for f in summaries]


def _style_steps(prepared: StylePrepared, stages: list[tuple[int, int]], blend: tuple[float, ...],
                 content: np.ndarray, styles: list[np.ndarray], stop: threading.Event,
                 init: np.ndarray | None = None, region_masks: list[np.ndarray] | None = None,
                 palette: np.ndarray | None = None) -> Iterator[StepEvent]:
    from nbart.quiet import tensorflow
    tf = tensorflow()

    from nbart import stylelosses

    p, notices = prepared.params, prepared.notices
    t0 = time.perf_counter()
    features, loss_and_gradient = prepared.features, prepared.loss_and_gradient
    weights = tf.constant([p.content_weight, p.style_weight, p.tv_weight], tf.float32)
    style_layer_weights = tf.constant(prepared.layer_weights)
    min_size = prepared.backbone.min_size
    rng = np.random.default_rng(p.seed)
    output_size = stages[-1]
    full_content = pixels.resize(content, output_size)
    # colour control (Gatys et al. 2016, "Preserving color in neural artistic style transfer"): grey content and
    # grey styles make a grey picture (the network's colour channels would otherwise tint it)
    grey = p.color == "style" and pixels.is_grey(content) and all(pixels.is_grey(s) for s in styles)
    luminance_only = p.color == "luminance" or grey
    reference = full_content if p.color == "histogram" else palette  # whose colours a result takes
    if reference is not None:  # the styles in the reference's colours first, the result matched again at the end
        styles = [pixels.match_colors(s, reference) for s in styles]
    chroma = pixels.rgb_to_ycbcr(full_content)[..., 1:] if luminance_only else None
    if luminance_only:  # luminance-only transfer (Gatys et al. 2016): styles matched to the content's luminance
        styles = [pixels.luminance(s, like=content) for s in styles]
        content = pixels.luminance(content)

    def finish(x: np.ndarray) -> np.ndarray:
        """An iterate at output size, with the content's colours put back (or the reference's) when asked."""
        x = pixels.resize(x, output_size)
        if chroma is not None:
            x = pixels.ycbcr_to_rgb(np.concatenate([pixels.rgb_to_ycbcr(x)[..., :1], chroma], axis=-1))
        return x if reference is None else pixels.match_colors(x, reference)

    masked_loss = None
    if region_masks is not None:  # spatial control (nbart.control): guided Gram matrices, one region per mask
        masked_loss = control.style_masked_loss(prepared.extractor, len(prepared.content_layers),
                                                len(prepared.style_layers))
        region_weights = tf.constant(np.asarray(blend if len(region_masks) > 1 else (1.0,), np.float32)
                                     / float(sum(blend) if len(region_masks) > 1 else 1.0))

    step, total, image = 0, len(stages) * p.steps, None
    adam_state: dict | None = {} if p.optimizer == "adam" and ADAM_ACROSS_SIZES == "resize" else None
    looked: list = []  # the last evaluation's inside view: (request, the variant's outputs, style targets)
    # a stage starts with forward passes for its targets (the content and each style) and, for L-BFGS, an
    # evaluation at its start point: in steady steps' cost, per pixel
    targets = cost.FORWARD_SHARE * (1 + len(styles))
    share = (1.0 + targets) / cost.LBFGS_EVALUATIONS if p.optimizer == "lbfgs" else targets
    pace = Pace([h * w for h, w in stages], p.steps, start_share=share,
                **cost.pace_hints(prepared.backbone.name, prepared.precision))
    if init is not None:  # going on from an earlier result: it is the first stage's start
        image = pixels.luminance(init) if luminance_only else init
    for stage, size in enumerate(stages):
        content_s = pixels.resize(content, size)
        content_targets, content_summaries = features(tf.constant(content_s))
        style_summaries = []
        for s in styles:
            seen = styleplan.style_size(s.shape[:2], size, p.style_scale, min_size)
            style_summaries.append(features(tf.constant(pixels.resize(s, seen)))[1])
        style_targets = stylelosses.blend_targets(p.style_loss, style_summaries, blend,
                                                  _locations(content_summaries, p.style_loss), p.seed or 0, stage)
        if image is not None:
            x0 = pixels.resize(image, size)
        elif p.init == "noise":
            x0 = rng.random((*size, 3), dtype=np.float32)
            x0 = pixels.luminance(x0) if luminance_only else x0
        elif p.init == "style":
            x0 = pixels.resize(styles[0], size)
        else:
            x0 = content_s

        def evaluate(x: Any, content_targets: Any = content_targets, style_targets: Any = style_targets) -> tuple:
            request = getattr(stop, "inside", None)  # a consumer's inside view (nbart.inside); None: the plain step
            looked.clear()
            if request is None:
                return loss_and_gradient(x, content_targets, style_targets, weights, style_layer_weights)
            out = prepared.inside_step(request)(x, content_targets, style_targets, weights, style_layer_weights)
            looked.append((request, out, style_targets))
            return out[:3]

        if masked_loss is not None:
            # one mask: the blended styles' Grams; one per style: each style's own, in its region
            region_targets = [t if len(region_masks) == 1 else tf.concat(list(g), axis=0)
                              for t, g in zip(style_targets, zip(*style_summaries))]
            stage_masks = np.stack([pixels.resize(m[..., None], size)[..., 0] for m in region_masks])
            # the picture is union * x + (1 - union) * content: black stays the content, grey changes partly
            union = np.clip(stage_masks.sum(axis=0), 0.0, 1.0)[..., None]
            kept = (1.0 - union) * content_s

            def compose(x: np.ndarray, union: np.ndarray = union, kept: np.ndarray = kept) -> np.ndarray:
                return (union * x + kept).astype(np.float32)

            def evaluate(x: Any, content_targets: Any = content_targets, region_targets: Any = region_targets,
                         stage_masks: Any = tf.constant(stage_masks), union: Any = tf.constant(union, tf.float32),
                         kept: Any = tf.constant(kept, tf.float32)) -> tuple:
                loss, parts, gradient = masked_loss(union * x + kept, content_targets, region_targets, stage_masks,
                                                    region_weights, weights, style_layer_weights)
                return loss, parts, gradient * union  # the gradient with respect to x
        else:
            def compose(x: np.ndarray) -> np.ndarray:
                return x

        label = f"size {stage + 1}/{len(stages)} · {size[1]}x{size[0]}"
        stage_start = step
        if adam_state and adam_state["m"].shape[:2] != tuple(size):
            adam_state = optimizers.resize_moments(adam_state, size)
        iterations = optimizers.lbfgs(evaluate, x0, p.steps, stop) if p.optimizer == "lbfgs" else \
            optimizers.adam(evaluate, x0, p.steps, stop, p.learning_rate, adam_state)
        # iterate averaging: each size's average starts at its start image; it is what's shown and carried on
        average = optimizers.IterateAverage(compose(x0), p.average_decay) if p.average_decay else None
        try:
            for x, loss, parts in iterations:
                # The image too: Adam's update with a non-finite gradient leaves a finite loss (computed before
                # the update) beside a NaN image.
                if not (np.isfinite(loss) and np.isfinite(x).all()):
                    notices.append(runs.non_finite(step + 1, "the loss or image"))
                    return Outcome.FAILED
                image = x = compose(x) if average is None else average.update(compose(x))
                step += 1
                elapsed = time.perf_counter() - t0
                yield StepEvent(step=step, total=total, stage=stage, stages=len(stages), label=label, loss=loss,
                                elapsed=elapsed, eta=pace.seconds_left(step, elapsed), size=output_size,
                                render=lambda x=x: finish(x),
                                done=step == total, metrics=dict(zip(("content", "style", "tv"), map(float, parts))),
                                inside=_step_inside(prepared, *looked[0], weights) if looked else None)
                if stop.is_set():
                    return Outcome.STOPPED
        finally:
            iterations.close()  # ends L-BFGS's helper thread at once
        if stop.is_set():
            return Outcome.STOPPED
        if step == stage_start:  # not stopped, yet not one step: L-BFGS returned at once
            loss, parts, gradient = evaluate(tf.constant(x0, tf.float32))
            degenerate = float(loss) == 0.0 or not bool(tf.reduce_any(gradient != 0.0))
            if degenerate:  # nothing to optimize (zero loss or gradient): the start image is the right answer
                notices.append(f"nothing to optimize at {label}: the loss is {float(loss):.4g} with a zero gradient "
                               f"at the start image, which is kept (check the weights: content "
                               f"{p.content_weight:g}, style {p.style_weight:g}, tv {p.tv_weight:g})")
            else:
                notices.append(f"the optimizer made no progress at {label}; kept its start image; try "
                               f"optimizer='adam' or other weights")
            image = x0 = compose(x0)
            step = (stage + 1) * p.steps
            yield StepEvent(step=step, total=total, stage=stage, stages=len(stages), label=label, loss=float(loss),
                            elapsed=time.perf_counter() - t0, size=output_size, render=lambda x=x0: finish(x),
                            done=degenerate and step == total,
                            metrics=dict(zip(("content", "style", "tv"), map(float, parts.numpy()))))
            if not degenerate:
                return Outcome.FAILED
        step = (stage + 1) * p.steps  # a stage whose optimizer ended early still counts its planned steps
    return Outcome.COMPLETED


def _step_inside(prepared: StylePrepared, request: inside.Request, out: tuple, style_targets: Any,
                 weights: Any) -> inside.StepInside:
    """An evaluation's inside view: its terms as contributions to the loss (weights included) and its tensors."""
    _, parts, gradient, contents, styles, grams, maps = out
    w = weights.numpy().astype(np.float64)
    g = prepared.style_layers.index(request.gram_layer)
    return inside.StepInside(
        terms=dict(zip(("content", "style", "tv"), (w * parts.numpy()).tolist())), layer=request.layer,
        content_layers=dict(zip(prepared.content_layers, (w[0] * contents.numpy()).tolist())),
        style_layers=dict(zip(prepared.style_layers, (w[1] * styles.numpy()).tolist())),
        gram_layer=request.gram_layer, gradient=gradient, maps=maps,
        grams=(grams[g], style_targets[g]) if prepared.params.style_loss == "gram" else None)


@takes(StyleParams)
def style_transfer(content: Any, style: Any, params: StyleParams | None = None, **kwargs: Any) -> Image.Image:
    """Paint ``content`` in the manner of ``style`` and return the result as a PIL image (a notebook shows it).

    ``content`` and ``style`` are anything :func:`nbart.load_image` reads (``"sample:grace_hopper"``,
    ``"sample:starry_night"``, a path, URL, array...); ``style`` may be a list of images. Runs :func:`style_run` to
    the end; its notices are issued as warnings.
    """
    return run_with_notices(style_run(content, style, params, **kwargs))
