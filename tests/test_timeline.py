"""A run's timeline (nbart.timeline): bounded frames spread evenly over the run, and GIF/MP4 export (nbart.video)
written atomically and readable by imageio."""

import math
import os

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from nbart.errors import ImageError
from nbart.images import encode
from nbart.timeline import MAX_SIDE, Timeline, save_timeline
from nbart.video import VideoWriter, read_video, save_video, video_info


class FakeEvent:
    """A StepEvent's interface as the timeline uses it: a synthetic run with no network."""

    renders = 0

    def __init__(self, step, total, size=(600, 800)):
        self.step, self.total, self.stage, self.label = step, total, 0, "stage"
        self.loss, self.elapsed, self.size, self.done = -float(step), step * 0.01, size, step == total

    def preview(self, max_size, keep=True):
        FakeEvent.renders += 1
        h, w = self.size
        scale = min(1.0, max_size / max(h, w))
        value = self.step % 256
        return np.full((round(h * scale), round(w * scale), 3), value, np.uint8)


def feed(timeline, total):
    for step in range(1, total + 1):
        timeline.add(FakeEvent(step, total))
    timeline.finish(FakeEvent(total, total))


def test_bound_holds_and_frames_cover_the_whole_run():
    timeline = Timeline(max_frames=50)
    timeline.start(Image.new("RGB", (800, 600)))
    FakeEvent.renders = 0
    feed(timeline, 10_000)
    steps = timeline.steps()
    assert len(steps) <= 50
    assert steps[0] == 0 and steps[-1] == 10_000  # the start and the last step
    gaps = np.diff(steps[:-1])
    assert len(set(gaps)) == 1  # evenly spread: one stride between kept steps
    assert steps[-2] > 10_000 - gaps[0] - 1  # ... up to the end
    # only kept frames are rendered: max_frames, then about max_frames / 2 more per doubling of the run's length
    assert FakeEvent.renders <= 50 + 25 * math.ceil(math.log2(10_000 / 25)) + 2
    assert all(max(f.pil().size) <= MAX_SIDE for f in timeline.frames())


def test_short_run_keeps_every_step():
    timeline = Timeline(max_frames=50)
    feed(timeline, 7)
    assert timeline.steps() == list(range(1, 8))


def test_a_tiny_dream_run_keeps_its_frames():
    from nbart.deepdream import dream_run

    run = dream_run(Image.new("RGB", (64, 48), (90, 120, 200)), **TINY)
    run.run()
    frames = run.frames()
    assert [f.step for f in frames] == list(range(0, run.total + 1))
    assert frames[-1].size == (48, 64)
    assert frames[-1].jpeg == encode(np.asarray(run.image()), "jpeg", quality=80)  # the final image's own frame
    assert frames[0].jpeg == encode(run.start_image, "jpeg", quality=80)


def test_save_video_takes_a_runs_frames_as_they_come(tmp_path):
    from nbart.deepdream import dream_run

    run = dream_run(Image.new("RGB", (64, 48), (90, 120, 200)), **TINY)
    run.run()
    path = tmp_path / "run.gif"
    save_video(run.frames(), path, fps=5)  # the timeline's Frame objects, without .pil() by hand
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == len(run.frames()) and frames.shape[1:3] == (48, 64)
    with pytest.raises(ImageError, match=r"a video frame must be .* \(got object\)$"):
        save_video([object()], tmp_path / "bad.gif")


def test_a_run_may_keep_no_timeline():
    from nbart.deepdream import dream_run

    run = dream_run(Image.new("RGB", (64, 48)), **TINY)
    run.timeline = None
    run.run()
    assert run.frames() == []


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_export_is_readable_and_atomic(tmp_path, suffix):
    timeline = Timeline(max_frames=20)
    feed(timeline, 30)
    path = tmp_path / f"run{suffix}"
    n = save_timeline(timeline.frames(), path, fps=10, final=Image.new("RGB", (800, 600), (255, 0, 0)))
    assert n == len(timeline.frames())
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == n
    assert frames.shape[1:3] == (192, 256)
    assert abs(int(frames[-1][..., 0].mean()) - 255) < 12  # the final picture last
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")
    with pytest.raises(ImageError, match="no frames"):
        save_video([], path)
    assert path.read_bytes() == b"old"
    writer = VideoWriter(path)
    writer.add(np.zeros((10, 10, 3), np.uint8))
    writer.abort()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.mp4"]


def test_writer_closed_by_an_interrupt_keeps_the_frames_made(tmp_path):
    path = tmp_path / "out.gif"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, fps=5) as writer:
            for i in range(3):
                writer.add(np.full((9, 11, 3), i * 80, np.uint8))
            raise KeyboardInterrupt
    assert iio.imread(path, index=None).shape == (3, 9, 11, 3)


