"""Nothing lost, whatever ends a run (issue 17): checkpoints that survive SIGKILL and aborts, catchable signals
ending a CLI run as Ctrl-C does, one-call functions returning their picture when interrupted, notices for what ran
other than asked, degenerate objectives keeping the start image, and progress within a long step."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT, TINY, TINY_STYLE
from PIL import Image

import nbart
from nbart import cli, deepdream, events, images, safety, styletransfer
from nbart.deepdream import dream_run
from nbart.styletransfer import style_run

FLAGS = ["--model=vgg16", "--weights=none", "--seed=0", "--precision=float32"]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _wait_for(path, proc, seconds=240):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.1)


def _long_dream(tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (90, 120, 200)).save(photo)
    out = tmp_path / "out.png"
    argv = [sys.executable, "-m", "nbart", "dream", str(photo), "-o", str(out), *FLAGS, "--quiet", "--max-size=64",
            "--octaves=1", "--steps=10000"]
    proc = subprocess.Popen(argv, env=_env(NBART_CHECKPOINT_SECONDS="0"), stderr=subprocess.PIPE, text=True)
    return proc, out


def _checkpoint_meta(out):
    with Image.open(out) as img:
        img.verify()  # a whole PNG, not a partial one
    with Image.open(out) as img:
        assert img.size == (64, 48)
    return images.read_params(out)


def test_sigkill_mid_run_leaves_the_last_checkpoint(tmp_path):
    proc, out = _long_dream(tmp_path)
    try:
        _wait_for(out, proc)
        time.sleep(1.0)  # several more checkpoints: the kill may land in the middle of one
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    meta = _checkpoint_meta(out)
    assert meta["ended"] == "checkpoint" and meta["task"] == "dream"
    assert 1 <= meta["steps_done"] < 10000 and meta["params"]["steps"] == 10000 and meta["params"]["seed"] == 0


def test_sigterm_ends_the_run_as_ctrl_c_does_with_its_own_status(tmp_path):
    proc, out = _long_dream(tmp_path)
    try:
        _wait_for(out, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    meta = _checkpoint_meta(out)
    assert meta["ended"] == "ended by SIGTERM" and meta["steps_done"] >= 1
    assert err.strip().splitlines()[-1] == f"nbart: ended by SIGTERM at step {meta['steps_done']}/10000; wrote {out}"


def test_a_style_run_that_aborts_leaves_its_last_checkpoint(tmp_path):
    """The issue's case: TensorFlow's std::bad_alloc abort (SIGABRT) at step k; simulated by os.abort()."""
    out = tmp_path / "out.png"
    script = textwrap.dedent(f"""
        import os, sys
        from nbart import cli, styletransfer
        real = styletransfer.prepare
        calls = []
        def aborting(params):
            prepared = real(params)
            fn = prepared.loss_and_gradient
            def wrapped(*args):
                calls.append(1)
                if len(calls) == 4:
                    os.abort()
                return fn(*args)
            prepared.loss_and_gradient = wrapped
            return prepared
        styletransfer.prepare = aborting
        sys.exit(cli.main(["style", "sample:grace_hopper", "sample:starry_night", "-o", {str(out)!r}, "--quiet",
                           "--model=vgg16", "--weights=none", "--seed=0", "--precision=float32", "--sizes=48",
                           "--optimizer=adam", "--steps=10"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=_env(NBART_CHECKPOINT_SECONDS="0"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGABRT, proc.stderr
    with Image.open(out) as img:
        img.verify()
    meta = images.read_params(out)
    assert meta["ended"] == "checkpoint" and meta["task"] == "style" and meta["steps_done"] == 3  # 4th call aborted
    assert meta["params"]["steps"] == 10 and meta["inputs"] == ["sample:grace_hopper", "sample:starry_night"]


def _recorded_checkpoints(monkeypatch):
    saved = []
    real = cli.save_image  # the same function in both modules: checkpoints (safety) and the final write (cli)

    def recording(img, path, params=None, **kw):
        saved.append(dict(params, checkpoint_write=kw.get("checkpoint", False)))
        return real(img, path, params, **kw)

    monkeypatch.setattr(cli, "save_image", recording)
    monkeypatch.setattr(safety, "save_image", recording)
    return saved


@pytest.mark.parametrize("seconds, at_steps", [(math.inf, [2]), (0.0, [1, 2, 3])])
def test_checkpoints_at_every_stage_end_and_every_interval(tmp_path, gradient_image, monkeypatch, seconds, at_steps):
    photo = tmp_path / "photo.png"
    gradient_image.save(photo)
    monkeypatch.setattr(safety, "CHECKPOINT_SECONDS", seconds)
    saved = _recorded_checkpoints(monkeypatch)
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--quiet", "--max-size=64", "--octaves=2",
                     "--steps=2"]) == 0
    checkpoints = [m for m in saved if m["ended"] == "checkpoint"]
    assert all(m["checkpoint_write"] for m in checkpoints) and not saved[-1]["checkpoint_write"]  # fast, no fsync
    assert [m["steps_done"] for m in checkpoints] == at_steps
    assert saved[-1]["ended"] == "completed" and saved[-1]["steps_done"] == 4 and len(saved) == len(at_steps) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "photo.png"]  # no temporary file left


def _interrupt_at(monkeypatch, module, name, at_call):
    real = module.prepare

    def wrapping(params):
        prepared = real(params)
        fn = getattr(prepared, name)
        calls = []

        def wrapped(*args):
            calls.append(1)
            if len(calls) == at_call:
                raise KeyboardInterrupt  # what a kernel's interrupt button raises
            return fn(*args)

        setattr(prepared, name, wrapped)
        return prepared

    monkeypatch.setattr(module, "prepare", wrapping)


def test_an_interrupted_dream_returns_the_picture_it_had(gradient_image, monkeypatch):
    kw = {**TINY, "octaves": 1, "steps": 5}
    clean = [event.image() for event in dream_run(gradient_image, **kw)]
    _interrupt_at(monkeypatch, deepdream, "gradient", 3)
    with pytest.warns(events.Interrupted, match=r"^interrupted at step 2/5: returned the image of that step$"):
        out = nbart.dream(gradient_image, **kw)
    np.testing.assert_array_equal(np.asarray(out), clean[1])


def test_an_interrupted_style_transfer_returns_the_picture_it_had(monkeypatch):
    kw = {**TINY_STYLE, "optimizer": "adam", "steps": 4}
    clean = [event.image() for event in style_run("sample:grace_hopper", "sample:starry_night", **kw)]
    _interrupt_at(monkeypatch, styletransfer, "loss_and_gradient", 4)  # the 4th step's evaluation
    with pytest.warns(events.Interrupted, match=r"^interrupted at step 3/4: "):
        out = nbart.style_transfer("sample:grace_hopper", "sample:starry_night", **kw)
    np.testing.assert_array_equal(np.asarray(out), clean[2])


def test_interrupted_before_the_first_step_still_raises(gradient_image, monkeypatch):
    _interrupt_at(monkeypatch, deepdream, "gradient", 1)
    with pytest.raises(KeyboardInterrupt):
        nbart.dream(gradient_image, **TINY)


def test_dropped_octaves_are_noticed_and_recorded(tmp_path, monkeypatch, capsys):
    """The issue's case: 8 octaves of scale 2 on 257x131 at max_size 200; vgg16 (32 px) fits 2 of them."""
    image = Image.new("RGB", (257, 131), (90, 120, 200))
    kw = {**TINY, "max_size": 200, "octaves": 8, "octave_scale": 2.0, "steps": 1}
    run = dream_run(image, **kw)
    assert run.total == 2
    assert run.notices == ["running 2 of the 8 octaves asked: at 200x102 px with octave_scale 2, the others would "
                           "have a side under the 32 px vgg16 accepts; raise max_size or lower octave_scale for more"]
    list(run)
    meta = run.metadata()
    assert meta["params"]["octaves"] == 2 and meta["size"] == [200, 102]
    # asked: 8 octaves and the default layers (empty); ran: 2 octaves and those layers, named
    assert meta["requested"] == {"octaves": 8, "layers": []} and meta["params"]["layers"] == list(run.prepared.layers())
    again = dream_run(image, **meta["params"])  # what ran reproduces the pixels
    assert not again.notices
    np.testing.assert_array_equal(np.asarray(again.run()), np.asarray(run.image()))
    with pytest.warns(UserWarning, match="running 2 of the 8 octaves asked"):
        nbart.dream(image, **kw)

    photo, out = tmp_path / "in.png", tmp_path / "out.png"
    image.save(photo)
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--quiet", "--max-size=200", "--octaves=8",
                     "--octave-scale=2", "--steps=1"]) == 0
    assert "nbart: note: running 2 of the 8 octaves asked" in capsys.readouterr().err
    assert images.read_params(out)["requested"] == {"octaves": 8, "layers": []}


