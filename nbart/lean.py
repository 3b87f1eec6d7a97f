"""A lean, inference-only executor for the feature extractors: the same network, fewer and cheaper ops.

A Keras functional model run inside a ``tf.function`` pays twice for its generality: tracing goes through every
layer's ``__call__`` (autocasting, name scopes, masks: about a second for InceptionV3 up to ``mixed5``), and the
traced graph keeps every inference-mode BatchNormalization as its own op, which under ``mixed_bfloat16`` also
casts to float32 and back. :class:`LeanNetwork` walks the same functional graph but emits plain TensorFlow ops:

- a ``Conv2D`` whose only consumer is a ``BatchNormalization`` absorbs it (the inference-mode BN is a per-channel
  affine map, so ``conv(x, k) * s + t == conv(x, k * s) + t``);
- kernels and biases are kept once, already in the compute dtype (no per-step cast of every weight): the
  model's own variables where they are stored in that dtype and not folded, else copies;
- pooling, concatenation and activations map to their ``tf.nn`` ops; any other layer is called as itself.

The result equals the Keras model's up to float rounding. This module reads private parts of Keras 3's
functional models (``_nodes_by_depth``, ``_run_through_graph``, ``_keras_history``), so a network proves itself
when built: given a ``probe`` input, it runs it through itself and through the Keras model and raises
:class:`LeanMismatch` unless they agree. :class:`nbart.extractors.Extractor` then keeps the Keras model, with a
one-line notice: a Keras release that changes these privates costs speed, never a run.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

__all__ = ["LeanNetwork", "LeanMismatch", "TOLERANCE"]

# Largest difference from the Keras model a probe may show, relative to the largest activation: float rounding of
# the folded BatchNorm is ~1e-6 in float32; bfloat16 keeps 8 bits of mantissa (its rounding reaches ~1e-2).
TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2}


# the flipped kernels made ahead (see LeanNetwork's flip_ahead), per Keras layer: the extractors cut from one model
# share them, and they go with the model
_flipped: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class LeanMismatch(ValueError):
    """The lean network's outputs differ from the Keras model's on the probe input."""


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return history.operation if history is not None else None


def _consumers(model: Any) -> dict[int, int]:
    """How many nodes of ``model`` read each operation's output: id(operation) -> count."""
    counts: dict[int, int] = {}
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            if node.is_input:
                continue
            for tensor in node.input_tensors:
                producer = _producer(tensor)
                if producer is not None:
                    counts[id(producer)] = counts.get(id(producer), 0) + 1
    for tensor in model.outputs:
        producer = _producer(tensor)
        if producer is not None:
            counts[id(producer)] = counts.get(id(producer), 0) + 1
    return counts


