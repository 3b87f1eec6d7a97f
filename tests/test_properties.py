"""Property-based tests (issue 8.5): over image sizes, modes, bytes and parameters, outputs have the requested shape
and dtype, hold no NaN and stay in range; anything else is one ParamError or ImageError line, never another
exception."""

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from nbart import images
from nbart.deepdream import dream_run
from nbart.images import ImageError, fit, load_image
from nbart.params import DreamParams, ParamError, StyleParams, fields_of
from nbart.styletransfer import style_run

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUNS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sides = st.integers(min_value=1, max_value=48)


@st.composite
def arrays(draw):
    """Arrays in every accepted layout and dtype, with random values."""
    h, w = draw(sides), draw(sides)
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    dtype = draw(st.sampled_from(["uint8", "uint16", "bool", "float32", "float64"]))
    shape = (h, w) if channels is None else (h, w, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "bool":
        a = rng.random(shape) > 0.5
    elif dtype.startswith("float"):
        a = rng.random(shape).astype(dtype)
    else:
        a = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    return a


def _expected_rgb(a: np.ndarray) -> np.ndarray:
    """What load_image must make of an array, computed independently in float64."""
    if a.dtype == bool:
        v = a.astype(np.float64) * 255
    elif a.dtype == np.uint16:
        v = np.round(a.astype(np.float64) / 257)
    elif a.dtype.kind == "f":
        v = np.round(a.astype(np.float64) * 255)
    else:
        v = a.astype(np.float64)
    if v.ndim == 3 and v.shape[-1] == 1:
        v = v[..., 0]
    if v.ndim == 2:
        v = np.repeat(v[..., None], 3, axis=-1)
    if v.shape[-1] == 4:  # composited on white
        alpha = v[..., 3:] / 255
        v = v[..., :3] * alpha + 255 * (1 - alpha)
    return v


@FAST
@given(arrays())
def test_arrays_load_with_their_size_and_colours(a):
    img = load_image(a)
    assert img.mode == "RGB" and img.size == (a.shape[1], a.shape[0])
    out = np.asarray(img)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(np.float64) - _expected_rgb(a)).max() <= 1  # rounding of the alpha composite


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr", "HSV", "LAB"]
FORMATS = {"PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"), "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK",
                                                                         "I;16", "I", "F", "YCbCr", "LAB"),
           "BMP": ("1", "L", "P", "RGB"), "WEBP": ("RGB", "RGBA"), "GIF": ("L", "P")}


@st.composite
def pictures(draw):
    mode = draw(st.sampled_from(MODES))
    w, h = draw(sides), draw(sides)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bands = len(Image.new(mode, (1, 1)).getbands())
    if mode in ("I;16",):
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.int32), "I")
    if mode == "F":
        return Image.fromarray(rng.random((h, w)).astype(np.float32), "F")
    data = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    if mode in ("P", "PA", "1"):
        img = Image.fromarray(data[..., 0], "L").convert(mode) if mode != "PA" else None
        if mode == "PA":
            img = Image.fromarray(data[..., 0], "L").convert("P").convert("PA")
        return img
    return Image.frombytes(mode, (w, h), data.tobytes())


@FAST
@given(pictures(), st.data())
def test_pictures_of_every_mode_load_the_same_from_memory_and_from_a_file(picture, data):
    """Every mode becomes RGB of the same size; a lossless file of it gives the same pixels as the image itself."""
    direct = load_image(picture)
    assert direct.mode == "RGB" and direct.size == picture.size
    formats = [f for f, modes in FORMATS.items() if picture.mode in modes]
    assume(formats)
    fmt = data.draw(st.sampled_from(formats))
    buf = io.BytesIO()
    picture.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    loaded = load_image(buf.getvalue())
    assert loaded.mode == "RGB" and loaded.size == picture.size
    tolerance = 1 if picture.mode in ("RGBA", "LA", "PA") and fmt == "WEBP" else 0
    diff = np.abs(np.asarray(loaded, np.int16) - np.asarray(direct, np.int16)).max()
    assert diff <= tolerance, (picture.mode, fmt, diff)


def _sample_files() -> list[bytes]:
    rng = np.random.default_rng(0)
    pic = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out = []
    for fmt, kw in [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}), ("GIF", {}), ("WEBP", {}),
                    ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"})]:
        buf = io.BytesIO()
        pic.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    return out


SAMPLES = _sample_files()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(range(len(SAMPLES))), st.floats(0, 1), st.binary(max_size=64), st.sampled_from(
    ["cut", "corrupt", "splice"]))
def test_damaged_files_give_a_picture_or_one_image_error(index, where, noise, how):
    """Cut, corrupted or spliced image files: the result is an RGB image or ImageError, never another exception."""
    data = SAMPLES[index]
    at = int(where * len(data))
    if how == "cut":
        damaged = data[:at]
    elif how == "corrupt":
        damaged = data[:at] + noise + data[at + len(noise):]
    else:
        damaged = data[:at] + noise
    try:
        img = load_image(damaged, max_size=64)
    except ImageError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert img.mode == "RGB" and max(img.size) <= 64 and min(img.size) >= 1


@FAST
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(32, 2048), st.sampled_from([1, 32, 75]))
def test_fit_keeps_the_bounds_and_the_aspect_or_says_too_thin(w, h, max_size, min_size):
    small = Image.new("RGB", (1, 1))
    fake = small.resize((w, h)) if w * h <= 4_000_000 else None
    assume(fake is not None)
    try:
        out = fit(fake, max_size, min_size)
    except ImageError as e:
        assert str(e).startswith(f"image is too thin: {w}x{h} px") and min_size > 1
        assert max(w, h) / min(w, h) > max_size / min_size * 0.99
        return
    ow, oh = out.size
    if max(w, h) > max_size or min(w, h) < min_size:
        assert max(ow, oh) <= max_size or min(ow, oh) == min_size
    assert min(ow, oh) >= min_size
    if max(w, h) <= max_size and min(w, h) >= min_size:
        assert (ow, oh) == (w, h)  # already fits: untouched
    if min(ow, oh) > 1:
        assert abs(ow / oh - w / h) <= (w / h) * 2 / min(ow, oh) + 1e-9  # the aspect, up to rounding


