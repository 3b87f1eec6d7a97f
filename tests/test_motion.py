"""Zoom animations (nbart.zoom, `nbart zoom`) and videos painted frame by frame (nbart.videostyle, `nbart style
VIDEO`), with tiny random-weight backbones: frames, stopping, files written atomically when stopped."""

import os

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import error_line
from PIL import Image

import nbart
from nbart import cli, deepdream
from nbart.errors import ImageError
from nbart.events import Outcome
from nbart.video import save_video
from nbart.zoom import dream_zoom_run, zoom_frame

TINY_ZOOM = dict(model="vgg16", weights="none", max_size=64, steps=2, seed=0, precision="float32")
ZOOM_FLAGS = ["--model", "vgg16", "--weights", "none", "--max-size", "64", "--steps", "2", "--seed", "0",
              "--precision", "float32"]


def noise(w=64, h=48, seed=0):
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))


def test_zoom_frame_scales_about_the_centre_and_turns():
    a = np.zeros((41, 41, 3), np.float32)
    a[18:23, 18:23] = 1.0  # a 5x5 square at the centre
    assert np.array_equal(zoom_frame(a, 1.0, 0.0), a)
    assert zoom_frame(a, 2.0, 0.0)[..., 0].sum() == pytest.approx(4 * 25, rel=0.15)  # twice the side
    b = np.zeros((41, 41, 3), np.float32)
    b[5:10, 20] = 1.0  # above the centre
    turned = zoom_frame(b, 1.0, 90.0)
    rows, cols = np.nonzero(turned[..., 0] > 0.5)
    assert cols.mean() < 15 and abs(rows.mean() - 20) < 1  # counter-clockwise: now left of the centre


def test_zoom_run_gives_frames_each_dreamed_on_the_last_zoomed(monkeypatch):
    seen = []
    real = deepdream.dream_run
    monkeypatch.setattr(deepdream, "dream_run", lambda image, p: seen.append((image, p)) or real(image, p))
    run = dream_zoom_run(noise(), frames=3, zoom=1.2, **TINY_ZOOM)
    events = list(run)
    assert [e.step for e in events] == [1, 2, 3] and events[-1].done and run.outcome == Outcome.COMPLETED
    assert [p.seed for _, p in seen] == [0, 1, 2] and all(p.steps == 2 and p.octaves == 1 for _, p in seen)
    # frame 2 dreams on frame 1 zoomed
    zoomed = zoom_frame(events[0].image().astype(np.float32) / 255, 1.2, 0.0)
    assert np.abs(np.asarray(seen[1][0], np.float32) / 255 - zoomed).max() <= 1 / 255 + 1e-6
    assert run.metadata()["params"]["zoom"] == 1.2 and run.metadata()["task"] == "zoom"
    assert [f.step for f in run.frames()] == [0, 1, 2, 3]  # the run's timeline


def test_zoom_stops_between_frames_and_keeps_them():
    run = dream_zoom_run(noise(), frames=5, **TINY_ZOOM)
    for event in run:
        if event.step == 2:
            run.stop()
    assert run.outcome == Outcome.STOPPED and run.latest.step == 2


def test_dream_zoom_is_an_iterator_of_pictures_and_takes_steps_per_frame():
    frames = list(nbart.dream_zoom(noise(), frames=2, steps_per_frame=1, **{**TINY_ZOOM, "steps": 3}))
    assert len(frames) == 2 and frames[0].size == (64, 48)
    with pytest.raises(nbart.ParamError, match="zoom"):
        nbart.dream_zoom_run(noise(), zoom=5.0, **TINY_ZOOM)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_cli_zoom_writes_the_animation(tmp_path, suffix, capsys):
    noise().save(tmp_path / "in.png")
    out = tmp_path / f"zoom{suffix}"
    assert cli.main(["zoom", str(tmp_path / "in.png"), "-o", str(out), "--frames", "3", "--fps", "6",
                     *ZOOM_FLAGS]) == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().err
    assert iio.imread(out, index=None).shape[:3] == (3, 48, 64)
    assert sorted(os.listdir(tmp_path)) == ["in.png", out.name]


def test_cli_zoom_interrupted_writes_the_frames_made(tmp_path, monkeypatch, capsys):
    calls = []
    real = deepdream.dream_run

    def third_interrupts(image, p):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(image, p)

    monkeypatch.setattr(deepdream, "dream_run", third_interrupts)
    noise().save(tmp_path / "in.png")
    out = tmp_path / "zoom.mp4"
    assert cli.main(["zoom", str(tmp_path / "in.png"), "-o", str(out), "--frames", "6", *ZOOM_FLAGS]) == 130
    assert "interrupted after 2 frames; wrote" in capsys.readouterr().err
    assert iio.imread(out, index=None).shape[0] == 2
    assert sorted(os.listdir(tmp_path)) == ["in.png", "zoom.mp4"]


