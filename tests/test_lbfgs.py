"""nbart.optimizers.lbfgs drives scipy's compiled L-BFGS-B step itself (no float64 copies of scipy's wrapper): it
must give exactly the iterates of scipy's own fmin_l_bfgs_b, which the threaded fallback runs."""

import threading

import numpy as np
import pytest
import scipy

from nbart import optimizers


def _problem(shape=(6, 5, 3), seed=0):
    """A bounded least-squares objective with coupled pixels and targets outside [0, 1] (bounds bind), as
    ``evaluate(x) -> (loss, parts, gradient)`` on float32 TensorFlow tensors, like a style step's."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    target = tf.constant(rng.uniform(-0.5, 1.5, shape).astype(np.float32))
    weight = tf.constant(rng.uniform(0.5, 2.0, shape).astype(np.float32))
    calls = []

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)], autograph=False)
    def traced(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            fit = tf.reduce_sum(weight * (x - target) ** 2)
            smooth = tf.reduce_sum((x[1:] - x[:-1]) ** 2) + tf.reduce_sum((x[:, 1:] - x[:, :-1]) ** 2)
            loss = fit + 0.3 * smooth + 0.1 * tf.reduce_sum(tf.sin(3.0 * x))
        return loss, tf.stack([fit, smooth, 0.0]), tape.gradient(loss, x)

    def evaluate(x):
        calls.append(1)
        return traced(x)

    return evaluate, rng.uniform(0, 1, shape).astype(np.float32), calls


def test_this_scipy_is_driven_directly():
    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    assert (optimizers._setulb() is not None) == ((major, minor) >= (1, 15))


@pytest.mark.skipif(optimizers._setulb() is None, reason="scipy < 1.15: only the threaded path exists")
@pytest.mark.parametrize("steps", [1, 40])
def test_direct_lbfgs_gives_scipys_iterates_exactly(steps):
    evaluate, x0, calls = _problem()
    direct = list(optimizers._lbfgs_direct(optimizers._setulb(), evaluate, x0, steps, threading.Event()))
    direct_calls = len(calls)
    calls.clear()
    threaded = list(optimizers._lbfgs_threaded(evaluate, x0, steps, threading.Event()))
    assert len(direct) == len(threaded) > 0 and direct_calls == len(calls)
    for (x, loss, parts), (x_ref, loss_ref, parts_ref) in zip(direct, threaded):
        assert x.dtype == np.float32 and x.shape == x0.shape
        np.testing.assert_array_equal(x, x_ref)
        assert loss == loss_ref
        np.testing.assert_array_equal(parts, parts_ref)
    import tensorflow as tf

    final = direct[-1][0]
    assert final.min() >= 0.0 and final.max() <= 1.0 and direct[-1][1] < float(evaluate(tf.constant(x0))[0])
    assert (final == 0.0).any() and (final == 1.0).any()  # the bounds were active


@pytest.mark.skipif(optimizers._setulb() is None, reason="scipy < 1.15: only the threaded path exists")
def test_direct_lbfgs_restarts_as_scipy_does_when_its_line_search_gives_up():
    """A gradient that points the wrong way for a while makes the line search fail: both paths restart from the
    last iterate with a fresh workspace, giving the same iterates."""
    runs = []
    for driver in ("direct", "threaded"):
        evaluate, x0, calls = _problem(seed=1)

        def lying(x, evaluate=evaluate, calls=calls):
            loss, parts, gradient = evaluate(x)
            return (loss, parts, -gradient) if 8 <= len(calls) < 40 else (loss, parts, gradient)

        run = optimizers._lbfgs_direct(optimizers._setulb(), lying, x0, 30, threading.Event()) \
            if driver == "direct" else optimizers._lbfgs_threaded(lying, x0, 30, threading.Event())
        runs.append((list(run), len(calls)))
    (direct, direct_calls), (threaded, threaded_calls) = runs
    assert direct_calls == threaded_calls and len(direct) == len(threaded) >= 5
    for (x, loss, _), (x_ref, loss_ref, _) in zip(direct, threaded):
        np.testing.assert_array_equal(x, x_ref)
        assert loss == loss_ref


def test_stop_ends_lbfgs_between_two_evaluations():
    evaluate, x0, calls = _problem()
    stop = threading.Event()

    def stopping(x):
        if len(calls) == 3:
            stop.set()
        return evaluate(x)

    seen = list(optimizers.lbfgs(stopping, x0, 50, stop))
    assert len(calls) == 4 and len(seen) < 4  # the evaluation running at the stop, none after


def test_a_non_finite_gradient_ends_with_the_last_iterate_and_a_nan_loss():
    import tensorflow as tf

    evaluate, x0, calls = _problem()

    def poisoned(x):
        loss, parts, gradient = evaluate(x)
        return (loss, parts, gradient * np.float32(np.nan)) if len(calls) == 5 else (loss, parts, gradient)

    seen = list(optimizers.lbfgs(poisoned, x0, 50, threading.Event()))
    assert len(seen) >= 2 and np.isnan(seen[-1][1]) and np.isfinite([s[1] for s in seen[:-1]]).all()
    np.testing.assert_array_equal(seen[-1][0], seen[-2][0])  # the last finite iterate, handed back
    del tf
