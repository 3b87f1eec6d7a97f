"""The layer and channel explorer: one small dream per layer (or per channel of one layer), many in one batch.

"Which layer should I pick?" is answered by looking: :func:`explore` dreams the same small image once per pickable
layer of the backbone that really runs (or once per channel, the most active N or chosen ones, of one layer) and
returns a labelled grid. Each dream is the Deep Dream step of :mod:`nbart.deepdream` on one octave: gradient ascent
on the layer's (or channel's) mean activation, the gradient normalized by its standard deviation, a random jitter
before each step (Mordvintsev et al. 2015, the DeepDream notebook; the TensorFlow Deep Dream tutorial).

Many objectives run in ONE batched call: a batch of copies of the image, one objective per batch element, the loss
the sum of the elements' objectives (whose gradients don't mix: each element only reaches its own term), as
torch-dreams (Mayukh Deb) batches objectives. For layers of different depths the batch is a cascade: sorted deepest
first, it shrinks at each explored layer to the elements that need deeper ones (a tap inside the lean network), so a
shallow layer's dream costs no more than its own part of the network. :func:`explore_run` yields results as each
call finishes, shallow layers first, and can be stopped.

How many objectives per call (``batch``) is measured, not assumed (``benchmarks/bench_explore.py``,
``bench_explore_step.py``; AMD EPYC, AVX2, float32, 2 shared cores): 8 channels of one layer in one call took 0.75x
the time of one call each. For layers, a cascaded call of all of them at 128 px took 0.39x (VGG16, 13 layers) and
0.11x (InceptionV3, 11 mixed layers: hundreds of small operations whose per-call cost dominates) the time of one
call each, 5 steps, warm, under a load of 20-33 (``benchmarks/results/explore-targets.txt``). By default the
shallowest layer goes alone (its picture comes first, in about a second) and the others in cascaded calls of at
most :data:`LAYER_BATCH_PIXELS` (all of them at 128 px); on an accelerator a bigger ``batch`` may pay.

Results are cached per (backbone, weights, precision, image, size, steps, step size, jitter, seed, objective).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from nbart import images, runs
from nbart.errors import ParamError
from nbart.extractors import BoundedCache, Extractor, extractor
from nbart.params import DreamParams
from nbart.precision import resolve_precision
from nbart.sheets import Sheet, contact_sheet

__all__ = ["explore", "explore_run", "Exploration", "Explored", "clear_cache", "CACHE_SIZE", "MAX_OBJECTIVES"]

CACHE_SIZE = 512  # explored pictures kept (128 px each: ~25 MB at most)
MAX_OBJECTIVES = 256  # objectives one exploration may ask for
# pixels of one cascaded call of layers by default: every layer of a backbone at 128 px in one call (measured faster:
# see the module's notes), fewer at bigger sizes so that a call's activations stay those of a few pictures
LAYER_BATCH_PIXELS = 16 * 128 * 128
CHANNELS_PER_CALL = 8  # channels of one layer dreamed in one batched call by default (measured: see above)
_cache = BoundedCache(CACHE_SIZE)
_lock = threading.Lock()


@dataclass(frozen=True)
class Explored:
    """One explored objective: ``spec`` as ``DreamParams.layers`` takes it (``"block4_conv3"`` or
    ``"block4_conv3:12"``), its ``image`` (PIL RGB, long side ``size`` px), ``gain`` (its mean activation at the
    last step over the first step's: how far the dream climbed), ``seconds`` (wall time of the batch that made it,
    shared by that batch's objectives; 0 when ``cached``)."""

    spec: str
    image: Image.Image
    gain: float
    seconds: float
    cached: bool = False

    @property
    def label(self) -> str:
        return f"{self.spec} x{self.gain:.3g}" if np.isfinite(self.gain) else self.spec


@dataclass(eq=False)
class Exploration:
    """A started exploration: iterate it for :class:`Explored` results as each batch finishes (cached ones first);
    :meth:`stop` (any thread) ends it between steps. ``specs`` are the objectives in grid order, ``results`` the
    finished ones by spec, ``notices`` what differs from what was asked (a fallback backbone, say), ``params``
    the validated :class:`~nbart.params.DreamParams` (``max_size`` is the size)."""

    params: DreamParams
    specs: tuple[str, ...]
    notices: list[str]
    start: Image.Image
    batch: int | None
    results: dict[str, Explored] = field(default_factory=dict)
    _prepared: Any = None
    _key: tuple = ()
    _cascade: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Ask the exploration to end at its next step (any thread); results finished so far are kept."""
        self._stop.set()

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.specs)

    def __iter__(self) -> Iterator[Explored]:
        todo = []
        for spec in self.specs:
            if spec in self.results:
                continue
            with _lock:
                hit = _cache.get(self._key + (spec,))
            if hit is not None:
                self.results[spec] = Explored(spec, hit[0], hit[1], 0.0, cached=True)
                yield self.results[spec]
            else:
                todo.append(spec)
        if not todo:
            return
        names = self._prepared.layers()
        order = {name: i for i, name in enumerate(names)}
        todo.sort(key=lambda s: order[s.partition(":")[0]])  # shallow first: the quick ones arrive first
        for chunk in _chunks(todo, self.batch, self.start.size[0] * self.start.size[1]):
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            ext = self._extractor(max(order[s.partition(":")[0]] for s in chunk))
            made = _dream_batch(ext, chunk, images.to_float(self.start), self.params, self._stop, self._cascade)
            if made is None:  # stopped mid-batch: nothing half-made is kept
                return
            seconds = time.perf_counter() - t0
            for spec, (picture, gain) in zip(chunk, made):
                with _lock:
                    _cache[self._key + (spec,)] = (picture, gain)
                self.results[spec] = Explored(spec, picture, gain, seconds)
                yield self.results[spec]

    def _extractor(self, deepest: int) -> Extractor:
        """The extractor of the exploration's layers up to ``deepest`` (an index into them): the network cut after
        it, so that the first (shallowest) picture doesn't wait for the whole network's lean build and tracing
        (InceptionV3's first thumbnail: 3.3 s cold with the whole network, on a 2-core AVX2 EPYC). Cut networks share
        the cached network and its flipped kernels."""
        prepared = self._prepared
        names = prepared.layers()
        if deepest >= len(names) - 1:
            return prepared.extractor
        ext = extractor(prepared.backbone, prepared.resolved.weights, prepared.precision, names[:deepest + 1],
                        warn=False, flip_ahead=prepared.flip_ahead)
        if ext.notice and ext.notice not in prepared.notices:
            prepared.notices.append(ext.notice)
        return ext

    def run(self) -> Exploration:
        """Run to the end (or to a stop) and return self."""
        for _ in self:
            pass
        return self

    def grid(self, columns: int | None = None) -> Image.Image:
        """The labelled grid of the objectives, in :attr:`specs` order; grey where a result is not made."""
        tiles = []
        for spec in self.specs:
            r = self.results.get(spec)
            tiles.append(((r.label if r else spec), r.image if r else None))
        bb, p = self._prepared.backbone, self.params
        title = f"{bb.name} ({self._prepared.resolved.weights}), {p.steps} steps of {p.step_size:g}, seed {p.seed}"
        return contact_sheet(tiles, columns, title)

    def sheet(self, columns: int | None = None) -> Sheet:
        """:meth:`grid` and the finished results in grid order."""
        return Sheet(self.grid(columns), [self.results[s] for s in self.specs if s in self.results])


class _Prepared(runs.Prepared):
    """The backbone and weights of an exploration, and one extractor of all its layers (deepest last)."""

    flip_ahead = True  # dream steps, as DreamPrepared's: kernels flipped once (nbart.convgrad.flip)

    def __init__(self, params: DreamParams, resolved: Any, notices: list[str], names: tuple[str, ...]):
        super().__init__(params, resolved, notices)
        self.names = names

    def layers(self) -> tuple[str, ...]:
        return self.names


def explore_run(image: Any, *, model: str = "inception_v3", weights: str = "auto", layers: Any = None,
                channels: Any = None, size: int = 128, steps: int = 5, step_size: float = 0.1, jitter: int = 8,
                seed: int = 0, precision: str = "auto", batch: int | None = None,
                cascade: bool = True) -> Exploration:
    """Start exploring and return the :class:`Exploration` (an iterator of :class:`Explored`; nothing runs yet).

    Arguments are those of :func:`explore`; ``cascade=False`` runs every batch element through the whole network
    (the same pictures, more work: for the benchmark). Bad values raise :class:`~nbart.errors.ParamError` (the
    :class:`~nbart.params.DreamParams` rules: the same one-line errors as a dream) and unreadable images
    :class:`~nbart.errors.ImageError` here; weights that can't be had, :class:`~nbart.errors.WeightsError`.
    """
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise ParamError(f"batch must be None or an integer >= 1 (got {batch!r})")
    if layers is not None:  # one name, or any iterable of names (read once)
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        if not layers:
            raise ParamError("layers is empty: give layer names, or None (the default) for every selectable layer")
    try:
        p = DreamParams.from_kwargs(None, model=model, weights=weights, layers=tuple(layers or ()), octaves=1,
                                    steps=steps, step_size=step_size, jitter=jitter, max_size=size, seed=seed,
                                    precision=precision)
    except ParamError as e:  # the dream's rules, in the explorer's words: its max_size is called size here
        raise ParamError(str(e).replace("max_size", "size")) from None
    resolved, notices = runs.start(p)
    bb = resolved.backbone
    names = runs.fallback_layers(p.layers, bb.layers, bb, p.model, "layers", notices)
    for name in names:
        if ":" in name:
            raise ParamError(f"layers takes layer names (got {name!r}); ask for channels with channels=")
    names = tuple(sorted(dict.fromkeys(names), key=bb.layers.index))
    start, _ = images.prepare(image, size, bb.min_size)
    if channels is None:
        specs: tuple[str, ...] = names
    else:
        if len(names) != 1:
            raise ParamError(f"channels= explores one layer: give layers='NAME' (got {len(names)} layers)")
        specs = _channel_specs(bb, names[0], channels, start, resolved, p)
    if len(specs) > MAX_OBJECTIVES:
        raise ParamError(f"an exploration makes at most {MAX_OBJECTIVES} pictures (asked for {len(specs)})")
    prepared = _Prepared(p, resolved, notices, names)
    precision_now = resolve_precision(p.precision)
    digest = hashlib.sha1(start.tobytes()).hexdigest()
    key = (bb.name, resolved.weights, precision_now, digest, start.size, p.steps, p.step_size, p.jitter, p.seed)
    prepared.__dict__["precision"] = precision_now  # resolved once for the key and the extractor alike
    return Exploration(p, specs, notices, start, batch, _prepared=prepared, _key=key, _cascade=cascade)


def _channel_specs(bb: Any, name: str, channels: Any, start: Image.Image, resolved: Any,
                   p: DreamParams) -> tuple[str, ...]:
    """``channels``: an int N (the N most active channels of ``name`` on the start image, most active first) or a
    sequence / range of channel numbers."""
    count = bb.channels[bb.layers.index(name)]
    if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool):
        if not 1 <= channels <= count:
            raise ParamError(f"channels must be from 1 to {count}, the channels of {name} (got {channels})")
        ext = extractor(bb, resolved.weights, resolve_precision(p.precision), (name,))
        activity = np.asarray(ext(images.to_float(start)[None])[0]).mean(axis=(0, 1, 2))
        chosen = [int(c) for c in np.argsort(-activity, kind="stable")[:int(channels)]]
    else:
        try:
            chosen = [int(c) for c in channels]
        except (TypeError, ValueError):
            raise ParamError(f"channels must be a count or a list/range of channel numbers "
                             f"(got {channels!r})") from None
        if not chosen:
            raise ParamError("channels must not be empty")
        bad = [c for c in chosen if not 0 <= c < count]
        if bad:
            raise ParamError(f"layer {name} has channels 0..{count - 1} (got {bad[0]})")
    return tuple(f"{name}:{c}" for c in dict.fromkeys(chosen))


def explore(image: Any, *, model: str = "inception_v3", weights: str = "auto", layers: Any = None,
            channels: Any = None, size: int = 128, steps: int = 5, step_size: float = 0.1, jitter: int = 8,
            seed: int = 0, precision: str = "auto", batch: int | None = None, columns: int | None = None) -> Sheet:
    """Dream ``image`` small once per layer (or per channel of one layer) and return a labelled grid.

    - ``image``: anything :func:`nbart.load_image` reads; downscaled so its long side is ``size`` px (default 128).
    - ``model``, ``weights``, ``precision``: as for :func:`nbart.dream`; ``weights="auto"`` may fall back to the
      offline VGG16, and then its layers are explored (with a warning).
    - ``layers``: None (every pickable layer of the backbone that runs), a name, or a list of names.
    - ``channels``: None (whole layers), an int N (the N channels of the one layer in ``layers`` most active on the
      image, most active first) or a list / ``range`` of channel numbers.
    - ``steps`` (default 5), ``step_size`` (0.1, a fraction of the pixel range), ``jitter`` (8 px), ``seed``: the
      dream's, on one octave. Five steps of 0.1 show each layer's patterns as ten of 0.05 do (the same climb, a
      little less burnt: compare the grids bench_explore.py draws with --steps 5 and 10) in half the time.
    - ``batch``: objectives dreamed per batched call; default None: channels 8 a call; layers, the shallowest alone,
      then the others in cascaded calls (all at once at 128 px; see the module's notes). Results arrive per call,
      shallow layers first.
    - ``columns``: of the grid (default: near-square).

    Returns a :class:`~nbart.sheets.Sheet`: ``image`` (the grid; each caption is the spec to give ``layers`` and
    the activation gain, e.g. ``block3_conv1 x1.8``) and ``results`` (the :class:`Explored` list). Notices are
    issued as warnings. ParamError / ImageError / WeightsError as :func:`explore_run`. Interrupted (the kernel's
    interrupt), it returns the grid of what finished.
    """
    import warnings

    exploration = explore_run(image, model=model, weights=weights, layers=layers, channels=channels, size=size,
                              steps=steps, step_size=step_size, jitter=jitter, seed=seed, precision=precision,
                              batch=batch)
    for notice in exploration.notices:
        warnings.warn(notice, stacklevel=2)
    try:
        exploration.run()
    except KeyboardInterrupt:
        warnings.warn(f"interrupted: {len(exploration.results)} of {len(exploration.specs)} pictures made",
                      stacklevel=2)
    return exploration.sheet(columns)


def clear_cache() -> None:
    """Forget every explored picture."""
    with _lock:
        _cache.clear()


def _chunks(todo: list[str], batch: int | None, pixels: int = 128 * 128) -> Iterator[list[str]]:
    """``todo`` (shallow first) in calls of ``batch``. None: channels of one layer 8 a call; layers, the shallowest
    alone (the first picture soon), then the others in cascaded calls of at most :data:`LAYER_BATCH_PIXELS` pixels
    (all of them at 128 px; ``pixels`` is one element's)."""
    if batch is None:
        if len({s.partition(":")[0] for s in todo}) == 1 and ":" in todo[0]:
            batch = CHANNELS_PER_CALL
        else:
            yield todo[:1]
            todo, batch = todo[1:], max(1, LAYER_BATCH_PIXELS // max(1, pixels))
    for i in range(0, len(todo), batch):
        yield todo[i:i + batch]


def _dream_batch(ext: Extractor, specs: Sequence[str], start: np.ndarray, p: DreamParams, stop: threading.Event,
                 cascade: bool) -> list[tuple[Image.Image, float]] | None:
    """Dream ``start`` (H, W, 3 float32 in [0, 1]) once per spec, all in one batch; None if stopped."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    n = len(specs)
    parsed = [ext.backbone.parse_layer(s) for s in specs]
    order = sorted(range(n), key=lambda i: -ext.layers.index(parsed[i][0]))  # deepest first: the cascade's order
    element_layers = tuple(ext.layers.index(parsed[i][0]) for i in order)
    channels = tf.constant([-1 if parsed[i][1] is None else parsed[i][1] for i in order], tf.int32)
    fn = batched_step(ext, element_layers, cascade)
    rng = np.random.default_rng(p.seed)
    x = tf.constant(np.repeat(start[None], n, axis=0))
    first = last = None
    for _ in range(p.steps):
        if stop.is_set():
            return None
        shift = [int(s) for s in rng.integers(-p.jitter, p.jitter + 1, size=2)] if p.jitter else [0, 0]
        means, gradient = fn(tf.roll(x, shift, axis=[1, 2]), channels)
        gradient = tf.roll(gradient, [-s for s in shift], axis=[1, 2])
        last = means.numpy()
        first = last if first is None else first
        # each element's gradient normalized by its own spread: every objective moves at the same pace
        spread = tf.math.reduce_std(gradient, axis=[1, 2, 3], keepdims=True)
        x = tf.clip_by_value(x + p.step_size * gradient / (spread + 1e-8), 0.0, 1.0)
    pictures = images.to_uint8(x.numpy())
    made: list[Any] = [None] * n
    for k, i in enumerate(order):
        gain = float(last[k] / first[k]) if first[k] > 0 else float("nan")
        made[i] = (Image.fromarray(pictures[k]), gain)
    return made


def batched_step(ext: Extractor, element_layers: tuple[int, ...], cascade: bool = True) -> Any:
    """The traced ``step(images, channels) -> (means, gradient)`` of a batch whose element ``k`` climbs the mean
    activation of ``ext.layers[element_layers[k]]`` (of channel ``channels[k]``, or all channels where -1).

    ``images``: (len(element_layers), H, W, 3) float32 in [0, 1], any H and W; ``means``: (batch,) float32;
    ``gradient``: the gradient of ``sum(means)`` with respect to ``images``, (batch, H, W, 3); elements don't mix.
    ``element_layers`` must be sorted deepest first. With ``cascade`` and the lean network, the batch shrinks at
    each layer to the elements that need deeper layers (the same values; less work). Cached on the extractor.
    """
    key = ("explore", element_layers, cascade and ext.lean is not None)
    if key not in ext.functions:
        ext.functions[key] = _trace(ext, element_layers, key[2])
    return ext.functions[key]


def _trace(ext: Extractor, element_layers: tuple[int, ...], cascade: bool) -> Any:
    from nbart.quiet import tensorflow
    tf = tensorflow()

    n, outputs = len(element_layers), len(ext.layers)
    # how many elements (the first ones: sorted deepest first) go on past each output
    onward = [sum(1 for li in element_layers if li > j) for j in range(outputs)]

    def activations(images: Any) -> list:
        if not cascade:
            return ext(images, float32=False)
        taken: dict[int, Any] = {}

        def tap(j: int, a: Any) -> Any:
            taken[j] = a
            return a[:onward[j]]  # the deeper layers run on the elements that need them only

        last = ext.lean(ext.backbone.preprocess(images), taps={j: (lambda a, j=j: tap(j, a))
                                                                for j in range(outputs - 1)})[-1]
        return [taken[j] for j in range(outputs - 1)] + [last]

    def step(images: Any, channels: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(images)
            acts = activations(images)
            means = []
            for k, li in enumerate(element_layers):
                per_channel = tf.reduce_mean(tf.cast(acts[li][k], tf.float32), axis=[0, 1])
                means.append(tf.where(channels[k] < 0, tf.reduce_mean(per_channel),
                                      tf.gather(per_channel, tf.maximum(channels[k], 0))))
            means = tf.stack(means)
            total = tf.reduce_sum(means)
        return means, tape.gradient(total, images)

    # traced: eager, the cascade's emptied batches would run (and fail in max pooling) instead of being pruned
    return tf.function(step, input_signature=[tf.TensorSpec([n, None, None, 3], tf.float32),
                                              tf.TensorSpec([n], tf.int32)], autograph=False)
