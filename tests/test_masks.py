"""Masks (nbart.masks), masked and guided runs (nbart.control), colour control: makers' shapes and ranges, errors,
and measured effects: the masked-out region barely changes, the masked-in one does, regions take their own style."""

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE, error_line
from PIL import Image

from nbart import cli, images, masks, pixels
from nbart.deepdream import dream_run
from nbart.errors import ImageError, ParamError
from nbart.params import StyleParams
from nbart.styletransfer import style_run

H, W = 40, 48  # TINY_STYLE's 48 px output of the 96x80 gradient image


@pytest.fixture
def style():
    rng = np.random.default_rng(3)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[::4] = (250, 200, 30)
    stripes[1::4] = (20, 60, 200)
    return Image.fromarray(np.clip(stripes + rng.integers(0, 30, stripes.shape), 0, 255).astype(np.uint8))


def _float(img):
    return np.asarray(img, np.float32) / 255.0


# ---------------------------------------------------------------------------------------------------------------
# makers


@pytest.mark.parametrize("make", [
    lambda: masks.rectangle((30, 50), (0.1, 0.2, 0.6, 0.9)),
    lambda: masks.ellipse((30, 50), (0.5, 0.5), (0.3, 0.4)),
    lambda: masks.linear_gradient((30, 50), angle=30),
    lambda: masks.invert(masks.ellipse((30, 50))),
    lambda: masks.feather(masks.rectangle((30, 50)), 3.0),
    lambda: masks.combine(masks.rectangle((30, 50)), masks.ellipse((30, 50))),
    lambda: masks.from_alpha(np.dstack([np.zeros((30, 50, 3), np.uint8), np.full((30, 50), 128, np.uint8)])),
])
def test_makers_give_float_masks_in_0_1_of_the_asked_size(make):
    m = make()
    assert m.shape == (30, 50) and m.dtype == np.float32
    assert 0.0 <= m.min() and m.max() <= 1.0 and m.max() > 0


def test_shapes_are_where_they_are_asked():
    r = masks.rectangle((20, 40), (0.0, 0.0, 1.0, 0.5))
    assert r[:, :20].min() == 1 and r[:, 20:].max() == 0
    e = masks.ellipse((21, 21), (0.5, 0.5), (0.25, 0.25))
    assert e[10, 10] == 1 and e[0, 0] == 0 and 0.15 < e.mean() < 0.25  # pi/16 of the square
    g = masks.linear_gradient((4, 10))  # left to right
    assert (np.diff(g[0]) > 0).all() and np.allclose(g[0], g[3])
    assert masks.linear_gradient((10, 4), angle=90)[:, 0].argmax() == 9  # top to bottom
    f = masks.feather(r, 2.0)
    assert 0.2 < f[10, 20] < 0.8 and f[10, 2] > 0.99 and f[10, 38] < 0.01  # soft at the edge only
    assert np.array_equal(masks.invert(masks.invert(r)), r)


def test_clusters_split_an_image_by_colour_numbered_dark_to_light():
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :10] = (20, 20, 20)  # dark
    img[:, 10:20] = (200, 40, 40)  # red
    img[:, 20:] = (240, 240, 240)  # light
    labels = masks.cluster_labels(img, k=3)
    assert labels.shape == (20, 30) and labels.dtype == np.int32
    assert (labels[:, :10] == 0).all() and (labels[:, 20:] == 2).all() and (labels[:, 10:20] == 1).all()
    m = masks.clusters(img, k=3, keep=(0, 2))
    assert m[:, :10].min() == 1 and m[:, 10:20].max() == 0 and m[:, 20:].min() == 1
    with pytest.raises(ParamError, match=r"keep must list clusters in 0..2 \(got \[3\]\)"):
        masks.clusters(img, k=3, keep=3)
    with pytest.raises(ParamError, match="k .* must be an integer in 1..16"):
        masks.cluster_labels(img, k=0)


def test_luminance_range_and_alpha():
    img = np.repeat(np.linspace(0, 1, 11, dtype=np.float32)[None, :, None], 3, axis=2)  # a grey ramp, 1x11
    assert masks.luminance_range(img, 0.5, 1.0).tolist() == [[0.0] * 5 + [1.0] * 6]
    soft = masks.luminance_range(img, 0.5, 1.0, softness=0.2)[0]
    assert soft[4] == pytest.approx(0.5, abs=1e-5) and soft[2] == 0 and soft[10] == 1
    with pytest.raises(ParamError, match="no alpha channel"):
        masks.from_alpha(Image.new("RGB", (4, 4)))


