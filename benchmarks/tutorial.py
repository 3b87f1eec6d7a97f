"""The baseline: the TensorFlow tutorials' Deep Dream and style-transfer algorithms, as their notebooks run them.

Written for this benchmark from the algorithms of tensorflow.org/tutorials/generative/deepdream and
/style_transfer (not copied): the same ``tf.function`` structure, losses, optimizer and schedules, in float32 as
the tutorials run (they set no mixed-precision policy). What differs is plumbing only: the base network is passed
in (so random, ImageNet or the offline VGG16 weights all work), and the notebooks' ``display`` calls become an
``on_preview`` callback that the benchmark times like nbart's live preview.

Deep Dream (tutorial): loss = sum over layers of the mean activation; ``DeepDream`` runs its steps in a
``tf.range`` loop inside one ``tf.function`` (input signature ``[None, None, 3]``); ``TiledGradients`` rolls the
image randomly by up to a tile, sums tile gradients, rolls back and divides by the gradient's std; the octave loop
resizes the image, then per step adds ``gradient * step_size`` and clips to [-1, 1], showing every 10th step.

Style transfer (tutorial): ``StyleContentModel`` (VGG, Gram matrices by ``einsum`` divided by the number of
locations), loss = style_weight 1e-2 / n_style * sum MSE(Gram) + content_weight 1e4 / n_content * sum MSE(content)
+ total_variation_weight 30 * ``tf.image.total_variation``; ``Adam(learning_rate=0.02, beta_1=0.99,
epsilon=1e-1)`` on a ``tf.Variable`` image started from the content, clipped to [0, 1] after each step; 10 epochs
of 100 steps, an image shown after each epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_LAYERS = ("block5_conv2",)


def _float32_policy() -> Any:
    import keras

    keras.config.set_dtype_policy("float32")  # the tutorials run in float32


class TutorialDream:
    """The Deep Dream tutorial on ``base`` (a Keras InceptionV3 without top) and its ``layers``."""

    def __init__(self, base: Any, layers: tuple[str, ...] = ("mixed3", "mixed5")):
        import keras
        import tensorflow as tf

        self.model = keras.Model(base.input, [base.get_layer(name).output for name in layers])
        model = self.model

        def calc_loss(img: Any) -> Any:
            activations = model(tf.expand_dims(img, axis=0))
            if not isinstance(activations, (list, tuple)):
                activations = [activations]
            return tf.reduce_sum([tf.math.reduce_mean(a) for a in activations])

        class DeepDream(tf.Module):  # the tutorial's first version: all steps in one graph
            @tf.function(input_signature=(tf.TensorSpec([None, None, 3], tf.float32),
                                          tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)))
            def __call__(self, img: Any, steps: Any, step_size: Any) -> tuple[Any, Any]:
                loss = tf.constant(0.0)
                for _ in tf.range(steps):
                    with tf.GradientTape() as tape:
                        tape.watch(img)
                        loss = calc_loss(img)
                    gradients = tape.gradient(loss, img)
                    gradients /= tf.math.reduce_std(gradients) + 1e-8
                    img = tf.clip_by_value(img + gradients * step_size, -1, 1)
                return loss, img

        def random_roll(img: Any, maxroll: Any) -> tuple[Any, Any]:
            shift = tf.random.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)
            return shift, tf.roll(img, shift=shift, axis=[0, 1])

        class TiledGradients(tf.Module):  # the tutorial's scalable version: one call per step
            @tf.function(input_signature=(tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([], tf.int32)))
            def __call__(self, img: Any, tile_size: Any) -> Any:
                shift, rolled = random_roll(img, tile_size)
                gradients = tf.zeros_like(rolled)
                xs = tf.range(0, tf.shape(rolled)[0], tile_size)[:-1]
                if not tf.cast(len(xs), bool):
                    xs = tf.constant([0])
                ys = tf.range(0, tf.shape(rolled)[1], tile_size)[:-1]
                if not tf.cast(len(ys), bool):
                    ys = tf.constant([0])
                for x in xs:
                    for y in ys:
                        with tf.GradientTape() as tape:
                            tape.watch(rolled)
                            loss = calc_loss(rolled[x:x + tile_size, y:y + tile_size])
                        gradients = gradients + tape.gradient(loss, rolled)
                gradients = tf.roll(gradients, shift=-shift, axis=[0, 1])
                return gradients / (tf.math.reduce_std(gradients) + 1e-8)

        self.deepdream = DeepDream()
        self.tiled_gradients = TiledGradients()

    @staticmethod
    def preprocess(rgb_uint8: np.ndarray) -> Any:
        """uint8 RGB -> the tutorial's [-1, 1] float image (inception_v3.preprocess_input)."""
        import tensorflow as tf

        return tf.convert_to_tensor(np.asarray(rgb_uint8, np.float32) / 127.5 - 1.0)

    @staticmethod
    def deprocess(img: Any) -> np.ndarray:
        """[-1, 1] -> uint8 RGB, as the tutorial's ``deprocess``."""
        return np.asarray(255 * (np.asarray(img) + 1.0) / 2.0).astype(np.uint8)

    def run_simple(self, rgb_uint8: np.ndarray, steps: int = 100, step_size: float = 0.01,
                   on_preview: Callable[[np.ndarray], Any] | None = None) -> np.ndarray:
        """``run_deep_dream_simple``: chunks of up to 100 in-graph steps, an image shown after each chunk."""
        import tensorflow as tf

        img = self.preprocess(rgb_uint8)
        remaining = steps
        while remaining:
            run_steps = min(remaining, 100)
            remaining -= run_steps
            _, img = self.deepdream(img, tf.constant(run_steps), tf.constant(step_size))
            if on_preview is not None:
                on_preview(self.deprocess(img))
        return self.deprocess(img)

    def run_octaves(self, rgb_uint8: np.ndarray, sizes: list[tuple[int, int]], steps_per_octave: int,
                    step_size: float = 0.01, tile_size: int = 512,
                    on_preview: Callable[[np.ndarray], Any] | None = None,
                    on_step: Callable[[], Any] | None = None) -> np.ndarray:
        """``run_deep_dream_with_octaves`` over explicit (height, width) ``sizes``: resize, then per step the tiled
        gradient, ``img + g * step_size``, clip to [-1, 1]; an image shown every 10th step (from the first)."""
        import tensorflow as tf

        img = self.preprocess(rgb_uint8)
        for size in sizes:
            img = tf.image.resize(img, size)
            for step in range(steps_per_octave):
                gradients = self.tiled_gradients(img, tf.constant(tile_size))
                img = tf.clip_by_value(img + gradients * step_size, -1, 1)
                if on_step is not None:
                    on_step()
                if step % 10 == 0 and on_preview is not None:
                    on_preview(self.deprocess(img))
        return self.deprocess(img)


