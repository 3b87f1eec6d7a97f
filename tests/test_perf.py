"""The performance paths compute the same thing as the plain ones: the lean executor, previews, precision choice.

No timings are asserted here; speed is measured by benchmarks/bench.py."""

import numpy as np
import pytest
from conftest import TINY

from nbart import backbones
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
    lean = backbones.Extractor(bb, "none", "float32", layers)
    monkeypatch.setattr(backbones, "LEAN", False)
    plain = backbones.Extractor(bb, "none", "float32", layers)
    assert lean.lean is not None and plain.lean is None
    if model == "inception_v3":
        assert lean.lean.folded > 0  # its conv + BatchNorm pairs were folded
    x = tf.constant(np.random.default_rng(1).random((1, 80, 96, 3)), tf.float32)
    for a, b in zip(lean(x), plain(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(b))))
    backbones.clear_cache()


def test_bfloat16_vgg_stores_its_weights_once_in_bfloat16_and_the_lean_extractor_matches_keras(monkeypatch):
    import tensorflow as tf

    bb = backbones.get("vgg16")
    backbones.clear_cache()
    net = backbones.model(bb, "none", "bfloat16")
    assert {w.dtype for w in net.weights} == {"bfloat16"}  # no float32 weights beside bfloat16 copies
    lean = backbones.Extractor(bb, "none", "bfloat16", ("block1_conv2", "block3_conv1"))
    assert lean.lean is not None and lean.lean.variables == []  # it uses the network's own variables
    monkeypatch.setattr(backbones, "LEAN", False)
    plain = backbones.Extractor(bb, "none", "bfloat16", ("block1_conv2", "block3_conv1"))
    x = tf.constant(np.random.default_rng(1).random((1, 80, 96, 3)), tf.float32)
    for a, b in zip(lean(x), plain(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-2, atol=2e-2 * float(tf.reduce_max(tf.abs(b))))
    backbones.clear_cache()


def test_a_lean_tap_acts_on_a_layer_inside_the_network(monkeypatch):
    import tensorflow as tf

    bb = backbones.get("vgg16")
    ext = backbones.Extractor(bb, "none", "float32", ("block1_conv1", "block1_conv2"))
    x = tf.constant(np.random.default_rng(2).random((1, 40, 48, 3)), tf.float32)
    plain = ext(x)
    doubled = ext(x, taps={0: lambda activations: activations * 2.0})
    np.testing.assert_allclose(doubled[0].numpy(), 2 * plain[0].numpy(), rtol=1e-6)
    # what the tap returned went on through the network: block1_conv2 saw the doubled block1_conv1
    onward = ext.model.get_layer("block1_conv2")(doubled[0])
    np.testing.assert_allclose(doubled[1].numpy(), onward.numpy(), rtol=1e-4, atol=1e-4 * float(tf.reduce_max(onward)))
    assert not np.allclose(doubled[1].numpy(), plain[1].numpy())
    monkeypatch.setattr(backbones, "LEAN", False)
    with pytest.raises(ValueError, match="taps need the lean executor"):
        backbones.Extractor(bb, "none", "float32", ("block1_conv1",))(x, taps={0: lambda a: a})


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
    monkeypatch.setattr(backbones, "_cpu_has_bf16", lambda: True)
    monkeypatch.setattr(backbones, "_speedup", [1.0])  # bf16 no faster: stay in float32
    assert backbones.resolve_precision("auto") == "float32"
    monkeypatch.setattr(backbones, "_speedup", [1.6])
    assert backbones.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(backbones, "_cpu_has_bf16", lambda: False)  # no bf16 hardware: never probed, float32
    assert backbones.resolve_precision("auto") == "float32"


def test_bf16_probe_measures_a_positive_ratio_and_caches_it(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(backbones, "_speedup", [])
    ratio = backbones.bf16_speedup()
    assert ratio > 0 and (tmp_path / "nbart_precision.json").is_file()
    monkeypatch.setattr(backbones, "_speedup", [])
    monkeypatch.setattr(backbones, "_probe_bf16", lambda: pytest.fail("probed again despite the cache"))
    assert backbones.bf16_speedup() == round(ratio, 3)


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
    traced = {key for ext in backbones._extractors.values() for key in ext.functions}
    assert any(k[0] == "dream" for k in traced) and any(k[0] == "style" for k in traced)
    counts = {}
    for ext in backbones._extractors.values():
        for key, fns in ext.functions.items():
            counts[key] = _tracing_counts(fns)
    list(dream_run(gradient_image, **TINY))
    list(style_run(gradient_image, gradient_image, model="vgg16", weights="none", precision="float32", steps=1,
                   max_size=64))
    for ext in backbones._extractors.values():  # the runs reused the traced functions: no new trace
        for key, fns in ext.functions.items():
            if key in counts:
                assert _tracing_counts(fns) == counts[key], key
    with pytest.raises(ValueError, match="task must be"):
        warmup.warm_up("paint")