ZERO_STYLE = ["sample:grace_hopper", "sample:starry_night", "--style-weight=0", "--tv-weight=0", "--sizes=48",
              "--steps=10"]


def test_a_style_run_with_zero_loss_writes_the_content_image(tmp_path, capsys):
    """The issue's case (style and tv weights 0, content init: L-BFGS returns at once), on random weights."""
    out = tmp_path / "x.png"
    assert cli.main(["style", *ZERO_STYLE[:2], "-o", str(out), *FLAGS, "--quiet", *ZERO_STYLE[2:]]) == 0
    err = capsys.readouterr().err
    assert err.startswith("nbart: note: nothing to optimize at size 1/1 · 41x48: ")
    assert "the loss is 0 with a zero gradient at the start image, which is kept" in err
    start = style_run(*ZERO_STYLE[:2], **{**TINY_STYLE, "style_weight": 0.0, "tv_weight": 0.0}).start_image
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(start))
    meta = images.read_params(out)
    assert meta["ended"] == "completed" and meta["steps_done"] == 10


def test_zero_loss_keeps_the_start_image_in_the_api():
    kw = {**TINY_STYLE, "style_weight": 0.0, "tv_weight": 0.0}  # all weights 0 is refused by the params
    run = style_run(*ZERO_STYLE[:2], **kw)
    with pytest.warns(UserWarning, match="nothing to optimize at size 1/1"):
        out = nbart.style_transfer(*ZERO_STYLE[:2], **kw)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(run.start_image))


