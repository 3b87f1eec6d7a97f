"""A run that won't fit in memory is refused before it starts, in every way a run starts: the API's runs and one-call
functions, Continue, and the studios (their one error line names the size control that fits and the force checkbox).
``force=True`` runs it anyway. The limit is simulated (``nbart.resources.memory_limit`` monkeypatched) between the
model's estimates of two sizes, so the size named must fall between them."""

import pytest
from conftest import TINY, TINY_STYLE

import nbart
from nbart import cost, deepdream, resources, styletransfer
from nbart.cost import WontFit
from nbart.params import DreamParams, StyleParams

DREAM = dict(TINY, max_size=256, octaves=1, steps=1)
STYLE = dict(TINY_STYLE, sizes=(64, 192), steps=1)


@pytest.fixture
def photo(tmp_path, gradient_image):
    path = tmp_path / "photo.png"
    gradient_image.resize((1200, 900)).save(path)
    return path


def _limit_between(monkeypatch, task, images, small, big):
    """Simulate a process that may use more than a run of ``small`` params needs and less than one of ``big``."""
    low = cost.estimate(task, *images, probe_now=False, **small).increment_bytes
    high = cost.estimate(task, *images, probe_now=False, **big).increment_bytes
    assert low < high
    limit = resources.Limit((low + high) // 2, "cgroup limit")
    monkeypatch.setattr(resources, "memory_limit", lambda: limit)
    return limit


def test_dream_runs_refuse_naming_a_max_size_that_fits_and_force_runs(photo, monkeypatch):
    limit = _limit_between(monkeypatch, "dream", (photo,), {**DREAM, "max_size": 128}, DREAM)
    with pytest.raises(WontFit) as caught:
        nbart.dream_run(photo, **DREAM)
    error = caught.value
    message = str(error)
    assert "\n" not in message and "(cgroup limit)" in message and message.endswith(", or force=True")
    size = error.fits["max_size"]
    assert f"try max_size={size}, or force=True" in message
    assert 128 <= size < 256 and size % 32 == 0
    assert cost.estimate("dream", photo, probe_now=False, **{**DREAM, "max_size": size}).increment_bytes \
        <= limit.bytes < error.needed
    with pytest.raises(WontFit):  # the one-call API: refused, not interrupted
        nbart.dream(photo, **DREAM)
    big = nbart.dream(photo, **DREAM, force=True)
    assert max(big.size) == 256
    with pytest.raises(WontFit):  # a Continue of it is as big: refused too
        deepdream.continue_run(big, DreamParams(**DREAM), 1)
    assert max(nbart.dream(photo, **{**DREAM, "max_size": size}).size) == size  # the size named runs


def test_style_runs_refuse_naming_sizes_that_fit_and_force_runs(photo, monkeypatch):
    style = "sample:starry_night"
    _limit_between(monkeypatch, "style", (photo, style), {**STYLE, "sizes": (64, 96)}, STYLE)
    with pytest.raises(WontFit) as caught:
        nbart.style_run(photo, style, **STYLE)
    fits = caught.value.fits
    assert set(fits) == {"sizes"} and fits["sizes"][0] == 64 and 96 <= fits["sizes"][-1] < 192
    assert f"try sizes={fits['sizes']!r}, or force=True" in str(caught.value)
    with pytest.raises(WontFit):
        nbart.style_transfer(photo, style, **STYLE)
    result = nbart.style_transfer(photo, style, **STYLE, force=True)
    assert max(result.size) == 192
    with pytest.raises(WontFit):
        styletransfer.continue_run(result, photo, style, StyleParams(**STYLE), 1)


def test_the_cli_words_the_way_forward_as_flags(photo, tmp_path, monkeypatch, capsys):
    from conftest import error_line

    from nbart import cli

    _limit_between(monkeypatch, "dream", (photo,), {**DREAM, "max_size": 128}, DREAM)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in DREAM.items()]
    assert cli.main(["dream", str(photo), "-o", str(tmp_path / "out.png"), *flags]) == 2
    line = error_line(capsys)
    assert "(cgroup limit); try --max-size " in line and line.endswith(", or --force")


def test_the_studios_show_the_refusal_with_the_size_that_fits_and_force(photo, monkeypatch):
    pytest.importorskip("ipywidgets")
    from nbart.studio import DreamStudio, StyleStudio

    _limit_between(monkeypatch, "dream", (photo,), {**DREAM, "max_size": 128}, DREAM)
    studio = DreamStudio(str(photo), mode="thread", **DREAM)
    studio.start(block=True)
    assert studio.result is None and studio.history == []
    assert "this dream needs about" in studio.error and "(cgroup limit): set max size to " in studio.error
    assert studio.error.endswith("(Size tab), or tick force (Advanced tab) to run anyway")
    assert "Error: this dream needs" in studio.message.value and "not started" in studio.status.value
    size = int(studio.error.split("set max size to ")[1].split(" ")[0])
    assert 128 <= size < 256
    studio.controls["force"].value = True
    studio.start(block=True)
    assert studio.result is not None and max(studio.result.size) == 256

    style = "sample:starry_night"
    _limit_between(monkeypatch, "style", (photo, style), {**STYLE, "sizes": (64, 96)}, STYLE)
    studio = StyleStudio(str(photo), style, mode="thread", **STYLE)
    studio.start(block=True)
    assert studio.result is None
    assert "(cgroup limit): set sizes to 64, " in studio.error and "(Size & colour tab), or tick force" in \
        studio.error


def test_fast_style_refuses_naming_a_max_size_that_fits_and_force_runs(photo, monkeypatch):
    pytest.importorskip("onnxruntime")
    low, high = cost.fast_increment(128, 96), cost.fast_increment(256, 192)
    limit = resources.Limit((low + high) // 2, "free memory")
    monkeypatch.setattr(resources, "memory_limit", lambda: limit)
    with pytest.raises(WontFit) as caught:
        nbart.fast_style_run(photo, "sample:starry_night", max_size=256)
    size = caught.value.fits["max_size"]
    assert 128 <= size < 256 and size % 32 == 0 and "(free memory); try max_size=" in str(caught.value)
    bigger = size + 32
    assert cost.fast_increment(size, size * 3 // 4) <= limit.bytes < cost.fast_increment(bigger, bigger * 3 // 4)
    assert nbart.fast_style(photo, "sample:starry_night", max_size=256, force=True).size == (256, 192)
