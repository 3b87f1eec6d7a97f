"""Long sessions (issue 8.4): traced functions and models are cached and bounded, so many runs in one kernel with
changing models, layers and sizes don't grow memory without bound. The soak test (marked slow) measures RSS."""

import gc
import threading

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from nbart import backbones, deepdream, extractors
from nbart.deepdream import dream_run
from nbart.styletransfer import style_run


def _dream_functions(layers: tuple[str, ...]):
    ext = backbones.extractor(backbones.get("vgg16"), "none", "float32", tuple(dict.fromkeys(layers)),
                              flip_ahead=True)  # a dream's (DreamPrepared.flip_ahead)
    return ext, ext.functions[("dream", layers)]


def test_sizes_and_channels_never_retrace(gradient_image):
    """One trace serves every image size, octave and channel of a layer (input_signature with None sizes, the
    channel a tensor argument): trying channel after channel used to trace a new function each time."""
    for size, channel in ((64, 0), (80, 5), (96, 63), (48, None), (72, 17)):
        layer = "block1_conv2" if channel is None else f"block1_conv2:{channel}"
        list(dream_run(gradient_image, **{**TINY, "max_size": size, "layers": (layer,), "octaves": 2,
                                          "octave_scale": 1.3}))
    ext, (means, means_and_gradient) = _dream_functions(("block1_conv2",))
    assert list(ext.functions) == [("dream", ("block1_conv2",))]
    assert means.experimental_get_tracing_count() == 1
    assert means_and_gradient.experimental_get_tracing_count() == 1


def test_style_sizes_never_retrace(gradient_image):
    style = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for sizes in ((40, 56), (48,), (44, 64)):
        list(style_run(gradient_image, style, model="vgg16", weights="none", sizes=sizes, steps=2, seed=0,
                       precision="float32", optimizer="adam"))
    bb = backbones.get("vgg16")
    ext = backbones.extractor(bb, "none", "float32", bb.content_layers + bb.style_layers)
    features, loss_and_gradient = ext.functions[("style", len(bb.content_layers), len(bb.style_layers))]
    assert features.experimental_get_tracing_count() == 1
    assert loss_and_gradient.function.experimental_get_tracing_count() == 1  # the traced function behind the call


def test_bounded_cache_keeps_the_most_recently_used():
    cache = backbones.BoundedCache(3)
    for key in "abcd":
        cache[key] = key.upper()
    assert list(cache) == ["b", "c", "d"]
    assert cache["b"] == "B"  # a hit makes it the most recent
    cache["e"] = "E"
    assert list(cache) == ["d", "b", "e"]


def test_traced_functions_per_extractor_are_bounded(monkeypatch):
    monkeypatch.setattr(extractors, "MAX_FUNCTIONS", 2)
    ext = backbones.Extractor(backbones.get("vgg16"), "none", "float32", ("block1_conv1", "block1_conv2"))
    for layers in (("block1_conv1",), ("block1_conv2",), ("block1_conv1", "block1_conv2")):
        deepdream.traced_functions(ext, tuple((name, None) for name in layers))
    assert list(ext.functions) == [("dream", ("block1_conv2",)), ("dream", ("block1_conv1", "block1_conv2"))]


def test_evicting_a_network_drops_its_extractors():
    """Extractors hold their network: without this, up to MAX_EXTRACTORS networks stayed alive behind a cache of
    MAX_MODELS."""
    backbones.clear_cache()
    for name in ("vgg16", "vgg19"):
        for precision in ("float32", "bfloat16"):
            bb = backbones.get(name)
            backbones.extractor(bb, "none", precision, bb.dream_layers)
            backbones.extractor(bb, "none", precision, bb.style_layers)
    assert len(extractors.cached_models) == extractors.MAX_MODELS == 3
    assert all(key[:3] in extractors.cached_models for key in extractors.cached_extractors)
    assert len(extractors.cached_extractors) == 2 * extractors.MAX_MODELS


def test_evicting_a_network_empties_tensorflows_kernel_cache(monkeypatch):
    """Every network build caches one eager kernel per variable; without emptying the cache when a network is
    evicted, a session switching networks kept ~15 MB per InceptionV3 rebuild (measured in the soak test)."""
    backbones.clear_cache()
    cleared = []
    monkeypatch.setattr(extractors, "clear_kernel_cache", lambda: cleared.append(1))
    for name, precision in (("vgg16", "float32"), ("vgg19", "float32"), ("vgg16", "bfloat16")):
        backbones.model(backbones.get(name), "none", precision)
    assert cleared == []  # within the bound: nothing evicted, nothing cleared
    backbones.model(backbones.get("vgg19"), "none", "bfloat16")
    assert cleared == [1] and len(extractors.cached_models) == extractors.MAX_MODELS


