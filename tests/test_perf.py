"""The performance paths compute the same thing as the plain ones: the lean executor, previews, precision choice.

No timings are asserted here; speed is measured by benchmarks/bench.py."""

import numpy as np
import pytest
from conftest import TINY

from nbart import backbones, extractors, lean, precision
from nbart.deepdream import dream_run
from nbart.events import preview_jpeg


def _randomize_batchnorm(net, seed=0):
    """Give every BatchNormalization non-trivial statistics, so that folding them is really tested."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for w in layer.weights:
                name = w.path.split("/")[-1]
                if name == "moving_variance":
                    values.append(np.abs(rng.normal(1.0, 0.3, w.shape)) + 0.1)
                else:
                    values.append(rng.normal(0.0, 0.2, w.shape))
            layer.set_weights(values)


@pytest.mark.parametrize("model, layers", [("inception_v3", ("mixed0", "mixed2")), ("vgg16", ("block1_conv2",))])
def test_lean_extractor_matches_the_keras_model(model, layers, monkeypatch):
    import tensorflow as tf

    bb = backbones.get(model)
    backbones.clear_cache()
    net = backbones.model(bb, "none", "float32")
    _randomize_batchnorm(net)
    fast = backbones.Extractor(bb, "none", "float32", layers)
    plain = backbones.Extractor(bb, "none", "float32", layers, lean=False)
    assert fast.lean is not None and plain.lean is None and fast.notice is None
    if model == "inception_v3":
        assert fast.lean.folded > 0  # its conv + BatchNorm pairs were folded
    x = tf.constant(np.random.default_rng(1).random((1, 80, 96, 3)), tf.float32)
    for a, b in zip(fast(x), plain(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(b))))
    backbones.clear_cache()


def test_bfloat16_vgg_stores_its_weights_once_in_bfloat16_and_the_lean_extractor_matches_keras(monkeypatch):
    import tensorflow as tf

    bb = backbones.get("vgg16")
    backbones.clear_cache()
    net = backbones.model(bb, "none", "bfloat16")
    assert {w.dtype for w in net.weights} == {"bfloat16"}  # no float32 weights beside bfloat16 copies
    fast = backbones.Extractor(bb, "none", "bfloat16", ("block1_conv2", "block3_conv1"))
    assert fast.lean is not None and fast.lean.variables == []  # it uses the network's own variables
    plain = backbones.Extractor(bb, "none", "bfloat16", ("block1_conv2", "block3_conv1"), lean=False)
    x = tf.constant(np.random.default_rng(1).random((1, 80, 96, 3)), tf.float32)
    for a, b in zip(fast(x), plain(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-2, atol=2e-2 * float(tf.reduce_max(tf.abs(b))))
    backbones.clear_cache()


def test_a_lean_tap_acts_on_a_layer_inside_the_network():
    import tensorflow as tf

    bb = backbones.get("vgg16")
    ext = backbones.Extractor(bb, "none", "float32", ("block1_conv1", "block1_conv2"))
    x = bb.preprocess(tf.constant(np.random.default_rng(2).random((1, 40, 48, 3)), tf.float32))
    plain = ext.lean(x)
    doubled = ext.lean(x, taps={0: lambda activations: activations * 2.0})
    np.testing.assert_allclose(doubled[0].numpy(), 2 * plain[0].numpy(), rtol=1e-6)
    # what the tap returned went on through the network: block1_conv2 saw the doubled block1_conv1
    onward = ext.model.get_layer("block1_conv2")(doubled[0])
    np.testing.assert_allclose(doubled[1].numpy(), onward.numpy(), rtol=1e-4, atol=1e-4 * float(tf.reduce_max(onward)))
    assert not np.allclose(doubled[1].numpy(), plain[1].numpy())


@pytest.mark.parametrize("use_lean", [True, False])
def test_features_and_grams_equal_the_plain_gram_matrices_with_either_executor(use_lean):
    import tensorflow as tf

    from nbart import objectives

    bb = backbones.get("vgg16")
    layers = ("block2_conv1", "block1_conv1", "block3_conv1")
    ext = backbones.Extractor(bb, "none", "float32", layers, lean=use_lean)
    assert (ext.lean is not None) == use_lean
    x = tf.constant(np.random.default_rng(3).random((1, 40, 48, 3)), tf.float32)
    plain = ext(x)
    features, grams = ext.features_and_grams(x, [2, 1])
    assert [f.shape for f in features] == [plain[0].shape] and features[0].dtype == tf.float32
    np.testing.assert_allclose(features[0].numpy(), plain[0].numpy(), rtol=1e-5, atol=1e-5)
    assert [g.shape for g in grams] == [(1, 256, 256), (1, 64, 64)]
    for g, i in zip(grams, (2, 1)):
        expected = objectives.gram_matrix(plain[i]).numpy()
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def _break_every_conv(monkeypatch, factor):
    """Make the lean network's convolutions off by ``factor``, as a Keras change in what lean.py reads might."""
    conv = lean.LeanNetwork._conv

    def off(self, layer, affine):
        run = conv(self, layer, affine)
        return lambda x, **kw: run(x, **kw) * factor

    monkeypatch.setattr(lean.LeanNetwork, "_conv", off)


