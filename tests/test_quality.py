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
