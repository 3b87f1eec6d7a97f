"""Faults during a run (issue 8.3): non-finite numbers, failing consumers, stops at any moment, Ctrl-C, full disks
and read-only folders. Each keeps the last good image or fails in one line, and leaves no partial file."""

import errno
import os
import pathlib
import shutil
import tempfile
import threading
import time

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

import nbart
from nbart import cli, deepdream, events, images
from nbart.deepdream import dream_run

FLAGS = ["--model=vgg16", "--weights=none", "--seed=0", "--precision=float32", "--quiet"]


@pytest.fixture
def photo(tmp_path, gradient_image):
    path = tmp_path / "photo.png"
    gradient_image.save(path)
    return path


def _files(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _poison(monkeypatch, at_call: int, what: str) -> None:
    """Make the gradient (or the layer means, hence the loss) non-finite at the ``at_call``-th step."""
    real = deepdream.tiled_gradient
    calls = []

    def poisoned(fn, image, *args, **kwargs):
        calls.append(1)
        means, gradient = real(fn, image, *args, **kwargs)
        if len(calls) == at_call:
            if what == "gradient":
                gradient = gradient * np.float32(np.nan)
            else:
                means = means * np.inf
        return means, gradient

    monkeypatch.setattr(deepdream, "tiled_gradient", poisoned)


@pytest.mark.parametrize("what", ["gradient", "loss"])
def test_non_finite_stops_with_a_warning_and_returns_the_last_finite_image(gradient_image, monkeypatch, what):
    clean = [event.image() for event in dream_run(gradient_image, **{**TINY, "steps": 5})]
    _poison(monkeypatch, 3, what)
    with pytest.warns(UserWarning, match="stopped at step 3: the loss or gradient became non-finite; kept the last"):
        out = nbart.dream(gradient_image, **{**TINY, "steps": 5})
    np.testing.assert_array_equal(np.asarray(out), clean[1])  # step 2's image, exactly


def test_non_finite_in_the_cli_writes_the_last_finite_image_with_a_note(photo, tmp_path, monkeypatch, capsys):
    _poison(monkeypatch, 3, "gradient")
    out = tmp_path / "out.png"
    # 2 octaves: the 4 default ones don't fit 64 px (a notice says so, test_nothing_lost.py)
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=64", "--octaves=2", "--steps=5"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["nbart: note: stopped at step 3: the loss or gradient became non-finite; kept the last finite image",
                   f"nbart: stopped at step 2/10; wrote {out}"]
    meta = images.read_params(out)
    assert meta["steps_done"] == 2 and meta["ended"] == "failed"  # the engine's outcome: it did not complete


def test_an_exception_in_a_step_consumer_closes_the_run(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "steps": 5})
    seen = []

    def consumer(event):
        seen.append(event.image())
        if event.step == 2:
            raise ValueError("the preview widget broke")

    with pytest.raises(ValueError, match="the preview widget broke"):
        run.run(consumer)
    assert run.finished and run.stopped and run.error is None  # the consumer failed, not the engine
    assert run.released  # the engine's generator is closed: nothing runs or holds tensors
    assert list(run) == []
    np.testing.assert_array_equal(np.asarray(run.image()), seen[-1])  # the last good image stays available

    loop = dream_run(gradient_image, **{**TINY, "steps": 5})
    with pytest.raises(KeyError), loop:  # a plain for loop that raises, in a with block
        for _ in loop:
            raise KeyError("consumer bug")
    assert loop.released and loop.latest.step == 1