def test_a_lean_network_that_differs_from_keras_falls_back_with_a_notice(monkeypatch):
    import tensorflow as tf

    bb = backbones.get("vgg16")
    plain = backbones.Extractor(bb, "none", "float32", ("block2_conv2",), lean=False)
    _break_every_conv(monkeypatch, 1.01)  # 1% per layer: within float tolerance it would pass unseen
    with pytest.warns(RuntimeWarning, match="lean executor off for vgg16") as caught:
        ext = backbones.Extractor(bb, "none", "float32", ("block2_conv2",))
    assert ext.lean is None and len(caught) == 1
    assert ext.notice == str(caught[0].message) and "\n" not in ext.notice
    assert "LeanMismatch: block2_conv2 differs from Keras" in ext.notice
    assert ext.notice.endswith("running the Keras model")
    x = tf.constant(np.random.default_rng(4).random((1, 40, 48, 3)), tf.float32)
    np.testing.assert_array_equal(ext(x)[0].numpy(), plain(x)[0].numpy())  # the Keras model ran


def test_a_runs_lean_fallback_is_one_of_its_notices_and_said_once(monkeypatch):
    import warnings

    import nbart

    extractors.clear_cache()
    _break_every_conv(monkeypatch, 1.01)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nbart.dream(np.full((64, 64, 3), 0.5, np.float32), **TINY)
        said = [str(w.message) for w in caught if "lean executor off" in str(w.message)]
        assert len(said) == 1, said  # the run's notice, not also the extractor's own warning
        run = dream_run(np.full((64, 64, 3), 0.5, np.float32), **TINY)  # the extractor is cached now
        list(run)
        assert [n for n in run.notices if "lean executor off for vgg16" in n] == said
    finally:
        extractors.clear_cache()  # the broken network must not serve later tests


def test_a_lean_network_that_cannot_be_built_falls_back_with_a_notice(monkeypatch):
    import tensorflow as tf

    def renamed(model):  # what a Keras release renaming a private the lean executor reads would raise
        raise AttributeError("'Functional' object has no attribute '_nodes_by_depth'")

    monkeypatch.setattr(lean, "_consumers", renamed)
    bb = backbones.get("vgg16")
    with pytest.warns(RuntimeWarning, match="lean executor off for vgg16 .AttributeError: 'Functional' object"):
        ext = backbones.Extractor(bb, "none", "float32", ("block1_conv2",))
    assert ext.lean is None
    x = tf.constant(np.random.default_rng(5).random((1, 40, 48, 3)), tf.float32)
    expected = backbones.Extractor(bb, "none", "float32", ("block1_conv2",), lean=False)(x)[0].numpy()
    np.testing.assert_array_equal(ext(x)[0].numpy(), expected)