def test_load_mask_resizes_with_a_notice_and_refuses_bad_masks(tmp_path):
    m, notice = masks.load_mask(masks.ellipse((20, 20)), (10, 30))
    assert m.shape == (10, 30) and notice == "mask resized from 20x20 to the image's 30x10 px (its shape differs: " \
                                              "stretched)"
    assert masks.load_mask(masks.ellipse((10, 30)), (10, 30))[1] is None
    path = tmp_path / "m.png"
    Image.fromarray((masks.rectangle((10, 30)) * 255).astype(np.uint8)).save(path)
    assert np.array_equal(masks.load_mask(str(path), (10, 30))[0], masks.rectangle((10, 30)))  # white = 1
    with pytest.raises(ParamError, match=r"^mask is all black, so it applies nowhere: white marks where to apply"):
        masks.load_mask(np.zeros((8, 8), np.float32))
    with pytest.raises(ParamError, match=r"^mask: a float mask must hold values in \[0, 1\] \(got 255..255\); "
                                         r"divide by 255"):
        masks.load_mask(np.full((8, 8), 255.0))
    with pytest.raises((ParamError, ImageError), match="empty"):
        masks.load_mask(np.zeros((0, 8), np.float32))
    with pytest.raises(ImageError, match="no such file"):
        masks.load_mask(str(tmp_path / "missing.png"))


# ---------------------------------------------------------------------------------------------------------------
# style transfer with masks


