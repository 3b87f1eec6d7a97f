"""Style transfer under faults and odd inputs (issue 8): non-finite numbers in L-BFGS and Adam, a stop or a real
Ctrl-C inside L-BFGS's line search, tiny and thin contents and styles, and the corpus through ``nbart style``."""

import signal
import threading

import numpy as np
import pytest
from conftest import TINY_STYLE
from corpus import cases
from PIL import Image

import nbart
from nbart import cli, images, styletransfer
from nbart.images import ImageError
from nbart.styletransfer import style_run

FLAGS = ["--model=vgg16", "--weights=none", "--sizes=48", "--seed=0", "--precision=float32", "--quiet"]


@pytest.fixture
def content(gradient_image):
    return gradient_image


@pytest.fixture
def style():
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


def _lbfgs_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "nbart-lbfgs"]


def _wrap_evaluations(monkeypatch, hook) -> list:
    """Count calls of the traced loss-and-gradient; ``hook(n, outputs)`` may act on or replace the n-th."""
    real = styletransfer.prepare
    calls: list = []

    def wrapping(params):
        prepared = real(params)
        loss_and_gradient = prepared.loss_and_gradient

        def counted(*args):
            calls.append(threading.current_thread().name)
            return hook(len(calls), loss_and_gradient(*args))

        prepared.loss_and_gradient = counted  # the public seam a fault is injected at
        return prepared

    monkeypatch.setattr(styletransfer, "prepare", wrapping)
    return calls


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_non_finite_mid_run_keeps_the_last_finite_image(content, style, monkeypatch, optimizer):
    import tensorflow as tf

    clean = [e.image() for e in style_run(content, style, **{**TINY_STYLE, "steps": 6, "optimizer": optimizer})]

    def poison(n, outputs):
        loss, parts, gradient = outputs
        return (loss, parts, gradient * np.float32(np.nan)) if n == 3 else outputs

    _wrap_evaluations(monkeypatch, poison)
    with pytest.warns(UserWarning, match="the loss or image became non-finite; kept the last finite image"):
        out = nbart.style_transfer(content, style, **{**TINY_STYLE, "steps": 6, "optimizer": optimizer})
    result = np.asarray(out)
    assert any(np.array_equal(result, image) for image in clean[:2])  # a step before the poisoned evaluation
    assert not _lbfgs_threads()
    del tf


def test_non_finite_at_the_start_of_lbfgs_is_reported_not_silent(content, style, monkeypatch):
    """scipy ends quietly when the very first evaluation is non-finite; the run used to end 'stopped', no notice."""

    def poison(n, outputs):
        loss, parts, gradient = outputs
        return loss * np.float32(np.inf), parts, gradient

    _wrap_evaluations(monkeypatch, poison)
    run = style_run(content, style, **TINY_STYLE)
    assert list(run) == [] and run.outcome == "failed"
    assert run.notices == ["stopped at step 1: the loss or image became non-finite; kept the last finite image"]
    assert not _lbfgs_threads()


def test_stop_inside_an_lbfgs_line_search_returns_within_one_evaluation(content, style, monkeypatch):
    runs: list = []
    stop_at = 4  # L-BFGS's first iterations evaluate more than once: call 4 is mid-iteration or mid-search

    def stopper(n, outputs):
        if n == stop_at:
            runs[0].stop()
        return outputs

    calls = _wrap_evaluations(monkeypatch, stopper)
    run = style_run(content, style, **{**TINY_STYLE, "steps": 50})
    runs.append(run)
    seen = list(run)
    assert len(calls) == stop_at  # no evaluation after the stop: scipy was ended between two evaluations
    assert run.outcome == "stopped" and len(seen) < stop_at and not _lbfgs_threads()
    if seen:
        np.testing.assert_array_equal(np.asarray(run.image()), seen[-1].image())


def test_real_ctrl_c_during_lbfgs_writes_the_last_image(tmp_path, content, style, monkeypatch, capsys):
    """A real SIGINT, sent while the main thread waits for L-BFGS's helper thread: exit 130, the image written,
    the helper thread ended at once."""
    main = threading.main_thread().ident

    def interrupt(n, outputs):
        if n == 6:
            signal.pthread_kill(main, signal.SIGINT)
        return outputs

    calls = _wrap_evaluations(monkeypatch, interrupt)
    c, s, out = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    content.save(c)
    style.save(s)
    assert cli.main(["style", str(c), str(s), "-o", str(out), *FLAGS, "--steps=50"]) == 130
    err = capsys.readouterr().err.splitlines()
    meta = images.read_params(out)
    assert err == [f"nbart: interrupted at step {meta['steps_done']}/50; wrote {out}"]
    assert 1 <= meta["steps_done"] < 6 and meta["ended"] == "interrupted"
    assert len(calls) <= 7 and not _lbfgs_threads()  # at most the evaluation that was running
    assert Image.open(out).size == (48, 40)