def test_the_lean_probe_tolerates_rounding_but_not_a_small_error(monkeypatch):
    bb = backbones.get("vgg16")
    _break_every_conv(monkeypatch, 1.0 + 1e-7)  # float32 rounding-sized: the lean network is kept
    assert backbones.Extractor(bb, "none", "float32", ("block3_conv1",)).lean is not None


def test_preview_is_the_downscaled_image_and_a_jpeg(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "max_size": 96, "octaves": 2, "octave_scale": 1.5})
    events = list(run)
    for event in events:
        small = event.preview(48)
        assert small.shape == (40, 48, 3) and small.dtype == np.uint8
        full = event.image().astype(np.float32)
        reference = full.reshape(40, 2, 48, 2, 3).mean(axis=(1, 3))
        assert np.abs(small.astype(np.float32) - reference).mean() < 4.0  # the same picture, up to resampling
    jpeg = preview_jpeg(events[-1], max_size=64)
    assert jpeg[:2] == b"\xff\xd8"


def test_auto_precision_takes_bfloat16_only_where_the_probe_finds_it_faster(monkeypatch):
    import tensorflow as tf

    assert backbones.resolve_precision("float32") == "float32"
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("on a GPU the choice follows its compute capability")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision, "bf16_speedup", lambda: 1.0)  # bf16 no faster: stay in float32
    assert precision.resolve_precision("auto") == "float32"
    monkeypatch.setattr(precision, "bf16_speedup", lambda: 1.6)
    assert precision.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # no bf16 hardware: never probed, float32
    monkeypatch.setattr(precision, "bf16_speedup", lambda: pytest.fail("probed without bf16 hardware"))
    assert precision.resolve_precision("auto") == "float32"


def test_bf16_probe_measures_a_positive_ratio_and_caches_it(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    precision.bf16_speedup.cache_clear()
    ratio = precision.bf16_speedup()
    assert ratio > 0 and (tmp_path / "nbart_precision.json").is_file()
    precision.bf16_speedup.cache_clear()
    monkeypatch.setattr(precision, "probe_bf16", lambda: pytest.fail("probed again despite the cache"))
    assert precision.bf16_speedup() == round(ratio, 3)
    assert precision.bf16_speedup() == round(ratio, 3)  # remembered in the process too
    precision.bf16_speedup.cache_clear()  # the next test's KERAS_HOME is not this one


def _tracing_counts(functions) -> list:
    """How often each traced tf.function of a task was traced (a wrapped one's, through its ``function``)."""
    import tensorflow as tf

    traced = [getattr(f, "function", f) for f in functions]
    assert all(isinstance(f, tf.types.experimental.PolymorphicFunction) for f in traced), traced
    return [f.experimental_get_tracing_count() for f in traced]


def test_warm_up_builds_and_traces_what_runs_then_reuse(gradient_image):
    from nbart import warmup
    from nbart.deepdream import dream_run
    from nbart.styletransfer import style_run

    backbones.clear_cache()
    warmup.warm_up("dream", **TINY)
    warmup.warm_up("style", model="vgg16", weights="none", precision="float32")
    traced = {key for ext in extractors.cached_extractors.values() for key in ext.functions}
    assert any(k[0] == "dream" for k in traced) and any(k[0] == "style" for k in traced)
    counts = {}
    for ext in extractors.cached_extractors.values():
        for key, fns in ext.functions.items():
            counts[key] = _tracing_counts(fns)
    list(dream_run(gradient_image, **TINY))
    list(style_run(gradient_image, gradient_image, model="vgg16", weights="none", precision="float32", steps=1,
                   max_size=64))
    for ext in extractors.cached_extractors.values():  # the runs reused the traced functions: no new trace
        for key, fns in ext.functions.items():
            if key in counts:
                assert _tracing_counts(fns) == counts[key], key
    with pytest.raises(ValueError, match="task must be"):
        warmup.warm_up("paint")
