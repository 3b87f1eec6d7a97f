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

import hashlib
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

    Tolerances are off so float32 gradients don't end the run early; if the line search gives up, L-BFGS restarts
    from where it is (at most LBFGS_MAX_RESTARTS times without progress). A non-finite loss or gradient ends it
    with a last iterate whose loss is NaN, for the consumer to stop on. A stop ends it between two evaluations.

    Where scipy's compiled routine has the signature of scipy 1.15 and later, it is driven here directly, in the
    consumer's thread (:func:`_lbfgs_direct`): the same calls in the same order as scipy's own loop, so the same
    iterates, without its float64 copies (the bounds as a (2, n) array and an n-long list, the memoized iterate
    and gradient); else scipy's ``fmin_l_bfgs_b`` runs in a helper thread (:func:`_lbfgs_threaded`).
    """
    setulb = _setulb()
    if setulb is not None:
        return _lbfgs_direct(setulb, evaluate, x0, steps, stop)
    return _lbfgs_threaded(evaluate, x0, steps, stop)


# The argument list of scipy's compiled L-BFGS-B step since scipy 1.15 (its C translation); _lbfgsb_py.py's
# _minimize_lbfgsb is the loop that drives it, which _lbfgs_direct follows call for call.
_SETULB_SIGNATURE = "setulb(m,x,l,u,nbd,f,g,factr,pgtol,wa,iwa,task,lsave,isave,dsave,maxls,ln_task)"
_LBFGS_MAXLS = 20  # scipy's default line-search steps per iteration
_FG, _NEW_X = 3, 1  # task[0]: "evaluate f and g at x", "a new iterate" (scipy's _lbfgsb_py.py)


def _setulb() -> Callable | None:
    """scipy's compiled L-BFGS-B step where its signature is the one :func:`_lbfgs_direct` drives, else None."""
    try:
        from scipy.optimize import _lbfgsb
    except ImportError:
        return None
    setulb = getattr(_lbfgsb, "setulb", None)
    doc = (getattr(setulb, "__doc__", "") or "").replace(" ", "")
    return setulb if doc.startswith(_SETULB_SIGNATURE) else None


def _lbfgs_direct(setulb: Callable, evaluate: Callable, x0: np.ndarray, steps: int,
                  stop: threading.Event) -> Iterator[tuple]:
    """L-BFGS-B by scipy's compiled step, driven as ``fmin_l_bfgs_b(fun, x0, bounds=[(0, 1)] * n,
    m=LBFGS_MAXCOR, factr=0, pgtol=0, maxiter=steps, maxfun=4 * steps)`` drives it. Memory: the workspace of
    (2 m + 5) n + 11 m^2 + 8 m float64 values and 3 n int32 (the algorithm's state), x, the gradient and the
    bounds (float64, as the routine takes them); nothing else of size n is kept. A restart starts from x as the
    routine leaves it: the last iterate (it puts that back when its line search gives up)."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    shape, n, m = x0.shape, x0.size, LBFGS_MAXCOR
    x = np.clip(np.asarray(x0, np.float64).ravel(), 0.0, 1.0)  # scipy clips the start into the bounds
    last = x.reshape(shape).astype(np.float32)  # the last iterate handed over: a non-finite evaluation hands it back
    lower, upper, kinds = np.zeros(n), np.ones(n), np.full(n, 2, np.int32)  # 2: bounded below and above
    parts: Any = np.zeros(3)
    loss = float("nan")
    done, stalls = 0, 0
    while done < steps and stalls <= LBFGS_MAX_RESTARTS and not stop.is_set():
        maxiter = steps - done
        maxfun = 4 * maxiter
        # a restart is a new scipy run: a fresh workspace (the corrections forgotten), from the last iterate
        wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, np.float64)
        iwa = np.zeros(3 * n, np.int32)
        task, ln_task = np.zeros(2, np.int32), np.zeros(2, np.int32)
        lsave, isave, dsave = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29, np.float64)
        f: Any = np.array(0.0)
        g = np.zeros(n, np.float64)
        evaluations, iterations, progressed = 0, 0, False
        evaluated_at, gradient = b"", None  # where this run last evaluated (a digest of x) and the float32 gradient
        while True:
            setulb(m, x, lower, upper, kinds, f, g, 0.0, 0.0, wa, iwa, task, lsave, isave, dsave, _LBFGS_MAXLS,
                   ln_task)
            if task[0] == _FG:
                if stop.is_set():  # a line search may evaluate many times per step: stop between them
                    return
                at = hashlib.blake2b(x.data, digest_size=16).digest()
                if at != evaluated_at:  # scipy, too, evaluates again only where x changed (and counts only then)
                    value, parts, gradient = evaluate(tf.constant(x.reshape(shape), tf.float32))
                    evaluations += 1
                    loss, parts, gradient = float(value), parts.numpy(), gradient.numpy().reshape(-1)
                    evaluated_at = at
                g[:] = gradient  # float32 into the float64 buffer, no float64 temporary
                if not (np.isfinite(loss) and np.isfinite(g).all()):
                    yield last, float("nan"), parts  # the consumer stops on it
                    return
                f = loss
            elif task[0] == _NEW_X:
                iterations += 1
                done += 1
                progressed = True
                last = x.reshape(shape).astype(np.float32)
                yield last, loss, parts
                if stop.is_set() or iterations >= maxiter or evaluations > maxfun:
                    break
            else:  # converged, or the line search gave up (x is back at the last iterate)
                break
        del wa, iwa
        stalls = 0 if progressed else stalls + 1


def _lbfgs_threaded(evaluate: Callable, x0: np.ndarray, steps: int, stop: threading.Event) -> Iterator[tuple]:
    """scipy's ``fmin_l_bfgs_b`` (any scipy version), as :func:`lbfgs` describes.

    fmin_l_bfgs_b is a blocking call, so it runs in a helper thread in lock-step with this generator: its
    iteration callback hands the iterate over and waits until the consumer pulls the next event. A stop (or the
    generator being closed) makes the callback raise StopIteration, which ends scipy's run cleanly.
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