def test_a_dream_with_zero_activation_writes_the_image_with_a_notice(tmp_path, gradient_image, monkeypatch, capsys):
    """A layer whose activation is 0 everywhere (a dead ReLU layer): means and gradient 0, through the public seam."""
    import tensorflow as tf

    real = deepdream.prepare

    def dead(params):
        prepared = real(params)
        fn = prepared.gradient
        prepared.gradient = lambda *args: tuple(tf.zeros_like(t) for t in fn(*args))
        return prepared

    monkeypatch.setattr(deepdream, "prepare", dead)
    photo, out = tmp_path / "photo.png", tmp_path / "out.png"
    gradient_image.save(photo)
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--quiet", "--max-size=64", "--octaves=1",
                     "--steps=2"]) == 0
    assert capsys.readouterr().err == ("nbart: note: nothing to dream at 64x53: the layers' activation (0) has a zero "
                                       "gradient, so the image stays as it is; try other layers\n")
    start = dream_run(photo, **{**TINY, "octaves": 1}).start_image
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(start))
    assert images.read_params(out)["ended"] == "completed"


def _slow(fn, seconds, calls):
    def wrapped(*args):
        calls.append(1)
        time.sleep(seconds)
        return fn(*args)

    return wrapped


def test_a_tiled_step_reports_its_tiles_on_the_run(monkeypatch):
    seen = []
    real = deepdream.prepare
    run_box = []

    def wrapping(params):
        prepared = real(params)
        fn = prepared.gradient

        def wrapped(*args):
            seen.append(run_box[0].progress)
            return fn(*args)

        prepared.gradient = wrapped
        return prepared

    monkeypatch.setattr(deepdream, "prepare", wrapping)
    run = dream_run(Image.new("RGB", (256, 256), (90, 120, 200)), **{**TINY, "max_size": 256, "octaves": 1,
                                                                    "steps": 2, "tile_size": 128})
    run_box.append(run)
    assert run.progress is None
    next(run)
    assert run.progress is None  # an event ends the step: no parts of the next one are done yet
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]  # the 2x2 tiles, each call seeing the tiles done before it
    list(run)
    assert seen[4:] == seen[:4]


def test_the_cli_bar_shows_tiles_done_within_a_step(tmp_path, monkeypatch, capsys):
    calls = []
    real = deepdream.prepare

    def slowing(params):
        prepared = real(params)
        prepared.gradient = _slow(prepared.gradient, 0.4, calls)
        return prepared

    monkeypatch.setattr(deepdream, "prepare", slowing)
    photo, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.new("RGB", (256, 256), (90, 120, 200)).save(photo)
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=256", "--octaves=1", "--steps=1",
                     "--tile-size=128"]) == 0
    err = capsys.readouterr().err
    assert any(f"tile {i}/4" in err for i in (1, 2, 3)), err