def test_mp4_odd_size_round_trip_streams(tmp_path):
    path = tmp_path / "odd.mp4"
    save_video((np.full((21, 33, 3), 40 * i, np.uint8) for i in range(5)), path, fps=5)
    info = video_info(path)
    assert info["frames"] == 5 and info["size"] == (34, 22) and math.isclose(info["fps"], 5)
    means = [float(f.mean()) for f in read_video(path)]
    assert len(means) == 5 and means == sorted(means)


def test_bad_video_paths_are_one_line(tmp_path):
    with pytest.raises(ImageError, match="must end in .mp4 or .gif"):
        VideoWriter(tmp_path / "x.avi")
    with pytest.raises(ImageError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "x.mp4")
    with pytest.raises(ImageError, match="no such file"):
        read_video(tmp_path / "none.mp4")


def test_cli_writes_the_timeline_as_video(tmp_path, capsys):
    from nbart import cli

    Image.new("RGB", (64, 48), (90, 120, 200)).save(tmp_path / "in.png")
    out, video = tmp_path / "out.png", tmp_path / "run.mp4"
    status = cli.main(["dream", str(tmp_path / "in.png"), "-o", str(out), "--video", str(video), "--quiet",
                       "--model", "vgg16", "--weights", "none", "--max-size", "64", "--octaves", "2", "--steps", "2",
                       "--seed", "0", "--precision", "float32"])
    assert status == 0, capsys.readouterr().err
    frames = iio.imread(video, index=None)
    assert frames.shape == (5, 48, 64, 3)  # the start and 4 steps
    assert sorted(os.listdir(tmp_path)) == ["in.png", "out.png", "run.mp4"]


def test_cli_refuses_a_bad_video_name_before_any_work(tmp_path, capsys):
    from conftest import error_line

    from nbart import cli

    assert cli.main(["dream", "sample:grace_hopper", "-o", str(tmp_path / "o.png"), "--video", "x.avi"]) == 2
    assert "--video must end in .mp4 or .gif" in error_line(capsys)


# ----------------------------------------------------------------------------------------------------------------
# the studio's timeline (nbart.studio.timeline)


def test_studio_slider_scrubs_marks_the_curve_and_use_this_frame_goes_on_from_its_pixels(monkeypatch, tmp_path):
    pytest.importorskip("ipywidgets")
    from nbart.studio import DreamStudio
    from nbart.studio import dream as studio_dream

    s = DreamStudio(Image.new("RGB", (64, 48), (90, 120, 200)), **{**TINY, "steps": 3})
    view = s.timeline_view
    assert view.layout.display == "none"  # nothing to scrub before a run
    s.start(block=True)
    entry = s.history[-1]
    frames = entry.timeline.frames
    assert [f.step for f in frames] == list(range(0, 7))
    assert view.layout.display is None and view.slider.max == 6 and view.slider.value == 6
    final = bytes(s.preview.value)
    view.slider.value = 2
    assert bytes(s.preview.value) == frames[2].jpeg and s.preview.format == "jpeg"
    assert bytes(s.preview.value) != final
    assert "step 2/6" in view.label.value and "nbart-curve-mark" in s.curve.value
    view.slider.value = 6  # the end: the result itself again
    assert bytes(s.preview.value) == final and view.use.disabled

    seen = []
    real = studio_dream.continue_run
    monkeypatch.setattr(studio_dream, "continue_run", lambda image, p, n: seen.append(image) or real(image, p, n))
    view.slider.value = 4
    assert not view.use.disabled
    s.more_steps.value = 2
    assert view.use_frame(block=True)
    assert np.array_equal(np.asarray(seen[-1]), np.asarray(frames[4].full_size()))  # that frame's pixels
    assert seen[-1].size == (64, 48)
    done = s.history[-1]
    assert done.continued and done.total == 2 and done.parent.steps_done == 4
    assert done.parent.metadata["from_timeline_frame"] == 4
    monkeypatch.chdir(tmp_path)  # code_text and save write the image given in code beside the notebook
    assert "if event.step == 4" in s.code_text()  # the frame's run, as a run stopped at that step
    view.export.value = ".mp4"
    s.save("pic.png")
    assert sorted(os.listdir(tmp_path)) == ["image.png", "pic-timeline.mp4", "pic.png"]
    assert iio.imread(tmp_path / "pic-timeline.mp4", index=None).shape[0] == len(done.timeline.frames)
    assert "video/mp4" in s.download.value


def test_a_failing_frame_encoder_ends_the_timeline_never_the_run(monkeypatch):
    import nbart.timeline as timeline_module
    from nbart.deepdream import dream_run

    def broken(*a, **k):
        raise OSError("encoder broke")

    monkeypatch.setattr(timeline_module, "encode", broken)
    run = dream_run(Image.new("RGB", (64, 48)), **TINY)
    run.run()
    assert run.completed and run.frames() == [] and "encoder broke" in str(run.timeline_error)