NUMBERS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.sampled_from([0, 1, -1, 0.5, 1.0000001, 2**32, math.nan, math.inf]))


@FAST
@given(st.sampled_from([DreamParams, StyleParams]), st.data())
def test_parameters_are_valid_or_one_param_error(cls, data):
    infos = [f for f in fields_of(cls) if f.kind in ("int", "float", "optional_int")]
    chosen = data.draw(st.lists(st.sampled_from(infos), min_size=1, max_size=3, unique_by=lambda f: f.name))
    kwargs = {f.name: data.draw(NUMBERS) for f in chosen}
    try:
        p = cls(model="vgg16", **kwargs)
    except ParamError as e:
        assert "\n" not in str(e) and any(name in str(e) for name in kwargs), (kwargs, e)
        return
    for f in chosen:
        value = getattr(p, f.name)
        assert value is None or math.isfinite(value)
        if value is not None and f.spec.low is not None:
            assert value > f.spec.low if f.spec.low_open else value >= f.spec.low
        if value is not None and f.spec.high is not None:
            assert value <= f.spec.high


@RUNS
@given(w=st.integers(1, 120), h=st.integers(1, 120), mode=st.sampled_from(["RGB", "L", "RGBA", "P", "I;16"]),
       octaves=st.integers(1, 3), octave_scale=st.floats(1.1, 2.0), steps=st.integers(1, 2),
       step_size=st.floats(0.001, 0.2), jitter=st.integers(0, 16), max_size=st.integers(32, 96),
       tile_size=st.sampled_from([128, 512]), seed=st.integers(0, 100))
def test_dreams_keep_shape_dtype_and_range(w, h, mode, octaves, octave_scale, steps, step_size, jitter, max_size,
                                           tile_size, seed):
    source = Image.new(mode, (w, h))
    source.putdata([(i * 37) % 256 for i in range(w * h)] if mode in ("L", "P") else
                   [(i * 53) % 65536 for i in range(w * h)] if mode == "I;16" else
                   [((i * 37) % 256, (i * 91) % 256, (i * 13) % 256, 255)[: len(mode)] for i in range(w * h)])
    try:
        run = dream_run(source, model="vgg16", weights="none", octaves=octaves, octave_scale=octave_scale, steps=steps,
                        step_size=step_size, jitter=jitter, max_size=max_size, tile_size=tile_size, seed=seed,
                        precision="float32")
    except ImageError as e:  # only a picture too thin for the 32 px backbone within max_size
        assert str(e).startswith("image is too thin") and max(w, h) / min(w, h) > max_size / 32
        return
    sw, sh = run.start_image.size
    assert min(sw, sh) >= 32 and (max(sw, sh) <= max_size or min(sw, sh) == 32)
    events = list(run)
    assert run.completed and len(events) == run.total
    for event in events:
        assert math.isfinite(event.loss)
        floats = np.asarray(event.render(), np.float32) if event.render is not None else None
        if floats is not None:
            assert np.isfinite(floats).all() and floats.min() >= 0 and floats.max() <= 1
        pixels = event.image()
        assert pixels.shape == (sh, sw, 3) and pixels.dtype == np.uint8


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=st.integers(1, 90), h=st.integers(1, 90), sw=st.integers(1, 90), sh=st.integers(1, 90),
       optimizer=st.sampled_from(["lbfgs", "adam"]), preserve_colors=st.booleans(),
       init=st.sampled_from(["content", "noise", "style"]), seed=st.integers(0, 100))
def test_style_transfers_keep_shape_dtype_and_range(w, h, sw, sh, optimizer, preserve_colors, init, seed):
    rng = np.random.default_rng(seed)
    content = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    style = Image.fromarray(rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8))
    try:
        run = style_run(content, style, model="vgg16", weights="none", max_size=64, steps=2, seed=seed,
                        optimizer=optimizer, preserve_colors=preserve_colors, init=init, precision="float32")
    except ImageError as e:
        assert "is too thin" in str(e)
        return
    events = list(run)
    out_w, out_h = run.start_image.size
    assert min(out_w, out_h) >= 32 and events, (run.outcome, run.notices)
    for event in events:
        assert math.isfinite(event.loss)
        pixels = event.image()
        assert pixels.shape == (out_h, out_w, 3) and pixels.dtype == np.uint8


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2, 2, 3), np.uint8), np.zeros((5, 5, 7), np.uint8)])
def test_other_shapes_are_one_image_error(bad):
    with pytest.raises(ImageError, match="array must have shape"):
        images.from_array(bad)


def test_decoder_warnings_do_not_escape():
    """Pillow warns while repairing damaged files (corrupt EXIF, short reads); a CLI would print each warning with
    its source line, breaking the one-line promise. Every cut of these files loads or fails without a warning."""
    import warnings

    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "camera"
    tiff, jpeg = io.BytesIO(), io.BytesIO()
    pic = Image.new("RGB", (24, 16), (10, 120, 240))
    pic.save(tiff, "TIFF", exif=exif)
    pic.save(jpeg, "JPEG", exif=exif)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for data in (tiff.getvalue(), jpeg.getvalue()):
            for at in range(8, len(data), 7):
                try:
                    load_image(data[:at])
                except ImageError:
                    pass
    assert [str(w.message) for w in caught] == []
