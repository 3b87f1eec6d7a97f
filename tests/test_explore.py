"""The layer and channel explorer (nbart.explore): batched objectives that don't mix, the cascade's equality with the
plain batch, channels, results as they finish, stop, the cache, the fallback and bad values. Tiny random-weight
VGG16 (plumbing); no timings asserted (benchmarks/bench_explore.py measures them)."""

import numpy as np
import pytest
from PIL import Image

import nbart
from nbart import explorer, registry
from nbart.errors import ParamError
from nbart.sheets import Sheet, contact_sheet

TINY = dict(model="vgg16", weights="none", size=40, steps=2, precision="float32", seed=0)
LAYERS = ["block1_conv1", "block2_conv2", "block3_conv1"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    explorer.clear_cache()
    yield
    explorer.clear_cache()


def _extractor(layers):
    ex = explorer.explore_run(np.zeros((40, 40, 3), np.uint8), layers=layers, **TINY)
    return ex._prepared.extractor  # noqa: SLF001  (the test reaches the exploration's own extractor)


def test_batched_objectives_dont_mix_and_the_cascade_gives_the_plain_batch_values():
    import tensorflow as tf

    ext = _extractor(LAYERS)
    elements = (2, 1, 0, 0)  # deepest first; two elements on block1_conv1, one of them on a channel
    channels = tf.constant([-1, -1, -1, 5], tf.int32)
    x = tf.constant(np.random.default_rng(1).random((4, 40, 48, 3), np.float32))
    m_cascade, g_cascade = explorer.batched_step(ext, elements, cascade=True)(x, channels)
    m_plain, g_plain = explorer.batched_step(ext, elements, cascade=False)(x, channels)
    np.testing.assert_allclose(m_cascade, m_plain, rtol=1e-5)
    np.testing.assert_allclose(g_cascade, g_plain, atol=1e-5 * float(tf.reduce_max(tf.abs(g_plain))))
    for k, (layer, channel) in enumerate(zip(elements, (-1, -1, -1, 5))):  # each alone: the same value and gradient
        m_one, g_one = explorer.batched_step(ext, (layer,))(x[k:k + 1], tf.constant([channel], tf.int32))
        np.testing.assert_allclose(m_one[0], m_cascade[k], rtol=1e-5)
        np.testing.assert_allclose(g_one[0], g_cascade[k], atol=1e-5 * float(tf.reduce_max(tf.abs(g_one))))


def test_explore_every_layer_gives_a_labelled_grid_and_climbing_dreams(gradient_image):
    sheet = nbart.explore(gradient_image, jitter=0, **TINY)
    assert isinstance(sheet, Sheet) and isinstance(sheet.image, Image.Image)
    specs = [r.spec for r in sheet.results]
    assert specs == list(registry.get("vgg16").layers)
    for r in sheet.results:
        assert r.image.size == (40, 33) and r.gain > 1.0, (r.spec, r.gain)  # gradient ascent raised its activation
        assert r.label.startswith(r.spec + " x")
        assert not np.array_equal(np.asarray(r.image), np.asarray(gradient_image.resize((40, 33))))
    grid, results = sheet  # unpacks as (image, results)
    assert grid.width > 4 * 40 and grid.height > 3 * 33 and sheet._repr_png_().startswith(b"\x89PNG")


def test_results_arrive_batch_by_batch_shallow_first_and_stop_keeps_what_finished(gradient_image):
    ex = nbart.explore_run(gradient_image, layers=list(reversed(LAYERS)), batch=1, **TINY)
    assert ex.specs == tuple(LAYERS)  # grid in network order
    it = iter(ex)
    first = next(it)
    assert first.spec == "block1_conv1" and not first.cached
    ex.stop()
    assert list(it) == [] and list(ex.results) == ["block1_conv1"] and not ex.done
    grid = ex.grid()  # the unmade ones are grey placeholders
    grey = np.all(np.asarray(grid) == 220, axis=-1).sum()
    assert 2 * 40 * 33 <= grey < 2 * 40 * 33 + 40  # two tiles' worth of placeholder


def test_results_are_cached_per_image_and_settings(gradient_image):
    one = nbart.explore_run(gradient_image, layers=LAYERS[:2], **TINY).run()
    again = list(nbart.explore_run(gradient_image, layers=LAYERS, **TINY))
    assert [r.cached for r in again] == [True, True, False]
    for r in again[:2]:
        assert np.array_equal(np.asarray(r.image), np.asarray(one.results[r.spec].image))
    other_steps = list(nbart.explore_run(gradient_image, layers=LAYERS[:1], **dict(TINY, steps=3)))
    other_image = list(nbart.explore_run(gradient_image.rotate(90, expand=True), layers=LAYERS[:1], **TINY))
    assert not other_steps[0].cached and not other_image[0].cached


def test_batching_gives_the_pictures_of_one_objective_per_call(gradient_image):
    batched = nbart.explore_run(gradient_image, layers=LAYERS, batch=3, **TINY).run()
    explorer.clear_cache()
    single = nbart.explore_run(gradient_image, layers=LAYERS, batch=1, **TINY).run()
    for spec in LAYERS:
        a, b = (np.asarray(x.results[spec].image, np.int16) for x in (batched, single))
        assert np.abs(a - b).max() <= 2, spec  # float rounding of a batched convolution, at most


def test_the_first_call_runs_on_the_network_cut_after_the_shallowest_layer(gradient_image):
    from nbart import extractors

    extractors.cached_extractors.clear()
    ex = nbart.explore_run(gradient_image, layers=LAYERS, **TINY)
    first = next(iter(ex))
    # its own extractor (flipping ahead, as the dream step's): the whole network is not built for the first picture
    keys = list(extractors.cached_extractors.keys())
    assert first.spec == LAYERS[0] and [k[3] for k in keys] == [tuple(LAYERS[:1])] and keys[0][-1] == "flip_ahead"
    ex.run()
    explorer.clear_cache()
    whole = nbart.explore_run(gradient_image, layers=LAYERS, batch=3, **TINY).run()  # one call, the whole network
    a, b = (np.asarray(x.results[LAYERS[0]].image, np.int16) for x in (ex, whole))
    assert np.abs(a - b).max() <= 2  # float rounding of a batched convolution, at most


def test_channels_most_active_or_chosen(gradient_image):
    layer = "block2_conv1"
    top = nbart.explore_run(gradient_image, layers=layer, channels=3, **TINY)
    act = nbart.activations(gradient_image.resize((40, 33)), [layer], model="vgg16", weights="none")[layer]
    expected = [int(c) for c in np.argsort(-act.mean(axis=(0, 1)), kind="stable")[:3]]
    assert top.specs == tuple(f"{layer}:{c}" for c in expected)
    chosen = nbart.explore_run(gradient_image, layers=[layer], channels=range(4, 7), **TINY)
    assert chosen.specs == (f"{layer}:4", f"{layer}:5", f"{layer}:6")
    results = list(chosen)
    assert len({np.asarray(r.image).tobytes() for r in results}) == 3  # each channel dreams its own picture


def test_auto_weights_explore_the_backbone_that_really_runs(gradient_image):
    ex = nbart.explore_run(gradient_image, model="inception_v3", weights="auto", size=80, steps=1)
    assert ex.specs == registry.get("vgg16").layers  # NBART_OFFLINE: the offline VGG16 runs
    assert any("offline" in n for n in ex.notices)


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps must be >= 1 (got 0)"),
    (dict(layers="mixed3"), "unknown layer 'mixed3' for vgg16"),
    (dict(layers="block1_conv1", channels=65), "channels must be from 1 to 64, the channels of block1_conv1"),
    (dict(layers="block1_conv1", channels=[3, 64]), "layer block1_conv1 has channels 0..63 (got 64)"),
    (dict(layers=["block1_conv1", "block1_conv2"], channels=2), "channels= explores one layer"),
    (dict(layers="block1_conv1:3"), "layers takes layer names"),
    (dict(batch=0), "batch must be None or an integer >= 1 (got 0)"),
    (dict(size=16), "size must be >= 32 (got 16)"),
])
def test_bad_values_are_one_clear_line(gradient_image, kwargs, message):
    with pytest.raises(nbart.ParamError) as e:
        nbart.explore_run(gradient_image, **dict(TINY, **kwargs))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_calls_by_default_the_first_layer_alone_then_the_rest_cascaded_channels_eight_each():
    from nbart import cost

    layers = [f"l{i}" for i in range(13)]
    channels = [f"l0:{i}" for i in range(13)]
    # at 128 px: the shallowest alone (the first thumbnail soon), then all the others in one cascaded call
    assert [len(c) for c in explorer._chunks(layers, None, 128 * 109)] == [1, 12]  # noqa: SLF001
    assert [len(c) for c in explorer._chunks(layers, None, 512 * 436)] == [1] * 13  # noqa: SLF001
    assert [len(c) for c in explorer._chunks(layers, None, 256 * 218)] == [1, 4, 4, 4]  # noqa: SLF001
    assert [len(c) for c in explorer._chunks(channels, None)] == [8, 5]  # noqa: SLF001
    assert [len(c) for c in explorer._chunks(layers, 5)] == [5, 5, 3]  # noqa: SLF001
    # the cost model plans the same calls (it sits below the explorer and keeps copies of its constants)
    assert cost.EXPLORE_LAYER_BATCH_PIXELS == explorer.LAYER_BATCH_PIXELS
    assert cost.EXPLORE_CHANNELS_PER_CALL == explorer.CHANNELS_PER_CALL