def _bn_affine(bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """The inference-mode BatchNormalization as ``x * scale + shift`` (per channel, float64)."""
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.gamma is not None else np.ones_like(mean)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.beta is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return scale, beta - mean * scale


class LeanNetwork:
    """Runs a Keras functional ``model`` (channels-last images in, a list of feature maps out) with lean ops.

    ``compute_dtype`` is the dtype of the convolutions ("float32" or "bfloat16"); outputs come in that dtype.
    ``probe`` (optional, a batch of network inputs, e.g. one small preprocessed image): run through this network
    and through ``model`` at construction; :class:`LeanMismatch` unless every output agrees within
    :data:`TOLERANCE` of its largest value. Raises ``ValueError`` at construction for a model it can't read, so
    the caller can keep the Keras model. ``flip_ahead`` (default False): the float32 stride-1 convolutions' kernels
    for the input gradient are flipped once here, not in every backward pass (faster steps, one more copy of the
    kernels held: see :func:`nbart.convgrad.flip`).
    """

    def __init__(self, model: Any, compute_dtype: str = "float32", probe: Any = None, flip_ahead: bool = False):
        import keras

        from nbart import convgrad
        from nbart.quiet import tensorflow
        tf = tensorflow()

        if not hasattr(model, "_run_through_graph") or not hasattr(model, "_nodes_by_depth"):
            raise ValueError("not a Keras 3 functional model")
        self.model, self.dtype, self.flip_ahead = model, tf.as_dtype(compute_dtype), flip_ahead
        layers = keras.layers
        consumers = _consumers(model)
        self._ops: dict[int, Any] = {}
        self.variables: list[Any] = []  # kept alive with the executor
        folded: set[int] = set()
        for nodes in model._nodes_by_depth.values():
            for node in nodes:
                op = node.operation
                if isinstance(op, layers.BatchNormalization) and len(node.input_tensors) == 1:
                    conv = _producer(node.input_tensors[0])
                    if (isinstance(conv, layers.Conv2D) and type(conv) is layers.Conv2D
                            and consumers.get(id(conv)) == 1 and conv.activation is keras.activations.linear
                            and op.axis in (-1, 3) and conv.data_format == "channels_last"
                            and id(conv) not in self._ops):
                        self._ops[id(conv)] = self._conv(conv, _bn_affine(op))
                        self._ops[id(op)] = _identity
                        folded.add(id(op))
        for nodes in model._nodes_by_depth.values():
            for node in nodes:
                op = node.operation
                if id(op) in self._ops:
                    continue
                if type(op) is layers.Conv2D and op.data_format == "channels_last":
                    self._ops[id(op)] = self._conv(op, None)
                elif type(op) is layers.BatchNormalization and op.axis in (-1, 3):
                    scale, shift = _bn_affine(op)
                    s, t = self._constant(scale), self._constant(shift)
                    self._ops[id(op)] = lambda x, s=s, t=t, **_: x * s + t
                elif type(op) is layers.Activation:
                    self._ops[id(op)] = lambda x, f=op.activation, **_: f(x)
                elif type(op) is layers.ReLU and op.max_value is None and not op.negative_slope and not op.threshold:
                    self._ops[id(op)] = lambda x, **_: tf.nn.relu(x)
                elif (type(op) is layers.MaxPooling2D and op.data_format == "channels_last" and self.dtype == tf.float32
                      and tuple(op.pool_size) == (2, 2) and tuple(op.strides) == (2, 2) and op.padding == "valid"):
                    # keeps the winners' indices for the backward pass, not the float32 input and output
                    self._ops[id(op)] = lambda x, **_: convgrad.max_pool_2x2(x)
                elif type(op) in (layers.MaxPooling2D, layers.AveragePooling2D) and op.data_format == "channels_last":
                    pool = tf.nn.max_pool2d if type(op) is layers.MaxPooling2D else tf.nn.avg_pool2d
                    self._ops[id(op)] = (lambda x, pool=pool, k=op.pool_size, s=op.strides, p=op.padding.upper(), **_:
                                         pool(x, k, s, p))
                elif type(op) is layers.Concatenate:
                    self._ops[id(op)] = lambda xs, axis=op.axis, **_: tf.concat(list(xs), axis)
        self.folded = len(folded)
        if probe is not None:
            self._prove(probe)

    def single_input(self, index: int) -> bool:
        """Whether the layer of output ``index`` is a lean function of one input tensor (it can be wrapped)."""
        layer = _producer(self.model.outputs[index])
        return id(layer) in self._ops and _single_input(layer)

    def small_input(self, index: int) -> bool:
        """Whether the layer of output ``index`` takes one input with at most a quarter of its output's values
        (e.g. VGG's first convolution: 3 channels in, 64 out): cheap to compute again, and cheap to keep."""
        if not self.single_input(index):
            return False
        layer = _producer(self.model.outputs[index])
        shape_in, shape_out = layer.input.shape, layer.output.shape
        if None in (shape_in[-1], shape_out[-1]) or shape_in[1:3] != shape_out[1:3] and None not in shape_in[1:3]:
            return False
        return 4 * int(shape_in[-1]) <= int(shape_out[-1])

    def row_halo(self, index: int) -> int | None:
        """For the layer of output ``index``: how many input rows above and below an output row it reads, where
        that is all it reads (a stride-1, undilated Conv2D with "SAME" padding and an odd kernel height, with its
        activation): ``kernel height // 2``; None for any other layer."""
        import keras

        layer = _producer(self.model.outputs[index])
        if not (type(layer) is keras.layers.Conv2D and layer.padding == "same" and tuple(layer.strides) == (1, 1)
                and tuple(layer.dilation_rate) == (1, 1) and layer.kernel_size[0] % 2 == 1
                and layer.data_format == "channels_last" and self.single_input(index)):
            return None
        return int(layer.kernel_size[0]) // 2

    def _prove(self, probe: Any) -> None:
        """Compare this network's outputs with the Keras model's on ``probe``; LeanMismatch names the worst."""
        from nbart.quiet import tensorflow
        tf = tensorflow()

        ours = self(probe)
        theirs = self.model(tf.cast(probe, tf.float32))
        theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
        if len(ours) != len(theirs):
            raise LeanMismatch(f"{len(ours)} outputs instead of {len(theirs)}")
        tolerance = TOLERANCE["bfloat16" if self.dtype == tf.bfloat16 else "float32"]
        for a, b, out in zip(ours, theirs, self.model.outputs):
            a = np.asarray(tf.cast(a, tf.float32))
            b = np.asarray(tf.cast(b, tf.float32))
            if a.shape != b.shape:
                raise LeanMismatch(f"{_producer(out).name}: shape {a.shape} instead of {b.shape}")
            scale = max(float(np.abs(b).max()), 1e-12)
            error = float(np.abs(a - b).max()) / scale
            if not error <= tolerance:  # also catches NaN
                raise LeanMismatch(f"{_producer(out).name} differs from Keras by {error:.2g} of its largest value "
                                   f"(tolerance {tolerance:g})")

    def _constant(self, value: np.ndarray) -> Any:
        from nbart.quiet import tensorflow
        tf = tensorflow()

        variable = tf.Variable(np.asarray(value, np.float32), trainable=False, dtype=tf.float32)
        if self.dtype != tf.float32:
            variable = tf.Variable(tf.cast(variable, self.dtype), trainable=False)
        self.variables.append(variable)
        return variable

    def _conv(self, conv: Any, affine: tuple[np.ndarray, np.ndarray] | None) -> Any:
        import keras

        from nbart.quiet import tensorflow
        tf = tensorflow()

        from nbart import convgrad

        if affine is None and conv.kernel.dtype == self.dtype.name:  # already stored in the compute dtype: shared
            k = conv.kernel.value
            b = conv.bias.value if conv.use_bias else None
        else:
            kernel = np.asarray(conv.kernel.numpy(), np.float64)
            bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else None
            if affine is not None:
                scale, shift = affine
                kernel = kernel * scale
                bias = shift if bias is None else bias * scale + shift
            k = self._constant(kernel)
            b = self._constant(bias) if bias is not None else None
        strides, dilations, padding = conv.strides, conv.dilation_rate, conv.padding.upper()
        activation = conv.activation
        keras_relu = keras.activations.relu
        if conv.groups != 1:
            raise ValueError("grouped convolutions are not supported")

        flipped = None
        if self.flip_ahead and convgrad.covers(k.shape, strides, padding, dilations, self.dtype):
            key = (self.dtype.name, affine is not None)
            flipped = _flipped.setdefault(conv, {}).get(key)
            if flipped is None:  # once per layer, shared by the networks cut from the same model
                flipped = _flipped[conv][key] = tf.constant(convgrad.flip(tf.convert_to_tensor(k)).numpy())

        if (activation is keras_relu and b is not None
                and convgrad.covers(k.shape, strides, padding, dilations, self.dtype)):

            def run_relu(x: Any, **_: Any) -> Any:
                # keeps a 1-byte "positive" mask for the backward pass, not the float32 output (see convgrad)
                return convgrad.conv2d_relu(x, k, b, padding, flipped)

            return run_relu

        def run(x: Any, **_: Any) -> Any:
            # its input gradient as a forward convolution: no im2col buffer (516 MB for VGG's block1 at 512 px)
            y = convgrad.conv2d(x, k, strides, padding, dilations, flipped)
            if b is not None:
                y = tf.nn.bias_add(y, b)
            return activation(y)

        return run

    def __call__(self, images: Any, taps: dict[int, Any] | None = None, wraps: dict[int, Any] | None = None) -> list:
        """The model's outputs for ``images`` (batch, height, width, channels), as a list, in the compute dtype.

        ``taps`` maps an output's index to a function applied to that layer's output inside the network: what it
        returns goes on to the next layers and out (see :func:`nbart.grams.gram_junction`). ``wraps`` maps an
        output's index to ``wrap(layer, x)``, called instead of the layer on its one input ``x`` (the layer as a
        function of it; see :func:`nbart.grams.layer_junction`); layers with several inputs are tapped instead.
        """
        from nbart.quiet import tensorflow
        tf = tensorflow()

        x = tf.cast(images, self.dtype)
        ops = self._ops
        taps = dict(taps or {})
        if wraps:
            ops = dict(ops)
            for index, wrap in wraps.items():
                layer = _producer(self.model.outputs[index])
                inner = ops.get(id(layer), layer)
                if self.single_input(index):
                    ops[id(layer)] = (lambda x, inner=inner, wrap=wrap, **kwargs:
                                      wrap(lambda v: inner(v, **kwargs), x))
                else:  # e.g. a concatenation: the output tapped, the layer not recomputed
                    taps[index] = lambda a, wrap=wrap: wrap(lambda v: v, a)
        if taps:
            ops = dict(ops)
            for index, tap in taps.items():
                layer = _producer(self.model.outputs[index])
                inner = ops.get(id(layer), layer)
                ops[id(layer)] = lambda *args, inner=inner, tap=tap, **kwargs: tap(inner(*args, **kwargs))
        outputs = self.model._run_through_graph(x, operation_fn=lambda op: ops.get(id(op), op))
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _single_input(layer: Any) -> bool:
    nodes = getattr(layer, "_inbound_nodes", [])
    return len(nodes) == 1 and len(nodes[0].input_tensors) == 1


def _identity(x: Any, **_: Any) -> Any:
    return x