def test_cli_zoom_refuses_a_bad_output_before_any_work(tmp_path, capsys):
    assert cli.main(["zoom", "sample:grace_hopper", "-o", str(tmp_path / "z.png")]) == 2
    assert "output must end in .mp4 or .gif" in error_line(capsys)


def clip(path, frames=4, size=(64, 48)):
    w, h = size
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    save_video([(np.broadcast_to(np.concatenate([(x + i / frames) % 1, x * 0 + 0.5, 1 - x], -1), (h, w, 3))
                 * 255).astype(np.uint8) for i in range(frames)], path, fps=8)


def test_cli_fast_style_paints_every_frame_of_a_video(tmp_path, capsys):
    clip(tmp_path / "in.mp4", size=(96, 64))  # the fast network's smallest side: no upscale
    noise(seed=1).save(tmp_path / "style.png")
    out = tmp_path / "out.mp4"
    assert cli.main(["fast-style", str(tmp_path / "in.mp4"), str(tmp_path / "style.png"), "-o", str(out),
                     "--quiet"]) == 0, capsys.readouterr().err
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 4
    source = iio.imread(tmp_path / "in.mp4", index=None)
    assert np.abs(frames.astype(np.float32) - source.astype(np.float32)).mean() > 5  # painted, not copied


def test_cli_style_optimizes_each_frame_from_the_previous_result(tmp_path, monkeypatch, capsys):
    from nbart import styletransfer

    seen = []
    real = styletransfer.style_run
    monkeypatch.setattr(styletransfer, "style_run",
                        lambda *a, **k: seen.append(k.get("init_image")) or real(*a, **k))
    clip(tmp_path / "in.gif", frames=3)
    noise(seed=1).save(tmp_path / "style.png")
    out = tmp_path / "out.gif"
    assert cli.main(["style", str(tmp_path / "in.gif"), str(tmp_path / "style.png"), "-o", str(out), "--quiet",
                     "--model", "vgg16", "--weights", "none", "--sizes", "48", "--steps", "2", "--seed", "0",
                     "--precision", "float32"]) == 0, capsys.readouterr().err
    assert iio.imread(out, index=None).shape[0] == 3
    assert seen[0] is None and all(isinstance(s, Image.Image) for s in seen[1:]) and len(seen) == 3


def test_cli_style_video_needs_a_video_output(tmp_path, capsys):
    clip(tmp_path / "in.mp4")
    assert cli.main(["fast-style", str(tmp_path / "in.mp4"), "sample:grace_hopper", "-o",
                     str(tmp_path / "out.png")]) == 2
    assert "output must end in .mp4 or .gif" in error_line(capsys)


def test_dream_studio_animate_renders_the_zoom_live_and_shows_its_code(tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    from nbart.studio import DreamStudio

    s = DreamStudio(noise(), **{**TINY_ZOOM, "octaves": 2})
    shown = []
    s.preview.observe(lambda c: shown.append(bytes(c["new"])), names="value")
    s.animate.enabled.value = True
    s.animate.sliders["frames"].value = 3
    s.animate.sliders["steps"].value = 1
    s.animate.sliders["zoom"].value = 1.1
    s.start(block=True)
    entry = s.history[-1]
    assert entry.task == "zoom" and entry.steps_done == 3 and entry.ran.zoom == 1.1 and entry.ran.octaves == 1
    assert len(shown) >= 3  # the frames, live (and the result)
    assert [f.step for f in entry.timeline.frames] == [0, 1, 2, 3]
    monkeypatch.chdir(tmp_path)
    code = s.code_text()
    assert "frames = list(nbart.dream_zoom(" in code and "frames=3" in code and "zoom=1.1" in code
    assert "nbart.save_video(frames, 'zoom.mp4'" in code
    namespace = {}
    exec(code, namespace)  # the code makes the same last frame
    assert np.array_equal(np.asarray(namespace["result"]), np.asarray(s.result))


def test_a_file_ffmpeg_cannot_read_is_one_short_line_without_ffmpegs_banner(tmp_path):
    from nbart import video

    fake = tmp_path / "fake.mp4"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(ImageError) as caught:
        video.video_info(fake)
    message = str(caught.value)
    assert message.startswith(f"can't read {fake} as a video: ") and "ffmpeg version" not in message
    assert "=== stderr" not in message and "\n" not in message
