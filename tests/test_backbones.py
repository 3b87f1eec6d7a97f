import numpy as np
import pytest

from nbart import backbones, extractors, precision, weights
from nbart.params import ParamError


@pytest.mark.parametrize("name", backbones.names())
def test_preprocess_and_deprocess_round_trip(name):
    import tensorflow as tf

    bb = backbones.get(name)
    x = np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(bb.deprocess(bb.preprocess(x)), x, atol=1e-5)
    np.testing.assert_allclose(bb.deprocess(bb.preprocess(tf.constant(x))).numpy(), x, atol=1e-5)


@pytest.mark.parametrize("name, module", [("inception_v3", "inception_v3"), ("vgg16", "vgg16"), ("vgg19", "vgg19")])
def test_preprocess_matches_keras_applications(name, module):
    """The classic silent bug: wrong value ranges. Compare with Keras' own preprocess_input on 0..255 RGB."""
    import keras

    x = np.random.default_rng(1).random((1, 4, 4, 3)).astype(np.float32)
    expected = getattr(keras.applications, module).preprocess_input(x * 255.0)
    np.testing.assert_allclose(backbones.get(name).preprocess(x), np.asarray(expected), atol=1e-3)


@pytest.mark.parametrize("name", backbones.names())
def test_registry_layers_exist_in_the_network(name):
    bb = backbones.get(name)
    net = backbones.model(bb, "none")
    conv_like = {layer.name for layer in net.layers}
    assert set(bb.layers) <= conv_like
    assert set(bb.dream_layers) | set(bb.content_layers) | set(bb.style_layers) <= set(bb.layers)


def test_unknown_model_lists_the_choices():
    with pytest.raises(ParamError, match="unknown model 'resnet50'; choose from inception_v3, vgg19, vgg16"):
        backbones.get("resnet50")


def test_auto_falls_back_to_the_offline_vgg16_with_a_notice(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    resolved = backbones.resolve("inception_v3", "auto")
    assert resolved.backbone.name == "vgg16" and resolved.weights == "offline"
    assert "offline VGG16" in resolved.notice and "weights='imagenet'" in resolved.notice
    assert "\n" not in resolved.notice


def test_auto_uses_cached_imagenet_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    bb = backbones.get("inception_v3")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / bb.imagenet_file).write_bytes(b"x")
    assert backbones.resolve("inception_v3", "auto") == backbones.Resolved(bb, "imagenet")


def test_imagenet_unavailable_and_offline_for_other_models_are_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(backbones.WeightsError, match="ImageNet weights for vgg19 are not in .* can't be downloaded"):
        backbones.resolve("vgg19", "imagenet")
    with pytest.raises(backbones.WeightsError, match="offline weights exist for vgg16 only"):
        backbones.resolve("vgg19", "offline")


def test_offline_weights_are_the_hed_vgg16_convs_and_are_cached():
    import h5py

    path = backbones.offline_weights_path()
    assert backbones.offline_weights_path() == path  # cached: same file, not rebuilt
    net = backbones.model(backbones.get("vgg16"), "offline")
    source = weights.hed_weights_file()
    with h5py.File(source) as f:
        kernel = f["block3/layers/conv2d_2/vars/0"][()]
        bias = f["block5/layers/conv2d_1/vars/1"][()]
    np.testing.assert_array_equal(net.get_layer("block3_conv3").get_weights()[0], kernel)
    np.testing.assert_array_equal(net.get_layer("block5_conv2").get_weights()[1], bias)


def test_changing_layers_reuses_the_cached_network():
    bb = backbones.get("vgg16")
    a = backbones.extractor(bb, "none", "float32", ("block1_conv1",))
    b = backbones.extractor(bb, "none", "float32", ("block2_conv1", "block3_conv1"))
    assert a is not b
    assert a.model.layers[1] is b.model.layers[1]  # the same conv layer object: the network was not rebuilt
    assert backbones.extractor(bb, "none", "float32", ("block1_conv1",)) is a


def test_extractor_cache_is_bounded():
    bb = backbones.get("vgg16")
    for layer in bb.layers:
        backbones.extractor(bb, "none", "float32", (layer,))
    assert len(extractors.cached_extractors) <= extractors.MAX_EXTRACTORS
    assert len(extractors.cached_models) <= extractors.MAX_MODELS


def test_precision_auto_follows_the_hardware(monkeypatch):
    assert backbones.resolve_precision("float32") == "float32"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert backbones.resolve_precision("auto") in ("float32", "bfloat16")  # bfloat16 only with a GPU
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        assert backbones.resolve_precision("auto") == "float32"


def test_activations_show_what_layers_see(gradient_image):
    from nbart import activations

    acts = activations(gradient_image, ["block1_conv1", "block3_conv1"], weights="none")
    assert acts["block1_conv1"].shape == (80, 96, 64)
    assert acts["block3_conv1"].shape == (20, 24, 256)
    assert (acts["block1_conv1"] >= 0).all()  # post-ReLU
    with pytest.raises(ParamError, match="unknown layer 'mixed3' for vgg16"):
        activations(gradient_image, ["mixed3"], weights="none")
