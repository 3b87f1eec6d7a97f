import dataclasses
import inspect

import pytest

import nbart
from nbart.params import DreamParams, ParamError, StyleParams, fields_of, to_code


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=0), "steps must be >= 1 (got 0)"),
        (dict(steps=2.5), "steps must be an integer (got 2.5)"),
        (dict(steps="10"), "steps must be an integer (got '10')"),
        (dict(steps=True), "steps must be an integer (got True)"),
        (dict(octave_scale=1.0), "octave_scale must be > 1 (got 1)"),
        (dict(octave_scale=float("nan")), "octave_scale must be a finite number (got nan)"),
        (dict(step_size=float("inf")), "step_size must be a finite number (got inf)"),
        (dict(step_size=-0.1), "step_size must be > 0 (got -0.1)"),
        (dict(layer_weights=(1.0, -1.0)), "each of layer_weights must be >= 0 (got -1)"),
        (dict(model="resnet"), "model must be one of inception_v3, vgg19, vgg16 (got 'resnet')"),
        (dict(layers=("mixed11",)), "unknown layer 'mixed11' for inception_v3; choose from mixed0..mixed10"),
        (dict(layers=("mixed3:x",)), "the channel after ':' must be a non-negative integer"),
        (dict(layers=("mixed3",), layer_weights=(1.0, 2.0)), "layer_weights needs one weight per layer (1) (got 2)"),
        (dict(layer_weights=(0.0, 0.0)), "layer_weights must not all be 0"),
        (dict(max_size=50), "max_size must be >= 75 px for inception_v3 (got 50)"),
        (dict(weights="nope.h5"), "weights must be auto, imagenet, offline, none or the path of a weights file"),
        (dict(precision="fp8"), "precision must be one of auto, float32, bfloat16 (got 'fp8')"),
        (dict(seed=-1), "seed must be >= 0 (got -1)"),
        (dict(jitter=None), "jitter must be an integer (got None)"),
    ],
)
def test_bad_values_are_rejected_with_the_value_and_what_is_allowed(kwargs, message):
    with pytest.raises(ParamError) as info:
        DreamParams(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_keyword_names_the_choices():
    with pytest.raises(ParamError, match="unknown parameter 'octave' for DreamParams; choose from model, weights"):
        DreamParams.from_kwargs(octave=3)


def test_a_mistyped_keyword_is_named_with_the_closest_field():
    from nbart.params import FastStyleParams, StyleParams

    with pytest.raises(ParamError, match=r"for FastStyleParams; choose from strength, .*; did you mean strength\?$"):
        FastStyleParams.from_kwargs(strenght=0.5)
    with pytest.raises(ParamError, match=r"did you mean style_weight\?$"):
        StyleParams.from_kwargs(style_wieght=3)
    with pytest.raises(ParamError) as caught:
        DreamParams.from_kwargs(banana=3)
    assert "did you mean" not in str(caught.value)


def test_values_are_coerced_to_the_declared_types():
    import numpy as np

    p = DreamParams(steps=np.int64(3), octave_scale=2, layers="mixed3, mixed5", layer_weights="1,0.5", seed=7.0)
    assert p.steps == 3 and type(p.steps) is int
    assert p.octave_scale == 2.0 and type(p.octave_scale) is float
    assert p.layers == ("mixed3", "mixed5")
    assert p.layer_weights == (1.0, 0.5)
    assert p.seed == 7 and type(p.seed) is int


def test_params_are_frozen_and_replace_validates():
    p = DreamParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.steps = 3
    assert p.replace(steps=3).steps == 3
    with pytest.raises(ParamError):
        p.replace(steps=0)


def test_every_field_has_help_and_a_closed_kind():
    for cls in (DreamParams, StyleParams):
        for info in fields_of(cls):
            assert info.spec.help, info.name
            assert info.kind in {"int", "float", "bool", "str", "choice", "optional_int", "str_tuple", "int_tuple",
                                 "float_tuple"}


def test_numeric_defaults_lie_inside_their_slider_range():
    for cls in (DreamParams, StyleParams):
        for info in fields_of(cls):
            if info.spec.ui:
                low, high, _ = info.spec.ui
                assert low <= info.default <= high, info.name


def test_signature_of_dream_lists_every_parameter():
    sig = inspect.signature(nbart.dream)
    names = [f.name for f in fields_of(DreamParams)]
    assert list(sig.parameters)[:2] == ["image", "params"]
    assert list(sig.parameters)[2:] == names
    assert sig.parameters["octaves"].default == DreamParams().octaves
    for name in names:
        assert name in nbart.dream.__doc__


def test_to_code_writes_only_what_differs_from_the_defaults():
    p = DreamParams(octaves=5, layers=("mixed4",))
    assert to_code("nbart.dream", p, "image") == "nbart.dream(image, layers=('mixed4',), octaves=5)"
    assert to_code("nbart.dream", DreamParams(), "image") == "nbart.dream(image)"


def test_layers_of_the_offline_fallback_get_that_models_errors(monkeypatch):
    """weights="auto" offline runs VGG16: its layers are accepted, and a bad channel of one is named as such (the
    message used to call block4_conv3 an unknown layer of inception_v3)."""
    monkeypatch.setenv("NBART_OFFLINE", "1")
    assert DreamParams(layers=("block4_conv3:7",)).layers == ("block4_conv3:7",)
    with pytest.raises(ParamError, match=r"^layer block4_conv3 has channels 0\.\.511 \(got 9999\)$"):
        DreamParams(layers=("block4_conv3:9999",))
    with pytest.raises(ParamError, match=r"unknown layer 'block9' for inception_v3; choose from mixed0\.\.mixed10 "
                                         r"\(or, as vgg16 runs here instead, block1_conv1\.\.block5_conv3\)"):
        DreamParams(layers=("block9",))
