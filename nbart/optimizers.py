"""The optimizers of style transfer, as generators of iterates: each yields ``(image, loss, parts)`` per iteration.

``evaluate(x) -> (loss, parts, gradient)`` is the traced loss and gradient at an image ``x`` (H, W, 3) in [0, 1];
``parts`` are the loss's terms (content, style, tv). Both end early when ``stop`` is set.

- :func:`lbfgs`: scipy's L-BFGS-B (Byrd et al. 1995) bounded to the pixel range, as in Gatys et al. 2016 and
  neural-style, run in a helper thread in lock-step with the consumer.
- :func:`adam`: the TensorFlow style-transfer tutorial's Adam settings; its moments can be handed to the next size.
- :class:`IterateAverage`: iterate averaging (a bias-corrected exponential moving average of the iterates, as
  crowsonkb/style-transfer-pytorch averages its Adam iterates).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["lbfgs", "adam", "resize_moments", "IterateAverage", "LBFGS_MAX_RESTARTS", "LBFGS_MAXCOR"]

LBFGS_MAX_RESTARTS = 3
# Corrections L-BFGS keeps (scipy's default is 10). Its float64 workspace is about (2 * maxcor + 5) * 3 values per
# pixel: 7 saves 32 MB at 512 px, and the default run's final loss was no worse (offline VGG16, golden_gate.jpg
# with starry_night.jpg: 0.682 with 7 against 0.687 with 10; 5 gave 0.701, 2% worse).
LBFGS_MAXCOR = 7


def adam(evaluate: Callable, x0: np.ndarray, steps: int, stop: threading.Event,
         learning_rate: float, state: dict | None = None) -> Iterator[tuple]:
    """The TensorFlow tutorial's optimizer: Adam(learning_rate, beta_1=0.99, epsilon=0.1), clipping to [0, 1] each
    step; at most ``steps`` iterations.

    ``state`` (optional dict) carries Adam's state across sizes: if it holds ``m`` and ``v`` (the first and second
    moments, float32 arrays of x0's shape) and ``t`` (steps taken), Adam starts from them instead of from zero;
    after the last step it holds this run's. The caller resizes the moments to the next size (see
    :func:`resize_moments`), as crowsonkb/style-transfer-pytorch warm-starts Adam at each new scale.
    """
    import keras

    from nbart.quiet import tensorflow
    tf = tensorflow()

    image = tf.Variable(x0, dtype=tf.float32)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.99, epsilon=0.1)
    if state and "m" in state:
        optimizer.build([image])
        # Keras 3 keeps the moments in these lists (one entry per variable) and the step count in _iterations
        optimizer._momentums[0].assign(state["m"])
        optimizer._velocities[0].assign(state["v"])
        optimizer._iterations.assign(state["t"])
    for _ in range(steps):
        if stop.is_set():
            return
        loss, parts, gradient = evaluate(image)
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        yield image.numpy(), float(loss), parts.numpy()
    if state is not None:
        state.update(m=optimizer._momentums[0].numpy(), v=optimizer._velocities[0].numpy(),
                     t=int(optimizer._iterations.numpy()))


def resize_moments(state: dict, size: tuple[int, int]) -> dict:
    """Adam's ``state`` (see :func:`adam`) resized to the next size (height, width): the first moment bicubic, the
    second bilinear and kept >= 0, as crowsonkb/style-transfer-pytorch's ``scale_adam``; the step count kept."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    m = tf.image.resize(state["m"], size, method="bicubic").numpy()
    v = np.maximum(tf.image.resize(state["v"], size, method="bilinear").numpy(), 0.0)
    return dict(m=m, v=v, t=state["t"])


class IterateAverage:
    """Iterate averaging: a bias-corrected exponential moving average of an optimizer's iterates (the correction of
    Kingma & Ba's Adam), as crowsonkb/style-transfer-pytorch averages its Adam iterates (decay 0.99 there).

    Starts at ``x0`` (float32 array) with weight ``1 - decay``; :meth:`update` adds an iterate; :meth:`get` is the
    average, ``sum(decay ** (n - i) * x_i) / sum(decay ** (n - i))`` over x0..x_n, the same shape as ``x0``.
    ``decay`` in [0, 1): 0 keeps the last iterate. Deterministic: the same iterates give the same average.
    """

    def __init__(self, x0: np.ndarray, decay: float):
        self.decay = float(decay)
        self.value = (1.0 - self.decay) * np.asarray(x0, np.float32)
        self.weight = 1.0 - self.decay  # the sum of the weights so far: 1 - decay ** (n + 1)

    def update(self, x: np.ndarray) -> np.ndarray:
        """Add the iterate ``x``; return the new average."""
        self.value = self.decay * self.value + (1.0 - self.decay) * x
        self.weight = self.decay * self.weight + (1.0 - self.decay)
        return self.get()

    def get(self) -> np.ndarray:
        return (self.value / self.weight).astype(np.float32)