@pytest.mark.parametrize(
    "size, expected, notice",
    [
        ((1, 1), (32, 32), "content upscaled from 1x1 to 32x32 px, the smallest vgg16 accepts"),
        ((16, 8), (64, 32), "content upscaled from 16x8 to 64x32 px, the smallest vgg16 accepts"),
        ((300, 30), (320, 32), "content upscaled from 300x30 to 320x32 px, the smallest vgg16 accepts"),
    ],
)
def test_tiny_contents_are_upscaled_to_the_backbone_minimum_with_a_notice(size, expected, notice, style):
    params = {k: v for k, v in TINY_STYLE.items() if k != "sizes"}
    run = style_run(Image.new("RGB", size, (200, 30, 40)), style, **{**params, "steps": 1})
    assert run.start_image.size == expected and run.notices == [notice]
    assert {tuple(c) for c in np.asarray(run.start_image).reshape(-1, 3)} == {(200, 30, 40)}
    assert len(list(run)) == 1 and run.completed


def test_thin_contents_and_styles(style, content):
    params = {k: v for k, v in TINY_STYLE.items() if k != "sizes"}
    with pytest.raises(ImageError) as info:
        style_run(Image.new("RGB", (4000, 40)), style, **params)
    assert str(info.value) == ("content image is too thin: 4000x40 px can't fit within 512 px with its short side "
                               "at least 32 px; crop it or raise max_size")
    # A wide content's default coarse size (256 px: 26 px high) is dropped, not refused
    run = style_run(Image.new("RGB", (1000, 100)), style, **{**params, "steps": 1})
    assert run.start_image.size == (512, 51) and run.total == 1
    # Thin styles are upscaled at each stage until the backbone can take them (this crashed VGG's pooling)
    for thin in ((600, 40), (4000, 40), (40, 600)):
        run = style_run(content, Image.new("RGB", thin, (250, 200, 30)), **{**TINY_STYLE, "steps": 1})
        assert len(list(run)) == 1 and np.isfinite(run.latest.loss), thin
    with pytest.raises(ImageError, match=r"style image is too thin: 100000x1 px would have to grow to \d+ px long"):
        style_run(content, Image.new("RGB", (100000, 1)), **{**TINY_STYLE, "sizes": (512,)})


ERRORS = [c for c in cases() if c.error]


@pytest.mark.parametrize("case", ERRORS, ids=[c.name for c in ERRORS])
def test_corpus_errors_through_nbart_style(case, tmp_path, content, capsys):
    bad = tmp_path / case.name
    bad.write_bytes(case.data)
    good = tmp_path / "good.png"
    content.save(good)
    out = tmp_path / "out.png"
    for argv in (["style", str(bad), str(good)], ["style", str(good), str(good), str(bad)]):
        assert cli.main([*argv, "-o", str(out), *FLAGS]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("nbart: error: ") and case.error in lines[0], lines
    assert not out.exists()


def test_an_exception_in_a_consumer_ends_lbfgs_and_its_thread(content, style):
    run = style_run(content, style, **{**TINY_STYLE, "steps": 50})
    seen = []

    def consumer(event):
        seen.append(event.image())
        if event.step == 2:
            raise RuntimeError("the preview broke")

    with pytest.raises(RuntimeError, match="the preview broke"):
        run.run(consumer)
    assert run.finished and run.outcome == "stopped" and run.released
    assert not _lbfgs_threads()  # scipy's helper thread ended with the run
    np.testing.assert_array_equal(np.asarray(run.image()), seen[-1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(content_weight=float("nan")), "content_weight must be a finite number (got nan)"),
        (dict(style_weight=-1.0), "style_weight must be >= 0 (got -1)"),
        (dict(style_blend=(1.0, -2.0)), "each of style_blend must be >= 0 (got -2)"),
        (dict(style_layer_weights=(1, 1, 1, 1, float("inf"))), "each of style_layer_weights must be a finite number"),
        (dict(steps=0), "steps must be >= 1 (got 0)"),
        (dict(learning_rate=0.0), "learning_rate must be > 0 (got 0)"),
        (dict(model="inception_v3", sizes=(), max_size=64), "max_size must be >= 75 px for inception_v3 (got 64)"),
        (dict(style_layers=("mixed11",), model="inception_v3"),
         "unknown layer 'mixed11' for inception_v3; choose from mixed0..mixed10"),
        (dict(model="resnet"), "model must be one of inception_v3, vgg19, vgg16 (got 'resnet')"),
    ],
)
def test_bad_style_parameters_are_refused_before_any_work(kwargs, message, content, style):
    from nbart import backbones
    from nbart.params import ParamError

    backbones.clear_cache()
    with pytest.raises(ParamError) as info:
        style_run(content, style, **{**TINY_STYLE, **kwargs})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert backbones.cache_sizes() == {"models": 0, "extractors": 0, "functions": 0}