def gram_matrix(input_tensor: Any) -> Any:
    """The tutorial's Gram matrix: einsum over locations, divided by their number."""
    import tensorflow as tf

    result = tf.linalg.einsum("bijc,bijd->bcd", input_tensor, input_tensor)
    shape = tf.shape(input_tensor)
    return result / tf.cast(shape[1] * shape[2], tf.float32)


class TutorialStyle:
    """The style-transfer tutorial on ``base`` (a Keras VGG without top, caffe preprocessing) from ``content`` to
    ``style`` (float RGB arrays in [0, 1], shape (H, W, 3))."""

    style_weight, content_weight, total_variation_weight = 1e-2, 1e4, 30.0

    def __init__(self, base: Any, content: np.ndarray, style: np.ndarray,
                 style_layers: tuple[str, ...] = STYLE_LAYERS, content_layers: tuple[str, ...] = CONTENT_LAYERS,
                 total_variation_weight: float = 30.0):
        import keras
        import tensorflow as tf

        base.trainable = False
        vgg = keras.Model(base.input, [base.get_layer(n).output for n in style_layers + content_layers])
        n_style = len(style_layers)

        class StyleContentModel(keras.Model):
            def call(self, inputs: Any) -> dict:
                x = keras.applications.vgg19.preprocess_input(inputs * 255.0)
                outputs = vgg(x)
                styles = [gram_matrix(o) for o in outputs[:n_style]]
                return {"content": dict(zip(content_layers, outputs[n_style:])),
                        "style": dict(zip(style_layers, styles))}

        self.total_variation_weight = total_variation_weight  # 0: the tutorial's first run, without TV
        self.style_layer_weights = {n: 1.0 for n in style_layers}  # the tutorial weighs its style layers equally
        self.style_layers, self.content_layers = style_layers, content_layers
        self.extractor = StyleContentModel()
        self.style_targets = self.extractor(tf.constant(style[None], tf.float32))["style"]
        self.content_targets = self.extractor(tf.constant(content[None], tf.float32))["content"]
        self.n_style, self.n_content = n_style, len(content_layers)
        self.content = content

        @tf.function
        def total_loss(image: Any) -> Any:
            return self._loss(image)

        self.total_loss = total_loss

    def _loss(self, image: Any) -> Any:
        import tensorflow as tf

        outputs = self.extractor(image)
        style_loss = tf.add_n([self.style_layer_weights[n] * tf.reduce_mean((outputs["style"][n] -
                                                                             self.style_targets[n]) ** 2)
                               for n in outputs["style"]]) * self.style_weight / self.n_style
        content_loss = tf.add_n([tf.reduce_mean((outputs["content"][n] - self.content_targets[n]) ** 2)
                                 for n in outputs["content"]]) * self.content_weight / self.n_content
        loss = style_loss + content_loss
        if self.total_variation_weight:
            loss += self.total_variation_weight * tf.image.total_variation(image)[0]
        return loss

    def rebalance(self, content_weight: float = 1.0, style_weight: float = 30.0) -> None:
        """Re-weigh this loss to nbart's balance of relative terms, keeping the tutorial's content weight.

        The tutorial's weights (content 1e4, style 1e-2) were tuned for ImageNet VGG19; on another network the
        feature scales differ and they can make the content image itself near-optimal. nbart's objective
        ``content_weight * MSE_c / ms(P) + style_weight * mean_l MSE_l / ms(A_l)`` (``ms``: the target's mean
        square) is the same on any network; multiplied by ``1e4 * ms(P) / content_weight`` it becomes this loss
        with the tutorial's content weight, so Adam's gradients keep the tutorial's scale (its epsilon 0.1 is not
        scale-free) while L-BFGS, which is, sees nbart's objective. Only one content layer is supported.
        """
        import tensorflow as tf

        assert self.n_content == 1, "one content layer"
        content_ms = float(tf.reduce_mean(tf.square(self.content_targets[self.content_layers[0]])))
        self.style_weight = style_weight * self.content_weight * content_ms / content_weight
        self.style_layer_weights = {n: 1.0 / float(tf.reduce_mean(tf.square(self.style_targets[n])))
                                    for n in self.style_layers}

        @tf.function
        def total_loss(image: Any) -> Any:  # traced anew: the weights above are constants of the trace
            return self._loss(image)

        self.total_loss = total_loss

    def loss(self, image: np.ndarray) -> float:
        """The tutorial's total loss (with total variation) of a float RGB image in [0, 1]."""
        import tensorflow as tf

        return float(self.total_loss(tf.constant(np.asarray(image, np.float32)[None])))

    def run(self, steps: int = 1000, steps_per_epoch: int = 100,
            on_preview: Callable[[np.ndarray], Any] | None = None,
            on_step: Callable[[int, Any], Any] | None = None) -> np.ndarray:
        """Adam(0.02, 0.99, 1e-1) from the content for ``steps`` steps; ``on_step(step, image_variable)`` after
        each, ``on_preview(uint8 image)`` after each epoch (the notebook's display)."""
        import keras
        import tensorflow as tf

        image = tf.Variable(self.content[None].astype(np.float32))
        opt = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)

        @tf.function()
        def train_step(image: Any) -> None:
            with tf.GradientTape() as tape:
                loss = self._loss(image)
            grad = tape.gradient(loss, image)
            opt.apply_gradients([(grad, image)])
            image.assign(tf.clip_by_value(image, 0.0, 1.0))

        for step in range(1, steps + 1):
            train_step(image)
            if on_step is not None:
                on_step(step, image)
            if step % steps_per_epoch == 0 and on_preview is not None:
                on_preview((np.asarray(image[0]) * 255).astype(np.uint8))
        return image[0].numpy()