def test_a_run_is_undisturbed_while_another_thread_churns_networks(gradient_image):
    """Two sessions in one kernel: one dreams in a worker thread while the other switches networks (evicting the
    worker's network and emptying TensorFlow's kernel cache). The worker's result is exactly a quiet run's."""
    kw = {**TINY, "steps": 6, "octaves": 1, "layers": ("block3_conv1",)}
    backbones.clear_cache()
    quiet = [e.image() for e in dream_run(gradient_image, **kw)]
    run = dream_run(gradient_image, **kw)
    started, churned, results, errors = threading.Event(), threading.Event(), [], []

    def worker():
        try:
            for event in run:
                results.append(event.image())
                started.set()
                churned.wait(120)  # the rest of the run happens after its network was evicted and caches emptied
        except Exception as e:  # noqa: BLE001 (reported by the test)
            errors.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(60)
    for name, precision in (("vgg19", "float32"), ("vgg19", "bfloat16"), ("vgg16", "bfloat16"),
                            ("inception_v3", "float32")):
        bb = backbones.get(name)
        backbones.extractor(bb, "none", precision, bb.dream_layers)
    churned.set()
    thread.join(120)
    assert not thread.is_alive() and errors == []
    assert ("vgg16", "none", "float32") not in extractors.cached_models  # the worker's network was evicted meanwhile
    assert len(results) == len(quiet) == 6
    for got, expected in zip(results, quiet):
        np.testing.assert_array_equal(got, expected)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _live_keras_models() -> int:
    import keras

    return sum(isinstance(o, keras.Model) for o in gc.get_objects())


def _session_run(i: int, content: Image.Image, style: Image.Image) -> np.ndarray:
    """Run i of a session that keeps changing task, model, precision, layers, channels and size."""
    names = ("vgg16", "vgg19", "inception_v3")
    name = names[i % 3]
    bb = backbones.get(name)
    precision = "float32" if (i // 3) % 2 == 0 else "bfloat16"
    size = (96, 112, 128, 144)[i % 4] if name == "inception_v3" else (48, 64, 80, 96)[i % 4]
    if i % 5 == 4 and name != "inception_v3":
        run = style_run(content, style, model=name, weights="none", sizes=(size,), steps=2, seed=i,
                        precision=precision, optimizer=("lbfgs", "adam")[i % 2])
    else:
        layer = bb.layers[(i * 7) % len(bb.layers)]
        if i % 4 == 1:
            layer = f"{layer}:{(i * 13) % bb.channels[bb.layers.index(layer)]}"
        run = dream_run(content, model=name, weights="none", max_size=size, octaves=2, steps=2, seed=i,
                        precision=precision, layers=(layer,), tile_size=128)
    events = list(run)
    assert events and run.completed, (i, run.outcome, run.notices)
    return events[-1].image()


@pytest.mark.slow
def test_soak_100_runs_in_one_session_stay_bounded(gradient_image, capsys):
    """100 runs alternating dream and style transfer over three backbones, two precisions, changing layers,
    channels and sizes (a network is rebuilt at almost every run). The caches stay at their bounds and memory
    levels off: RSS after run 100 is within 10% of RSS after run 50. (Before the kernel-cache fix each InceptionV3
    rebuild kept ~15 MB: RSS grew ~11 MB a run, 1574 -> 2021 MB from run 10 to run 50.)"""
    style = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    backbones.clear_cache()
    gc.collect()
    rss = {0: _rss_mb()}
    threads = threading.active_count()
    for i in range(100):
        out = _session_run(i, gradient_image, style)
        assert out.dtype == np.uint8 and out.ndim == 3
        if i + 1 in (1, 10, 20, 30, 40, 50, 75, 100):
            gc.collect()
            rss[i + 1] = _rss_mb()
    sizes = backbones.cache_sizes()
    models = _live_keras_models()
    with capsys.disabled():
        print("\nsoak RSS (MB) after run " + ", ".join(f"{k}: {v:.0f}" for k, v in rss.items()))
        print(f"soak caches: {sizes}; live keras.Model objects: {models}; threads: {threading.active_count()}")
    assert sizes["models"] <= extractors.MAX_MODELS and sizes["extractors"] <= backbones.MAX_EXTRACTORS
    assert sizes["functions"] <= backbones.MAX_EXTRACTORS * backbones.MAX_FUNCTIONS
    # Each cached network is one keras.Model, each extractor one more: nothing else keeps models alive.
    assert models <= extractors.MAX_MODELS + backbones.MAX_EXTRACTORS
    assert threading.active_count() == threads  # no helper thread left behind (L-BFGS)
    assert rss[100] - rss[50] < 0.10 * rss[50], rss  # levelled off, not growing with the number of runs
