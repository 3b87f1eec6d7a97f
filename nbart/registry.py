"""The backbone registry: which feature networks nbart knows, how images enter them, which layers users may pick.

A registry entry is data (:class:`Backbone`): the ``keras.applications`` network to build, its preprocess and
deprocess pair, the layers a user may pick (with their channel counts, so ``'layer:N'`` is checked before any
network is built) and the default layers of each task. Images enter every backbone as float RGB in ``[0, 1]``;
``preprocess`` maps that to what the network was trained on (Keras' "caffe" mode for VGG, "tf" mode for Inception),
``deprocess`` maps back (a round-trip test guards each pair).

To add a backbone: one :class:`Backbone` entry in ``_REGISTRY`` (name, Keras constructor, pre/deprocess, layers and
channels, default layers, smallest input side, ImageNet weights file name). Networks: Simonyan & Zisserman 2014
(VGG, arXiv:1409.1556), Szegedy et al. 2015 (Inception v3, arXiv:1512.00567).

Imports nothing of nbart but :mod:`nbart.errors`; TensorFlow and Keras only lazily, inside functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbart.errors import ParamError

__all__ = ["Backbone", "get", "names", "OFFLINE_BACKBONE"]

_APPS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # what keras.applications' "caffe" mode subtracts


# Preprocess/deprocess pairs, written with plain arithmetic so they work on numpy arrays and tf tensors alike.
def _inception_pre(x: Any) -> Any:
    return x * 2.0 - 1.0


def _inception_de(y: Any) -> Any:
    return (y + 1.0) / 2.0


def _caffe_pre(x: Any) -> Any:
    bgr = x[..., ::-1] * 255.0
    return bgr - _mean_like(bgr)


def _caffe_de(y: Any) -> Any:
    bgr = y + _mean_like(y)
    return bgr[..., ::-1] / 255.0


def _mean_like(x: Any) -> Any:
    import numpy as np

    mean = np.asarray(_CAFFE_MEAN_BGR, dtype="float32")
    if isinstance(x, np.ndarray):
        return mean
    from nbart.quiet import tensorflow
    tf = tensorflow()

    return tf.constant(mean, dtype=x.dtype)


@dataclass(frozen=True)
class Backbone:
    """One feature network: how to build it, how images enter it, and which of its layers users may pick."""

    name: str
    app: str  # the keras.applications constructor
    preprocess: Callable[[Any], Any]  # RGB in [0, 1] -> network input
    deprocess: Callable[[Any], Any]  # network input -> RGB in [0, 1]
    layers: tuple[str, ...]
    dream_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    min_size: int  # smallest input side, in pixels, the network accepts
    imagenet_file: str  # name of the no-top ImageNet weights file in Keras' cache
    channels: tuple[int, ...] = ()  # channels of each of `layers`, so 'layer:N' is checked before any model is built
    offline: bool = False  # whether the offline (HED) weights fit this network
    # Under bfloat16, store the weights in bfloat16 (the "bfloat16" policy) rather than keep float32 and cast at
    # each call ("mixed_bfloat16"): for networks of convolutions, ReLUs and pooling only, whose every layer computes
    # in bfloat16 either way. The lean executor then uses these variables instead of copying them (VGG19: 40 MB of
    # weights instead of 80 MB plus 30 MB of bfloat16 copies). Networks with BatchNorm keep float32 weights, folded
    # into their convolutions in float64 (see nbart/lean.py).
    bf16_storage: bool = False

    @property
    def imagenet_url(self) -> str:
        return f"{_APPS_URL}{self.name}/{self.imagenet_file}"

    def build(self, weights: str | None = None, precision: str = "float32") -> Any:
        """A new Keras network (``include_top=False``, any input size): ``weights`` as Keras takes them
        (``"imagenet"``, ``None`` for random, or a file path), ``precision`` "float32" or "bfloat16" (the dtype
        policy it is built under; Keras' global policy is restored afterwards). Not cached: see nbart.extractors."""
        import keras

        previous = keras.config.dtype_policy()
        policy = "float32"
        if precision == "bfloat16":
            policy = "bfloat16" if self.bf16_storage else "mixed_bfloat16"
        keras.config.set_dtype_policy(policy)
        try:
            builder = getattr(keras.applications, self.app)
            return builder(include_top=False, weights=weights, input_shape=(None, None, 3))
        finally:
            keras.config.set_dtype_policy(previous)

    def layer_range(self) -> str:
        """The pickable layers, shortened for messages: 'mixed0..mixed10'."""
        return f"{self.layers[0]}..{self.layers[-1]}"

    def parse_layer(self, spec: str, allow_channels: bool = True) -> tuple[str, int | None]:
        """Split 'layer' or 'layer:channel' and check the layer exists; raise ParamError otherwise."""
        name, sep, channel = spec.partition(":")
        if name not in self.layers:
            raise ParamError(f"unknown layer {name!r} for {self.name}; choose from {self.layer_range()}")
        if not sep:
            return name, None
        if not allow_channels:
            raise ParamError(f"layer {spec!r}: channel selection is not allowed here")
        if not re.fullmatch(r"\d+", channel):
            raise ParamError(f"layer {spec!r}: the channel after ':' must be a non-negative integer")
        count = self.channels[self.layers.index(name)] if self.channels else None
        if count is not None and int(channel) >= count:
            raise ParamError(f"layer {name} has channels 0..{count - 1} (got {int(channel)})")
        return name, int(channel)


def _vgg_layers(convs_per_block: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"block{b}_conv{c}" for b, n in enumerate(convs_per_block, 1) for c in range(1, n + 1))


def _vgg_channels(convs_per_block: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(width for width, n in zip((64, 128, 256, 512, 512), convs_per_block) for _ in range(n))


_REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone(
            name="inception_v3",
            app="InceptionV3",
            preprocess=_inception_pre,
            deprocess=_inception_de,
            layers=tuple(f"mixed{i}" for i in range(11)),
            dream_layers=("mixed3", "mixed5"),
            content_layers=("mixed7",),
            style_layers=("mixed0", "mixed2", "mixed4", "mixed7"),
            min_size=75,
            imagenet_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
            channels=(256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048),
        ),
        Backbone(
            name="vgg19",
            app="VGG19",
            preprocess=_caffe_pre,
            deprocess=_caffe_de,
            layers=_vgg_layers((2, 2, 4, 4, 4)),
            dream_layers=("block4_conv3", "block5_conv2"),
            content_layers=("block5_conv2",),
            style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
            min_size=32,
            imagenet_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
            channels=_vgg_channels((2, 2, 4, 4, 4)),
            bf16_storage=True,
        ),
        Backbone(
            name="vgg16",
            app="VGG16",
            preprocess=_caffe_pre,
            deprocess=_caffe_de,
            layers=_vgg_layers((2, 2, 3, 3, 3)),
            dream_layers=("block4_conv3", "block5_conv2"),
            content_layers=("block5_conv2",),
            style_layers=("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"),
            min_size=32,
            imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            channels=_vgg_channels((2, 2, 3, 3, 3)),
            offline=True,
            bf16_storage=True,
        ),
    )
}

OFFLINE_BACKBONE = "vgg16"


def names() -> tuple[str, ...]:
    """Names of the registered backbones."""
    return tuple(_REGISTRY)


def get(name: str) -> Backbone:
    """The registry entry for ``name``; ParamError naming the choices if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParamError(f"unknown model {name!r}; choose from {', '.join(_REGISTRY)}") from None