class _Cancelled(Exception):
    """Raised in L-BFGS's objective to end scipy's run at once when the run is stopped or closed."""


def lbfgs(evaluate: Callable, x0: np.ndarray, steps: int, stop: threading.Event) -> Iterator[tuple]:
    """scipy's L-BFGS-B, bounded to [0, 1], yielding after each iteration (at most ``steps``).

    scipy's fmin_l_bfgs_b is a blocking call, so it runs in a helper thread in lock-step with this generator: its
    iteration callback hands the iterate over and waits until the consumer pulls the next event. A stop (or the
    generator being closed) makes the callback raise StopIteration, which ends scipy's run cleanly. Tolerances are
    off so float32 gradients don't end the run early; if the line search gives up, L-BFGS restarts from where it
    is (at most LBFGS_MAX_RESTARTS times without progress). A non-finite loss or gradient ends it with a last
    iterate whose loss is NaN, for the consumer to stop on.
    """
    from nbart.quiet import tensorflow
    tf = tensorflow()
    from scipy.optimize import fmin_l_bfgs_b

    shape = x0.shape
    last_parts: list[Any] = [np.zeros(3)]
    last_loss = [float("nan")]  # at the last evaluated point, which is the iterate when an iteration ends
    # The bounds as one (0, 1) tuple referenced n times. minimize(bounds=Bounds(0, 1)) expands them into n tuples of
    # new floats that live as long as the run: ~110 MB of Python objects at 512 px (measured: peak RSS of the same
    # 40 iterations at n = 437*512*3, 305 MB with minimize, 222 MB with this, identical result).
    bounds = [(0.0, 1.0)] * x0.size

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        if cancel.is_set() or stop.is_set():  # a line search may evaluate many times per step: stop between them
            raise _Cancelled
        loss, parts, gradient = evaluate(tf.constant(x.reshape(shape), tf.float32))
        last_parts[0], last_loss[0] = parts.numpy(), float(loss)
        gradient = gradient.numpy().astype(np.float64).ravel()
        if not (np.isfinite(float(loss)) and np.isfinite(gradient).all()):
            # scipy ends quietly on a non-finite value (even at the start, before any iteration): tell the consumer
            non_finite.set()
            raise _Cancelled
        return float(loss), gradient

    handoff: queue.Queue = queue.Queue()
    proceed = threading.Semaphore(0)
    cancel, non_finite = threading.Event(), threading.Event()

    def callback(xk: np.ndarray) -> None:  # scipy hands a copy of the iterate
        handoff.put(("step", xk, last_loss[0], last_parts[0]))
        proceed.acquire()
        if cancel.is_set():
            raise StopIteration

    def work(x: np.ndarray, iterations: int) -> None:
        try:
            fmin_l_bfgs_b(fun, x, bounds=bounds, m=LBFGS_MAXCOR, factr=0.0, pgtol=0.0, maxiter=iterations,
                          maxfun=iterations * 4, callback=callback)
            handoff.put(("end",))
        except _Cancelled:
            handoff.put(("end",))
        except BaseException as e:  # handed to the consumer's thread, raised there
            handoff.put(("error", e))

    x, done, stalls = x0.astype(np.float64).ravel(), 0, 0
    while done < steps and stalls <= LBFGS_MAX_RESTARTS and not stop.is_set():
        worker = threading.Thread(target=work, args=(x, steps - done), daemon=True, name="nbart-lbfgs")
        worker.start()
        progressed = False
        try:
            while True:
                message = handoff.get()
                if message[0] == "end":
                    break
                if message[0] == "error":
                    raise message[1]
                _, x, loss, parts = message
                done += 1
                progressed = True
                yield x.reshape(shape).astype(np.float32), loss, parts
                proceed.release()
        finally:
            if worker.is_alive():
                cancel.set()
                proceed.release()
                worker.join()
        if non_finite.is_set():
            yield x.reshape(shape).astype(np.float32), float("nan"), last_parts[0]  # the consumer stops on it
            return
        stalls = 0 if progressed else stalls + 1