def test_a_masked_style_changes_only_the_masked_in_region(gradient_image, style):
    left = masks.rectangle((H, W), (0.0, 0.0, 1.0, 0.5))
    run = style_run(gradient_image, style, mask=left, **TINY_STYLE)
    out, content = _float(run.run()), _float(gradient_image.resize((W, H), Image.Resampling.LANCZOS))
    change = np.abs(out - content).mean(axis=-1)
    assert change[:, :W // 2].mean() > 0.02  # the style went in
    assert change[:, W // 2:].max() <= 1.5 / 255  # the content stayed (up to rounding)
    assert run.metadata()["params"]["mask"] == ["<ndarray>"] and run.notices == []


def test_grey_in_a_mask_changes_partly(gradient_image, style):
    ramp = masks.linear_gradient((H, W))  # 0 at the left, 1 at the right
    run = style_run(gradient_image, style, mask=ramp, **TINY_STYLE)
    change = np.abs(_float(run.run()) - _float(gradient_image.resize((W, H), Image.Resampling.LANCZOS))).mean(-1)
    thirds = [change[:, i * W // 3:(i + 1) * W // 3].mean() for i in range(3)]
    assert thirds[0] < thirds[1] < thirds[2]


@pytest.mark.quality
def test_each_style_paints_its_own_region_without_bleeding():
    """Two flat styles (red, blue) in two masks (left, right): guided Gram matrices give each region its style's
    colour statistics; the offline VGG16 at 64 px (random weights carry no colour statistics worth measuring)."""
    rng = np.random.default_rng(0)
    content = np.full((64, 64, 3), 0.5, np.float32) + rng.normal(0, 0.05, (64, 64, 3)).astype(np.float32)
    red = np.clip(np.array([0.9, 0.1, 0.1], np.float32) + rng.normal(0, 0.08, (64, 64, 3)), 0, 1).astype(np.float32)
    blue = red[..., ::-1].copy()
    left = masks.rectangle((64, 64), (0.0, 0.0, 1.0, 0.5))
    run = style_run(np.clip(content, 0, 1), [red, blue], mask=[left, masks.invert(left)], model="vgg16",
                    weights="offline", sizes=(64,), steps=15, seed=0, precision="float32", content_weight=0.1)
    out = _float(run.run())
    redness = out[..., 0] - out[..., 2]  # > 0: red, < 0: blue; the grey content is 0
    # measured (2-core AMD EPYC, 15 L-BFGS steps): left +0.023, right -0.171
    assert redness[:, :24].mean() > 0.0 > redness[:, 40:].mean()
    assert redness[:, :24].mean() - redness[:, 40:].mean() > 0.12


def test_masks_must_be_one_or_one_per_style(gradient_image, style):
    m = masks.ellipse((H, W))
    with pytest.raises(ParamError, match=r"mask needs one mask, or one per style image \(2\) \(got 3\)"):
        style_run(gradient_image, [style, style], mask=[m, m, m], **TINY_STYLE)
    with pytest.raises(ParamError, match="mask 2 is all black"):
        style_run(gradient_image, [style, style], mask=[m, np.zeros((H, W), np.float32)], **TINY_STYLE)
    run = style_run(gradient_image, style, mask=masks.ellipse((10, 10)), **TINY_STYLE)
    assert run.notices == ["mask resized from 10x10 to the image's 48x40 px (its shape differs: stretched)"]


def test_a_mask_given_in_code_goes_on_in_a_continue_and_is_asked_for_when_missing(gradient_image, style):
    m = masks.rectangle((H, W), (0.0, 0.0, 1.0, 0.5))
    run = style_run(gradient_image, style, mask=m, **TINY_STYLE)
    run.run()
    follow = run.continued(2)
    out = _float(follow.run())
    before = _float(run.image())
    assert np.abs(out - before)[:, W // 2 + 2:].max() <= 1.5 / 255  # still masked
    with pytest.raises(ParamError, match=r"mask <ndarray> was an image given in code; give the image itself as "
                                         r"mask="):
        style_run(gradient_image, style, run.params)


# ---------------------------------------------------------------------------------------------------------------
# dreams with masks and guides


def test_a_masked_dream_leaves_the_masked_out_region_as_it_was(gradient_image):
    right = masks.rectangle((53, 64), (0.0, 0.5, 1.0, 1.0))
    run = dream_run(gradient_image, mask=right, **TINY)
    out, start = _float(run.run()), _float(run.start_image)
    change = np.abs(out - start).mean(-1)
    assert change[:, 36:].mean() > 0.01 and change[:, :28].max() <= 1.5 / 255
    assert run.metadata()["params"]["mask"] == "<ndarray>"


def test_laplacian_normalization_acts_in_masked_and_guided_dreams_too(gradient_image):
    # It was dropped silently wherever a mask or a guide was given (same pixels as std); now the pyramid smooths the
    # gradient and the mask still bounds where it acts.
    right = masks.rectangle((53, 64), (0.0, 0.5, 1.0, 1.0))
    for extra in ({"mask": right}, {"guide": "sample:starry_night"}):
        std = _float(dream_run(gradient_image, **extra, **TINY).run())
        run = dream_run(gradient_image, normalize="laplacian", **extra, **TINY)
        laplacian, start = _float(run.run()), _float(run.start_image)
        assert np.isfinite(laplacian).all() and np.abs(laplacian - std).mean() > 1e-3, extra
        if "mask" in extra:
            assert np.abs(laplacian - start).mean(-1)[:, :28].max() <= 1.5 / 255


def test_a_guided_dream_runs_and_its_guide_changes_the_picture(gradient_image):
    plain = _float(dream_run(gradient_image, **TINY).run())
    run = dream_run(gradient_image, guide="sample:starry_night", **TINY)
    guided = _float(run.run())
    assert np.abs(guided - plain).mean() > 0.005 and run.metadata()["params"]["guide"] == "sample:starry_night"
    with pytest.raises(ParamError, match="guide matches whole layers: drop the ':N' channels"):
        dream_run(gradient_image, guide="sample:starry_night", **{**TINY, "layers": ("block3_conv1:3",)})


@pytest.mark.quality
def test_a_guided_dream_grows_the_guides_features():
    """At the dreamed layer, the result's feature vectors match the guide's (best-match dot product and cosine,
    the objective_guide measure) better than a plain dream's do. Measured (offline VGG16, 96 px, 2-core AMD EPYC):
    best-match dot product start 9442, plain 25880, guided 29070; cosine 0.575, 0.615, 0.637."""
    import nbart

    layer, guide = "block4_conv3", "sample:starry_night"
    kw = dict(model="vgg16", weights="offline", max_size=96, octaves=2, steps=10, seed=0, precision="float32",
              layers=(layer,))

    def features(img, size):
        f = nbart.activations(img, [layer], "vgg16", "offline", size)[layer]
        return f.reshape(-1, f.shape[-1])

    y = features(guide, 224)
    y_unit = y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-6)

    def match(img):
        x = features(img, 96)
        x_unit = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)
        return float((x @ y.T).max(1).mean()), float((x_unit @ y_unit.T).max(1).mean())

    plain = match(dream_run("sample:grace_hopper", **kw).run())
    guided = match(dream_run("sample:grace_hopper", guide=guide, **kw).run())
    assert guided[0] > 1.05 * plain[0] and guided[1] > plain[1] + 0.01


def test_the_guided_objective_is_objective_guide():
    """control's guided dream objective through an identity 'network' (the features are the pixels): the value is
    the mean best-match dot product and the gradient at each position is the best-matching guide vector over the
    number of positions, the original notebook's ``dst.diff = y[:, A.argmax(1)]``; a mask weights the positions."""
    from nbart import control
    from nbart.quiet import tensorflow
    tf = tensorflow()

    class Identity:
        layers, channels, functions = ("pixels",), {"pixels": 3}, {}

        def __call__(self, images):
            return [images]

    rng = np.random.default_rng(0)
    x = rng.random((4, 5, 3), dtype=np.float32)
    y = rng.normal(size=(7, 3)).astype(np.float32)
    best = y[np.argmax(x.reshape(-1, 3) @ y.T, axis=1)].reshape(4, 5, 3)
    means, means_and_gradient = control.dream_functions(Identity(), (("pixels", None),), [tf.constant(y)])
    image4 = tf.constant(np.concatenate([x, np.ones((4, 5, 1), np.float32)], axis=-1))
    value, gradient = means_and_gradient(image4, tf.constant([1.0]))
    assert np.allclose(value.numpy(), [(x * best).sum(-1).mean()], rtol=1e-5)
    assert np.allclose(gradient.numpy()[..., :3], best / 20, atol=1e-6)
    left = np.concatenate([x, np.zeros((4, 5, 1), np.float32)], axis=-1)
    left[:, :2, 3] = 1.0  # only the two left columns count
    assert np.allclose(means(tf.constant(left)).numpy(), [(x * best)[:, :2].sum(-1).mean()], rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# colour control


def test_grey_content_and_grey_style_give_a_grey_result_from_noise():
    rng = np.random.default_rng(1)
    content = Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8), mode="L")
    grey_style = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (64, 1)), mode="L")
    out = _float(style_run(content, grey_style, **{**TINY_STYLE, "init": "noise"}).run())
    assert np.ptp(out, axis=-1).max() <= 2 / 255