def test_an_engine_error_is_recorded_on_the_run(gradient_image, monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(deepdream, "tiled_gradient", broken)
    run = dream_run(gradient_image, **TINY)
    with pytest.raises(MemoryError):
        run.run()
    assert isinstance(run.error, MemoryError) and run.finished
    assert events.error_message(run.error) == "out of memory; try a smaller max_size (or tile_size)"
    assert run.image().size == run.start_image.size  # before any step: the prepared input


def _wrap_prepared(monkeypatch, name: str, wrap) -> None:
    """Every dream prepared from now on has its traced ``name`` ("means" or "gradient") replaced by ``wrap(fn)``:
    the public seam a fault is injected at."""
    real = deepdream.prepare

    def wrapping(params):
        prepared = real(params)
        setattr(prepared, name, wrap(getattr(prepared, name)))
        return prepared

    monkeypatch.setattr(deepdream, "prepare", wrapping)


def _slow_tiles(monkeypatch, in_step: threading.Event, calls: list) -> None:
    def slow(fn):
        def wrapped(*args):
            calls.append(1)
            in_step.set()
            time.sleep(0.05)
            return fn(*args)

        return wrapped

    _wrap_prepared(monkeypatch, "gradient", slow)


def test_close_from_another_thread_mid_step_ends_within_that_step(monkeypatch):
    """A studio's Stop (or a second click) closes the run from the UI thread while the worker is inside a step."""
    in_step, calls = threading.Event(), []
    _slow_tiles(monkeypatch, in_step, calls)
    run = dream_run(Image.new("RGB", (300, 300), (90, 120, 200)),
                    **{**TINY, "max_size": 300, "tile_size": 128, "steps": 50, "octaves": 1})
    steps, errors = [], []

    def consume():
        try:
            for event in run:
                steps.append(event.step)
        except Exception as e:  # noqa: BLE001 (the test reports it)
            errors.append(e)

    worker = threading.Thread(target=consume)
    worker.start()
    assert in_step.wait(60)
    with pytest.raises(RuntimeError, match="already being iterated in another thread"):
        next(run)  # a second consumer is refused clearly, not with "generator already executing"
    before = len(calls)
    run.close()  # from this thread, mid-step: must not raise
    worker.join(30)
    assert not worker.is_alive() and errors == []
    assert len(calls) <= before + 1  # at most the tile that was starting: the step ended at the next tile
    assert len(steps) < 50 and run.finished and run.released


def test_stop_between_octaves_keeps_the_octaves_last_image(gradient_image):
    run = dream_run(gradient_image, **{**TINY, "octaves": 3, "octave_scale": 1.2, "steps": 2})
    seen = []
    for event in run:
        seen.append(event)
        if event.step == 2:  # the last step of the first octave
            run.stop()
    assert [e.step for e in seen] == [1, 2] and seen[-1].stage == 0 and run.total == 6
    assert run.image().size == run.start_image.size  # composited back to the output size
    np.testing.assert_array_equal(np.asarray(run.image()), seen[-1].image())


def test_stop_during_the_first_tiled_forward_pass(monkeypatch):
    """The first step's layer means of a big image run tile by tile too (bounded memory), and stop between tiles."""
    run = dream_run(Image.new("RGB", (300, 300), (90, 120, 200)), **{**TINY, "max_size": 300, "tile_size": 128})
    calls = []
    means = run.prepared.means

    def wrapped(image):
        calls.append(tuple(image.shape))
        if len(calls) == 2:
            run.stop()
        return means(image)

    run.prepared.means = wrapped
    assert list(run) == []
    assert calls == [(107, 107, 3), (107, 107, 3)]  # tiles of the 214 px first octave, never the whole image


def test_tiles_are_never_smaller_than_the_backbone_accepts():
    """A 129 px image with 128 px tiles would split into 64 px tiles, too small for InceptionV3's deep layers (75 px
    minimum): the run failed in TensorFlow before."""
    assert deepdream.tiles(129, 128, 75) == [(0, 129)]
    assert deepdream.tiles(300, 128, 75) == [(0, 100), (100, 200), (200, 300)]
    assert deepdream.tiles(300, 128, 120) == [(0, 150), (150, 300)]
    run = dream_run(Image.new("RGB", (140, 129), (90, 120, 200)), model="inception_v3", weights="none",
                    max_size=140, tile_size=128, octaves=1, steps=1, precision="float32", layers=("mixed10",))
    assert len(list(run)) == 1 and np.isfinite(run.latest.loss)


def test_ctrl_c_inside_a_tiled_step_writes_the_last_image(tmp_path, monkeypatch, capsys):
    photo = tmp_path / "big.png"
    Image.new("RGB", (300, 300), (90, 120, 200)).save(photo)
    calls = []

    def interrupting(fn):
        def wrapped(*args):
            calls.append(1)
            if len(calls) == 9 + 2:  # the second tile of step 2 (a step is 3x3 tiles)
                raise KeyboardInterrupt
            return fn(*args)

        return wrapped

    _wrap_prepared(monkeypatch, "gradient", interrupting)
    out = tmp_path / "out.png"
    argv = ["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=300", "--tile-size=128", "--octaves=1",
            "--steps=3"]
    assert cli.main(argv) == 130
    assert capsys.readouterr().err.splitlines() == [f"nbart: interrupted at step 1/3; wrote {out}"]
    meta = images.read_params(out)
    assert meta["steps_done"] == 1 and meta["ended"] == "interrupted"
    assert Image.open(out).size == (300, 300)


def test_ctrl_c_before_the_first_step_and_again_while_saving(photo, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.png"

    def interrupted(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(events.Run, "__next__", interrupted)
        assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=64", "--octaves=2"]) == 130
    assert capsys.readouterr().err.splitlines() == ["nbart: interrupted before the first step; nothing written"]
    assert _files(tmp_path) == ["photo.png"]

    real_next = events.Run.__next__

    def interrupt_at_2(self):
        if self.latest is not None and self.latest.step == 2:
            raise KeyboardInterrupt
        return real_next(self)

    def impatient_save(self, fp, *args, **kwargs):  # a second Ctrl-C while the file is half written
        fp.write(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(events.Run, "__next__", interrupt_at_2)
    monkeypatch.setattr(Image.Image, "save", impatient_save)
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=64", "--octaves=2"]) == 130
    assert capsys.readouterr().err.splitlines() == ["nbart: interrupted"]
    assert _files(tmp_path) == ["photo.png"]  # no partial output, no temporary file


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_fails_in_one_line_and_keeps_the_old_file(photo, tmp_path, monkeypatch, capsys, where):
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous result")

    def full(*args, **kwargs):
        if where == "write":
            args[1].write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full) if where == "fsync" else monkeypatch.setattr(Image.Image, "save", full)
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=64", "--steps=1", "--octaves=1"]) == 1
    assert capsys.readouterr().err.splitlines() == [f"nbart: error: can't write {out}: No space left on device"]
    assert out.read_bytes() == b"the previous result"
    assert _files(tmp_path) == ["out.png", "photo.png"]


def test_read_only_file_system_fails_in_one_line(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(images.ImageError) as info:
        images.save_image(Image.new("RGB", (4, 4)), tmp_path / "out.png")
    assert str(info.value) == f"can't write {tmp_path / 'out.png'}: Read-only file system"
    assert _files(tmp_path) == []


def _in_a_child_as_nobody(task):
    """Run ``task()`` in a forked child process as user 'nobody' and return its JSON-able result.

    As root, chmod does not stop writes, so a read-only folder is only read-only to another user. (The test
    interpreter lives under /root, so a fresh 'nobody' process couldn't start it: fork keeps it loaded.)
    """
    import json

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            result = task()
        except BaseException as e:  # noqa: BLE001 (reported to the parent)
            result = {"child error": repr(e)}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_read_only_folder_fails_before_the_run_and_on_write(monkeypatch):
    import contextlib
    import io

    base = tempfile.mkdtemp(prefix="nbart-ro-")
    folder = os.path.join(base, "ro")
    out = os.path.join(folder, "out.png")
    try:
        os.chmod(base, 0o755)
        os.mkdir(folder)
        os.chmod(folder, 0o555)

        def task():
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                status = cli.main(["dream", "sample:starry_night", "-o", out, "--quiet"])
            images.save.folder_problem = lambda path: None  # skip the early check: the write itself must fail cleanly
            try:
                images.save_image(Image.new("RGB", (4, 4)), out)
                saved = "saved"
            except images.ImageError as e:
                saved = str(e)
            return {"status": status, "stderr": err.getvalue(), "saved": saved, "files": os.listdir(folder),
                    "uid": os.geteuid()}

        result = _in_a_child_as_nobody(task)
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(base)
    assert result == {"status": 2, "stderr": f"nbart: error: can't write {out}: folder {folder} is not writable\n",
                      "saved": f"can't write {out}: Permission denied", "files": [], "uid": result["uid"]}
    assert result["uid"] != 0


def test_library_warnings_are_one_line_in_the_cli(photo, tmp_path, monkeypatch, capsys):
    import warnings

    real = deepdream.tiled_gradient

    def chatty(*args, **kwargs):
        warnings.warn("a library's warning\nspread over\nthree lines", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(deepdream, "tiled_gradient", chatty)
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), *FLAGS, "--max-size=64", "--steps=1", "--octaves=1"]) == 0
    assert capsys.readouterr().err.splitlines() == ["nbart: warning: a library's warning spread over three lines"]
