"""Defaults that fit the machine (issue 16.3): the starting size a studio picks where the cost model expects the
asked run to take over a minute, and the one click back. The cost model is replaced by a known one here, so the
tests check the choice, not this machine's speed (benchmarks/results/first-minute.* has measured figures)."""

from types import SimpleNamespace

import pytest
from conftest import TINY

import nbart
from nbart import budget
from nbart.cost import Estimate
from nbart.params import DreamParams, StyleParams
from nbart.styleplan import resolution_sizes


def _fake_estimate(task, *images, params, probe_now=True):
    """5 s of set-up plus 1 s per 1,000 output pixels (a square picture); records what it was asked about."""
    side = params.max_size if task == "dream" else resolution_sizes(params.max_size, params.sizes)[-1]
    _fake_estimate.asked.append((task, images, params))
    return Estimate(task, 5.0 + side * side / 1_000, 10**9, 10**8, 1.0, ((side, side),))


@pytest.fixture
def known_cost(monkeypatch):
    _fake_estimate.asked = []
    monkeypatch.setattr(budget, "estimate", _fake_estimate)
    return _fake_estimate


def test_a_run_that_fits_is_left_alone(known_cost):
    assert budget.fit_time("dream", ["sample:grace_hopper"], DreamParams(max_size=224), 60.0) is None  # 55 s


def test_the_default_budget_leaves_room_for_an_estimate_25_percent_short(known_cost):
    # 45 s: a run estimated at 55 s (224 px) could take over a minute, so the default budget starts lower
    assert budget.BUDGET_S == 45.0
    fitted = budget.fit_time("dream", ["sample:grace_hopper"], DreamParams(max_size=224))
    assert fitted.size == 192 and fitted.estimate.seconds * 1.25 <= 60.0  # 41.9 s


def test_the_largest_size_that_fits_a_minute(known_cost):
    fitted = budget.fit_time("dream", ["sample:grace_hopper"], DreamParams(), 60.0)  # 512 px: 267 s
    assert (fitted.size, fitted.asked_size) == (224, 512)  # 224 px: 55 s; 256 px: 70.5 s
    assert fitted.params == DreamParams(max_size=224) and fitted.estimate.seconds == pytest.approx(55.18, abs=0.01)
    assert fitted.asked.seconds == pytest.approx(267.1, abs=0.1)
    assert len(known_cost.asked) <= 6  # a bisection, not every size
    assert budget.fit_time("dream", ["x"], DreamParams(), seconds=1.0).size == budget.SMALLEST  # none fits


def test_a_style_schedule_is_scaled_as_a_whole(known_cost):
    fitted = budget.fit_time("style", ["sample:grace_hopper", ["sample:starry_night", "sample:the_scream"]],
                             StyleParams(sizes=(256, 512), steps=30), 60.0)
    assert fitted.params.sizes == (128, 224) and fitted.params.steps == 30
    task, images, _ = known_cost.asked[0]
    assert task == "style" and images[1] == ["sample:starry_night", "sample:the_scream"]
    assert budget.fit_time("style", ["a", "b"], StyleParams(), 60.0).params.max_size == 224  # sizes empty: max_size


def _fitted_at(size, asked_size, seconds, asked_seconds):
    def fit_time(task, images, params, seconds_budget=60.0):
        fit_time.calls.append((task, images, params))
        p = params.replace(max_size=size)
        return budget.Fitted(p, Estimate(task, seconds, 1, 1, 1.0, ()), Estimate(task, asked_seconds, 1, 1, 1.0, ()),
                             size, asked_size)
    fit_time.calls = []
    return fit_time


def test_a_studio_starts_at_the_size_that_fits_and_one_click_goes_back(monkeypatch):
    from nbart.studio import startsize

    fake = _fitted_at(256, 512, 41.0, 170.0)
    monkeypatch.setattr(startsize, "fit_time", fake)
    studio = nbart.DreamStudio(model="vgg16", weights="none", octaves=2, steps=2, precision="float32", warm_up=True)
    studio.warm_up_thread.join(120)
    assert fake.calls and fake.calls[0][1] == ["sample:grace_hopper"] and fake.calls[0][2].max_size == 512
    assert studio.controls["max_size"].value == 256 and studio.params().max_size == 256
    assert studio.start_size.widget.layout.display is None  # the line and its button are shown
    assert "started at 256 px: about 41 s here" in studio.start_size.note.value
    assert "started at 256 px" in studio.status.value
    assert studio.start_size.button.description == "512 px (about 2 min 50 s)"
    studio.start_size.button.click()
    assert studio.controls["max_size"].value == 512 and studio.start_size.widget.layout.display == "none"
    assert "back to 512 px" in studio.status.value


def test_a_size_given_by_the_caller_is_kept(monkeypatch):
    from nbart.studio import startsize

    fake = _fitted_at(128, 512, 30.0, 100.0)
    monkeypatch.setattr(startsize, "fit_time", fake)
    studio = nbart.DreamStudio(**TINY, warm_up=True)
    studio.warm_up_thread.join(120)
    assert studio.start_size is None and not fake.calls and studio.controls["max_size"].value == TINY["max_size"]
    assert nbart.StyleStudio(model="vgg16", weights="none", sizes=(128,), warm_up=True).start_size is None
    style = nbart.StyleStudio(model="vgg16", weights="none", precision="float32", warm_up=True)
    assert style.start_size is not None  # its own starting sizes are defaults too: checked
    style.warm_up_thread.join(120)
    task, images, params = fake.calls[-1]
    assert task == "style" and images == ["sample:grace_hopper", "sample:starry_night"]
    assert params.sizes == nbart.StyleStudio.starting["sizes"]


def test_a_run_started_before_the_check_is_not_resized(monkeypatch):
    from nbart.studio import startsize

    fake = _fitted_at(128, 512, 30.0, 100.0)
    monkeypatch.setattr(startsize, "fit_time", fake)
    studio = nbart.DreamStudio(model="vgg16", weights="none", octaves=1, steps=1, precision="float32",
                               warm_up=False, fit_start=True)
    assert studio.start_size is None  # no warm-up, no check: it runs in the warm-up's thread
    studio = nbart.DreamStudio(model="vgg16", weights="none", octaves=1, steps=1, precision="float32",
                               warm_up=False)
    studio.start_size = startsize.StartSize(studio)
    studio.history.append(SimpleNamespace(label=""))  # a run's result already: the participant has chosen
    assert studio.start_size.check() is None and studio.controls["max_size"].value == 512 and not fake.calls
    studio.history[:] = [SimpleNamespace(label="fast preview")]  # a StyleStudio's fast preview is no run
    studio.start_size = startsize.StartSize(studio)
    assert studio.start_size.check() is not None and studio.controls["max_size"].value == 128


def test_fit_start_true_fits_a_size_the_caller_gave(monkeypatch):
    """The notebooks pass their SIZE and ask for the fit (fit_start=True): the panel starts smaller where it must."""
    from nbart.studio import startsize

    fake = _fitted_at(192, 384, 50.0, 120.0)
    monkeypatch.setattr(startsize, "fit_time", fake)
    studio = nbart.DreamStudio(model="vgg16", weights="none", max_size=384, octaves=2, steps=2, precision="float32",
                               warm_up=True, fit_start=True)
    studio.warm_up_thread.join(120)
    assert fake.calls[0][2].max_size == 384 and studio.controls["max_size"].value == 192