def test_color_histogram_and_palette_take_the_reference_colours(gradient_image, style):
    content = _float(gradient_image.resize((W, H), Image.Resampling.LANCZOS))
    out = _float(style_run(gradient_image, style, color="histogram", **TINY_STYLE).run())
    assert np.abs(out.mean(axis=(0, 1)) - content.mean(axis=(0, 1))).max() < 0.02
    palette = np.zeros((16, 16, 3), np.float32)
    palette[..., 0] = np.linspace(0.6, 1.0, 16)[None]  # reds only
    run = style_run(gradient_image, style, color=palette, **TINY_STYLE)
    out = _float(run.run())
    assert out[..., 0].mean() > 0.6 and out[..., 1:].max() < 0.05
    assert run.metadata()["params"]["color"] == "<ndarray>"


def test_preserve_colors_is_color_luminance():
    assert StyleParams(preserve_colors=True).color == "luminance"
    assert StyleParams(color="luminance").preserve_colors is False
    with pytest.raises(ParamError, match="preserve_colors=True means color='luminance'"):
        StyleParams(preserve_colors=True, color="histogram")
    with pytest.raises(ParamError, match="color must be one of style, luminance, histogram or a palette image "
                                         r"\(got 'lumnance': no such file\)"):
        StyleParams(color="lumnance")


