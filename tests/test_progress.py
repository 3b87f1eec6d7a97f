"""nbart.progress: a notebook cell's progress bar over a run's events (tqdm; text on stderr outside Jupyter)."""

import numpy as np
import pytest
from conftest import TINY

import nbart


def test_progress_yields_every_event_and_draws_the_steps(gradient_image, capsys):
    run = nbart.dream_run(gradient_image, **TINY)
    events = list(nbart.progress(run, desc="tiny dream"))
    assert [e.step for e in events] == list(range(1, run.total + 1))
    err = capsys.readouterr().err
    assert "tiny dream" in err and f"{run.total}/{run.total}" in err and "loss " in err
    assert "estimating the time left" in err  # after the first step, never tqdm's mean rate with the tracing in it


def test_run_with_progress_returns_what_the_one_call_function_returns(gradient_image, capsys):
    image = nbart.run_with_progress(nbart.dream_run(gradient_image, **TINY))
    assert np.array_equal(np.asarray(image), np.asarray(nbart.dream(gradient_image, **TINY)))
    assert f"{2 * TINY['steps']}/{2 * TINY['steps']}" in capsys.readouterr().err


def test_breaking_out_closes_the_bar(gradient_image, capsys):
    run = nbart.dream_run(gradient_image, **TINY)
    for _event in nbart.progress(run):
        break
    run.close()
    assert "1/4" in capsys.readouterr().err


@pytest.mark.parametrize("given", [[1, 2, 3], "sample:grace_hopper"])
def test_progress_names_what_it_needs_when_given_something_else(given):
    with pytest.raises(nbart.ParamError, match=r"^progress needs a run, such as nbart.dream_run\(...\)"):
        list(nbart.progress(given))
    with pytest.raises(nbart.ParamError, match=r"^progress needs a run"):
        nbart.run_with_progress(given)
