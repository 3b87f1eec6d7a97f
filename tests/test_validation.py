"""Parameters are refused before any work, in one line naming the value and what is allowed (issue 8.2)."""

import math

import pytest
from conftest import TINY, error_line

import nbart
from nbart import backbones, cli
from nbart.deepdream import dream_run
from nbart.params import DreamParams, ParamError, StyleParams, fields_of


def _numeric_fields(cls):
    return [f for f in fields_of(cls) if f.kind in ("int", "float", "optional_int", "float_tuple", "int_tuple")]


@pytest.mark.parametrize("cls", [DreamParams, StyleParams])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_every_numeric_field_refuses_nan_and_infinity(cls, bad):
    for info in _numeric_fields(cls):
        value = (bad,) if info.kind.endswith("_tuple") else bad
        with pytest.raises(ParamError) as error:
            cls(**{info.name: value})
        message = str(error.value)
        assert info.name in message and "finite" in message and "\n" not in message, message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model="resnet50"), "model must be one of inception_v3, vgg19, vgg16 (got 'resnet50')"),
        (dict(model="vgg16", layers=("block6_conv1",)),
         "unknown layer 'block6_conv1' for vgg16; choose from block1_conv1..block5_conv3"),
        (dict(model="vgg16", layers=("block1_conv1:64",)), "layer block1_conv1 has channels 0..63 (got 64)"),
        (dict(model="inception_v3", layers=("mixed10:2048",)), "layer mixed10 has channels 0..2047 (got 2048)"),
        (dict(steps=-3), "steps must be >= 1 (got -3)"),
        (dict(octaves=0), "octaves must be >= 1 (got 0)"),
        (dict(octave_scale=0.5), "octave_scale must be > 1 (got 0.5)"),
        (dict(layer_weights=(-0.5, 1.0)), "each of layer_weights must be >= 0 (got -0.5)"),
        (dict(step_size=0), "step_size must be > 0 (got 0)"),
        (dict(jitter=-1), "jitter must be >= 0 (got -1)"),
        (dict(model="inception_v3", max_size=74), "max_size must be >= 75 px for inception_v3 (got 74)"),
        (dict(model="vgg16", max_size=31), "max_size must be >= 32 (got 31)"),
        (dict(tile_size=64), "tile_size must be >= 128 (got 64)"),
    ],
)
def test_bad_values_are_refused_before_any_model_is_built(kwargs, message, gradient_image):
    backbones.clear_cache()
    with pytest.raises(ParamError) as error:
        dream_run(gradient_image, **{**TINY, **kwargs})
    assert message in str(error.value) and "\n" not in str(error.value)
    assert backbones.cache_sizes() == {"models": 0, "extractors": 0, "functions": 0}  # no work was done


def test_whole_bounds_and_values_are_written_in_full(capsys):
    # The seed's bound read "seed must be <= 4.29497e+09 (got 4.29497e+09)": bound and value looked the same.
    with pytest.raises(ParamError, match=r"^seed must be <= 4294967295 \(got 4294967296\)$"):
        StyleParams(seed=2**32)
    seed_doc = next(line for line in nbart.style_transfer.__doc__.splitlines() if "seed = None:" in line)
    assert seed_doc.endswith("<= 4294967295)"), seed_doc
    with pytest.raises(ParamError, match=r"^average_decay must be <= 0.999 \(got 1\)$"):
        StyleParams(average_decay=1.0)
    assert cli.main(["style", "sample:grace_hopper", "sample:starry_night", "-o", "x.png", "--seed", "4294967296"]) == 2
    assert error_line(capsys).endswith("seed must be <= 4294967295 (got 4294967296)")


def test_registry_channel_counts_match_the_networks():
    for name in backbones.names():
        bb = backbones.get(name)
        net = backbones.model(bb, "none")
        assert bb.channels == tuple(net.get_layer(layer).output.shape[-1] for layer in bb.layers), name


def test_weights_files_are_checked_before_the_run(tmp_path, gradient_image, capsys):
    text = tmp_path / "weights.h5"
    text.write_text("not weights")
    odd = tmp_path / "weights.bin"
    odd.write_bytes(b"\x89HDF\r\n\x1a\n")
    for path, message in ((text, f"{str(text)!r} is not a Keras weights file"),
                          (odd, "a weights file must end in .weights.h5, .h5 or .keras")):
        with pytest.raises(ParamError, match=message):
            DreamParams(weights=str(path))
    photo = tmp_path / "photo.png"
    gradient_image.save(photo)
    assert cli.main(["dream", str(photo), "-o", str(tmp_path / "o.png"), f"--weights={text}"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "is not a Keras weights file" in err[0]


def test_weights_of_another_network_fail_in_one_line(tmp_path, gradient_image, capsys):
    """A real weights file, of the wrong network: found only when Keras loads it, and reported as WeightsError."""
    other = tmp_path / "vgg19.weights.h5"
    backbones.model(backbones.get("vgg19"), "none").save_weights(other)
    run = dream_run(gradient_image, **{**TINY, "weights": str(other)})
    with pytest.raises(backbones.WeightsError) as error:
        list(run)
    assert str(error.value).startswith(f"can't load the weights file {other} into vgg16: ")
    assert "\n" not in str(error.value)
    photo = tmp_path / "photo.png"
    gradient_image.save(photo)
    out = tmp_path / "o.png"
    # 3 octaves: all fit this small photo, so no note about dropped ones precedes the error line
    argv = ["dream", str(photo), "-o", str(out), "--model=vgg16", f"--weights={other}", "--quiet", "--octaves=3"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"nbart: error: can't load the weights file {other} into vgg16")
    assert not out.exists()