def test_match_colors_keeps_shape_and_range():
    rng = np.random.default_rng(0)
    out = pixels.match_colors(rng.random((10, 12, 3), dtype=np.float32), rng.random((5, 5, 3), dtype=np.float32))
    assert out.shape == (10, 12, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


# ---------------------------------------------------------------------------------------------------------------
# the command line


@pytest.fixture
def photo(tmp_path, gradient_image):
    path = tmp_path / "photo.png"
    gradient_image.save(path)
    return path


def test_cli_mask_guide_and_color_flags_run_and_are_recorded(photo, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    Image.fromarray((masks.ellipse((53, 64)) * 255).astype(np.uint8)).save(mask)
    out = tmp_path / "out.png"
    flags = ["--model=vgg16", "--weights=none", "--precision=float32", "--seed=0"]
    assert cli.main(["dream", str(photo), "-o", str(out), *flags, "--max-size=64", "--octaves=1", "--steps=2",
                     f"--mask={mask}", "--guide=sample:starry_night", "--quiet"]) == 0
    params = images.read_params(out)["params"]
    assert params["mask"] == str(mask) and params["guide"] == "sample:starry_night"
    assert cli.main(["style", str(photo), "sample:starry_night", "-o", str(out), *flags, "--sizes=48",
                     "--steps=2", f"--mask={mask}", "--color=histogram", "--quiet"]) == 0
    params = images.read_params(out)["params"]
    assert params["mask"] == [str(mask)] and params["color"] == "histogram"
    notes = capsys.readouterr().err
    assert "mask resized from 64x53 to the image's 48x40 px" in notes


def test_cli_refuses_an_all_black_mask_in_one_line(photo, tmp_path, capsys):
    black = tmp_path / "black.png"
    Image.new("L", (10, 10)).save(black)
    assert cli.main(["dream", str(photo), "-o", str(tmp_path / "o.png"), "--weights=none", "--model=vgg16",
                     f"--mask={black}"]) == 2
    assert "mask is all black, so it applies nowhere" in error_line(capsys)


def test_help_names_the_new_parameters(capsys):
    import nbart

    assert "mask = ''" in nbart.dream.__doc__ and "guide = ''" in nbart.dream.__doc__
    assert "color = 'style'" in nbart.style_transfer.__doc__
    assert cli.main(["style", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--mask A,B,..." in out and "--color COLOR" in out


def test_a_dream_given_a_list_of_masks_says_it_takes_one():
    """It used to say "mask must be a string (got ('<ndarray>',))", though arrays are allowed."""
    import nbart

    half = np.zeros((64, 64), np.float32)
    half[:, 32:] = 1.0
    for name in ("mask", "guide"):
        with pytest.raises(nbart.ParamError, match=rf"^a dream takes one {name} image \(got a list of 2\)$"):
            nbart.dream_run("sample:grace_hopper", **{name: [half, half]}, max_size=64)


# ---------------------------------------------------------------------------------------------------------------
# image inputs given as parameters: read like every image, errors that name the option


def test_from_alpha_reads_every_image_input_like_load_image(tmp_path):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, :4, 3] = 0  # the left half transparent
    path = tmp_path / "cut.png"
    Image.fromarray(rgba, "RGBA").save(path)
    want = masks.from_alpha(rgba)
    assert want[:, :4].max() == 0 and want[:, 4:].min() == 1
    for source in (str(path), path, path.read_bytes(), open(path, "rb"), Image.open(path)):
        assert np.array_equal(masks.from_alpha(source), want), type(source)
    # a sample is read like any image input (it has no transparency: the same one line as any opaque picture)
    with pytest.raises(ParamError, match=r"^from_alpha: the image has no alpha channel \(mode RGB\)"):
        masks.from_alpha("sample:grace_hopper")
    with pytest.raises(ImageError, match=r"^no such file: .*missing\.png"):
        masks.from_alpha(str(tmp_path / "missing.png"))


def test_naming_words_an_image_error_as_the_options():
    with pytest.raises(ImageError, match=r"^guide: no such file: nowhere\.jpg"):
        with masks.naming("guide"):
            images.load_image("nowhere.jpg")
    with pytest.raises(ParamError, match=r"^guide is bad$"):  # named already: left as it is
        with masks.naming("guide"):
            raise ParamError("guide is bad")


def test_a_missing_guide_names_the_option_in_code_and_on_the_command_line(gradient_image, tmp_path, capsys):
    with pytest.raises(ImageError, match=r"^guide: no such file: nowhere\.jpg"):
        dream_run(gradient_image, guide="nowhere.jpg", **TINY)
    out = tmp_path / "o.png"
    assert cli.main(["dream", "sample:grace_hopper", "--guide", "nowhere.jpg", "-o", str(out), "--model", "vgg16",
                     "--weights", "none", "--max-size", "48", "--octaves", "1", "--steps", "1"]) == 2
    assert error_line(capsys).startswith("nbart: error: guide: no such file: nowhere.jpg")
    assert not out.exists()


@pytest.mark.parametrize("value, entry", [("a.png,,b.png", 2), (",a.png", 1), ("a.png,", 2), ("a.png, ,b.png", 2)])
def test_an_empty_entry_in_a_list_is_one_clear_error_not_dropped(value, entry, tmp_path, capsys):
    with pytest.raises(ParamError, match=rf"^mask: entry {entry} of '{value}' is empty; give the values separated "
                                         r"by single commas$"):
        StyleParams(mask=value)
    assert StyleParams(mask="").mask == () and StyleParams(mask="a.png, b.png").mask == ("a.png", "b.png")
    out = tmp_path / "o.png"
    assert cli.main(["style", "sample:grace_hopper", "sample:starry_night", f"--mask={value}", "-o", str(out),
                     "--model", "vgg16", "--weights", "none", "--sizes", "48", "--steps", "1"]) == 2
    assert error_line(capsys) == f"nbart: error: mask: entry {entry} of '{value}' is empty; give the values " \
                                 f"separated by single commas"
    assert not out.exists()
