"""Iterate averaging and the sqrt(2) scale ladder of the style run (issue 21 item 2).

The average is a bias-corrected exponential moving average of the iterates; it is what each step shows, what the
run saves and where the next size starts; seeded runs stay deterministic; Adam's moments go on from one size to
the next; bad values get one clear line."""

import threading

import numpy as np
import pytest
from conftest import TINY_STYLE, error_line

import nbart
from nbart import cli, optimizers, styleplan
from nbart.params import ParamError, StyleParams, default_sizes


def test_the_halves_ladder_is_unchanged_and_sqrt2_adds_a_size_per_octave():
    for max_size in (256, 300, 511, 512, 700, 1024, 2048, 4000):
        old = [max_size]  # the rule before the ladder existed
        while old[0] // 2 >= 256:
            old.insert(0, old[0] // 2)
        assert default_sizes(max_size) == tuple(old) == StyleParams(max_size=max_size).resolution_sizes()
    assert default_sizes(512, "sqrt2") == (256, 362, 512)
    assert default_sizes(1024, "sqrt2") == (256, 362, 512, 724, 1024)
    assert default_sizes(300, "sqrt2") == (300,)
    assert StyleParams(max_size=1024, ladder="sqrt2").resolution_sizes() == (256, 362, 512, 724, 1024)
    # given sizes win over the ladder, as over max_size
    assert StyleParams(sizes=(128, 400), ladder="sqrt2").resolution_sizes() == (128, 400)
    # the stages: the content's aspect kept at each long side
    stages = styleplan.stage_sizes((512, 437), (512, 437), 512, (), 32, "vgg16", "sqrt2")
    assert [max(s) for s in stages] == [256, 362, 512] and stages[-1] == (437, 512)


def test_bad_ladder_and_decay_values_get_one_clear_line(tmp_path, monkeypatch, capsys):
    with pytest.raises(ParamError, match="ladder must be one of halves, sqrt2"):
        StyleParams(ladder="thirds")
    with pytest.raises(ParamError, match=r"average_decay must be <= 0.999 \(got 1\)"):
        StyleParams(average_decay=1.0)
    with pytest.raises(ParamError, match=r"average_decay must be >= 0 \(got -0.5\)"):
        StyleParams(average_decay=-0.5)
    monkeypatch.chdir(tmp_path)
    style = ["style", "sample:grace_hopper", "sample:starry_night", "-o", "o.png"]
    for flag, value, message in [("--average-decay", "1.5", "--average-decay must be <= 0.999 (got 1.5)"),
                                 ("--ladder", "thirds", "invalid choice: 'thirds'")]:
        assert cli.main([*style, flag, value]) == 2, flag
        assert message in error_line(capsys), flag
    assert not (tmp_path / "o.png").exists()


def test_the_average_is_the_bias_corrected_moving_average():
    rng = np.random.default_rng(0)
    xs = [rng.random((4, 5, 3), dtype=np.float32) for _ in range(6)]
    average = optimizers.IterateAverage(xs[0], 0.8)
    for n, x in enumerate(xs[1:], start=1):
        got = average.update(x)
        weights = 0.8 ** np.arange(n, -1, -1)  # x0 .. xn, the latest weighing most
        expected = np.tensordot(weights, np.stack(xs[:n + 1]), axes=1) / weights.sum()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert got.dtype == np.float32
    still = optimizers.IterateAverage(xs[0], 0.9)
    np.testing.assert_allclose(still.update(xs[0]), xs[0], rtol=1e-6)  # a constant stays itself: no bias to 0
    last = optimizers.IterateAverage(xs[0], 0.0)
    np.testing.assert_array_equal(last.update(xs[1]), xs[1])  # decay 0: the last iterate


def test_adams_state_goes_on_from_one_call_to_the_next():
    target = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)

    def evaluate(x):
        import tensorflow as tf
        d = tf.convert_to_tensor(x) - target
        return tf.reduce_sum(d * d), tf.zeros([3]), 2.0 * d

    x0, stop = np.full((2, 3, 3), 0.5, np.float32), threading.Event()
    whole = [x for x, _, _ in optimizers.adam(evaluate, x0, 4, stop, 0.05)]
    state: dict = {}
    first = [x for x, _, _ in optimizers.adam(evaluate, x0, 2, stop, 0.05, state)]
    assert state["t"] == 2 and state["m"].shape == x0.shape and (state["v"] >= 0).all()
    second = [x for x, _, _ in optimizers.adam(evaluate, first[-1], 2, stop, 0.05, state)]
    np.testing.assert_allclose(second[-1], whole[-1], rtol=1e-6, atol=1e-7)  # as if never interrupted
    fresh = [x for x, _, _ in optimizers.adam(evaluate, first[-1], 2, stop, 0.05)]
    assert not np.allclose(fresh[-1], whole[-1])  # a reset would differ
    resized = optimizers.resize_moments(state, (4, 6))
    assert resized["m"].shape == (4, 6, 3) and (resized["v"] >= 0).all() and resized["t"] == 4


def test_the_average_is_what_each_step_shows_and_the_run_saves(gradient_image):
    kw = dict(TINY_STYLE, optimizer="adam", learning_rate=0.05, steps=4)
    plain = [e.render() for e in nbart.style_run(gradient_image, "sample:starry_night", **kw)]
    run = nbart.style_run(gradient_image, "sample:starry_night", average_decay=0.5, **kw)
    shown = [e.render() for e in run]
    # within one size the iterates don't depend on the average: the shown images follow its recurrence
    d = 0.5
    for n in range(1, len(shown)):  # weights so far: 1 - d ** (n + 1) after n + 1 iterates and the start
        w_prev, w = 1 - d ** (n + 1), 1 - d ** (n + 2)
        np.testing.assert_allclose(shown[n], (d * w_prev * shown[n - 1] + (1 - d) * plain[n]) / w, atol=1e-5)
    assert not np.allclose(shown[-1], plain[-1], atol=1e-3)
    np.testing.assert_array_equal(np.asarray(run.image()), run.latest.image())  # saved = the last shown
    assert run.metadata()["params"]["average_decay"] == 0.5


def test_a_seeded_averaged_run_across_sizes_is_deterministic(gradient_image):
    # two sizes: the average carried to the next size, Adam's moments resized to it
    kw = dict(TINY_STYLE, sizes=(40, 56), average_decay=0.5, optimizer="adam", steps=2)
    run = nbart.style_run(gradient_image, "sample:starry_night", **kw)
    events = list(run)
    assert [e.label.split(" · ")[0] for e in events] == ["size 1/2"] * 2 + ["size 2/2"] * 2
    assert run.outcome.value == "completed", run.notices
    again = nbart.style_transfer(gradient_image, "sample:starry_night", **kw)
    assert np.array_equal(np.asarray(run.image()), np.asarray(again))


def test_the_style_run_plans_the_ladders_sizes():
    # nothing is computed until the first event: the plan alone (max_size 384: 271 then 384 px on the sqrt(2) ladder)
    kw = dict(TINY_STYLE, sizes=(), max_size=384)
    assert nbart.style_run("sample:grace_hopper", "sample:starry_night", **kw).total == TINY_STYLE["steps"]
    run = nbart.style_run("sample:grace_hopper", "sample:starry_night", ladder="sqrt2", **kw)
    assert run.total == 2 * TINY_STYLE["steps"] and run.params.ladder == "sqrt2"