def test_contact_sheet_cuts_long_captions_and_takes_mixed_sizes():
    tiles = [("a" * 80, Image.new("RGB", (30, 20), "red")), (("two", "lines"), Image.new("RGB", (20, 30), "blue")),
             ("missing", None)]
    sheet = contact_sheet(tiles, columns=2, title="t")
    assert sheet.size[0] == 6 + 2 * (30 + 6)
    with pytest.raises(ValueError):
        contact_sheet([])


def test_a_long_caption_takes_a_second_line_instead_of_losing_its_end():
    """'block4_conv3:311' on a 64 px tile used to read 'block4_conv3:3…': the channel number was lost."""
    from PIL import ImageDraw, ImageFont

    from nbart import sheets

    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), ImageFont.load_default()
    for text, width in [("block4_conv3:311", 62), ("style_loss=sliced_wasserstein", 126)]:
        lines = sheets._wrap_text(draw, text, font, width)  # noqa: SLF001
        assert len(lines) == 2 and "".join(lines) == text, lines  # all of it, broken at a separator
        assert lines[0][-1] in ":=,_" and all(draw.textlength(line, font=font) <= width for line in lines)
    tile = Image.new("RGB", (64, 64), "red")
    one, two = contact_sheet([("short", tile)]), contact_sheet([("block4_conv3:311", tile)])
    assert two.size[1] > one.size[1]  # the second line has its room


def test_an_empty_layer_list_is_refused_not_read_as_every_layer(gradient_image):
    for empty in ([], iter(())):  # a list or any iterable, read once
        with pytest.raises(ParamError, match=r"^layers is empty: give layer names, or None"):
            nbart.explore(gradient_image, layers=empty, **TINY)
    grid = nbart.explore(gradient_image, layers=(n for n in ["block1_conv1"]), **TINY)  # a generator, read once
    assert [r.spec for r in grid.results] == ["block1_conv1"]
