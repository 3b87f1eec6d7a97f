"""Picture quality with real features: the offline VGG16 (HED weights) on the shared test photos."""

import numpy as np
import pytest
from conftest import shared_image

import nbart
from nbart import backbones

pytestmark = pytest.mark.quality


def _mean_activations(image, layers):
    ext = backbones.extractor(backbones.get("vgg16"), "offline", "float32", layers)
    return np.array([float(np.mean(a)) for a in ext(np.asarray(image, np.float32)[None] / 255.0)])


def test_default_dream_raises_the_target_layers_activation_several_fold():
    photo = nbart.load_image(shared_image("tubingen.jpg"), max_size=512)
    layers = backbones.get("vgg16").dream_layers
    out = nbart.dream(photo, model="vgg16", weights="offline", seed=0)
    assert out.size == photo.size
    gain = _mean_activations(out, layers) / _mean_activations(photo, layers)
    print("activation gain per layer", dict(zip(layers, gain.round(2))))
    assert gain.min() >= 3.0, gain
    # The photo is still there under the dream: its coarse layout (a blurred copy) stays close.
    small = lambda im: np.asarray(im.resize((32, 24)), np.float32) / 255  # noqa: E731
    assert np.abs(small(out) - small(photo)).mean() < 0.15


def _style_losses(result, content, style, size=256):
    """Content and style losses of ``result`` measured the same way for any image: offline VGG16 features at the
    default layers, relative mean squares (nbart.objectives), all images at the same size."""
    import tensorflow as tf

    from nbart import objectives

    bb = backbones.get("vgg16")
    ext = backbones.extractor(bb, "offline", "float32", bb.content_layers + bb.style_layers)
    n = len(bb.content_layers)

    def feats(img, long_side=size):
        img = img.copy()
        img.thumbnail((long_side, long_side))
        return ext(tf.constant(np.asarray(img, np.float32)[None] / 255.0))

    r, c, s = feats(result), feats(content), feats(style)
    content_loss = np.mean([float(objectives.content_loss(a, b)) for a, b in zip(r[:n], c[:n])])
    style_loss = np.mean([float(objectives.style_loss(objectives.gram_matrix(a), objectives.gram_matrix(b)))
                          for a, b in zip(r[n:], s[n:])])
    return content_loss, style_loss


def test_style_transfer_takes_the_styles_textures_and_keeps_the_content():
    content = nbart.load_image(shared_image("golden_gate.jpg"), max_size=256)
    style = nbart.load_image("sample:starry_night")
    kw = dict(model="vgg16", weights="offline", sizes=(256,), seed=0)
    out = nbart.style_transfer(content, style, steps=40, **kw)
    own_content, own_style = _style_losses(content, content, style)
    out_content, out_style = _style_losses(out, content, style)
    style_content, _ = _style_losses(style.resize(content.size), content, style)
    print(f"style loss: content image {own_style:.3f} -> result {out_style:.3f}; "
          f"content loss: result {out_content:.3f}, style image {style_content:.3f}")
    assert out_style < own_style / 5  # far closer to the style's textures than the photo was
    assert out_content < style_content / 2  # and still the photo's structure, not the painting's


def test_lbfgs_reaches_a_lower_loss_than_adam_in_the_same_number_of_steps():
    content = nbart.load_image(shared_image("golden_gate.jpg"), max_size=192)
    style = nbart.load_image("sample:starry_night")
    p = nbart.StyleParams(model="vgg16", weights="offline", sizes=(192,), seed=0, steps=30, precision="float32")
    losses = {}
    for optimizer in ("lbfgs", "adam"):
        out = nbart.style_transfer(content, style, p.replace(optimizer=optimizer))
        c, s = _style_losses(out, content, style, size=192)  # measured the same way, on the final images
        losses[optimizer] = p.content_weight * c + p.style_weight * s
    print("content + style loss of the final images after 30 steps", losses)
    assert losses["lbfgs"] < losses["adam"]
