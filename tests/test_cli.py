import re
import subprocess
import sys

import pytest
from conftest import ROOT, TINY, error_line
from PIL import Image

from nbart import cli, events, images
from nbart.params import DreamParams, fields_of

TINY_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]


@pytest.fixture
def photo(tmp_path, gradient_image):
    path = tmp_path / "photo.jpg"
    gradient_image.save(path)
    return path


def test_flags_are_the_spec_fields():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["dream"]
    dests = {a.dest for a in sub._actions} - {"help", "input"} - set(cli.CLI_ONLY_FLAGS)
    assert dests == {f.name for f in fields_of(DreamParams)}


def test_models_lists_backbones_layers_and_weights(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "inception_v3" in out and "mixed0, mixed1" in out and "block5_conv4" in out
    assert "offline (HED VGG16, bundled)" in out


def test_dream_writes_the_image_with_its_parameters(photo, tmp_path, capsys):
    out, gif = tmp_path / "out.png", tmp_path / "run.gif"
    assert cli.main(["dream", str(photo), "-o", str(out), "--gif", str(gif), "--octaves=1", *TINY_FLAGS[:1],
                     "--weights=none", "--max-size=64", "--steps=3", "--seed=0", "--precision=float32"]) == 0
    meta = images.read_params(out)
    assert meta["task"] == "dream" and meta["params"]["steps"] == 3 and meta["steps_done"] == 3
    assert Image.open(out).size == (64, 53)
    with Image.open(gif) as g:
        assert g.n_frames == 3
    err = capsys.readouterr().err
    assert "dream" in err and "3/3" in err  # the tqdm bar went to stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps=0"], "steps must be >= 1 (got 0)"),
        (["--steps=x"], "argument --steps: must be an integer (got 'x')"),
        (["--octave-scale=nan"], "--octave-scale must be a finite number (got nan)"),
        (["--model=resnet"], "argument --model: invalid choice: 'resnet'"),
        (["--layers=block9_conv1"], "unknown layer 'block9_conv1' for vgg16; choose from block1_conv1..block5_conv3"),
        (["--weights=imagenet"], "ImageNet weights for vgg16 are not in"),
        (["--weights=missing.h5"], "weights must be auto, imagenet, offline, none or the path of a weights file"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_parameters_exit_2_with_one_line(photo, tmp_path, capsys, args, message):
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), "--model=vgg16", *args]) == 2
    assert message in error_line(capsys)
    assert not out.exists()


def test_bad_inputs_and_outputs_exit_2_with_one_line(photo, tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    cases = [
        (["dream", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png")], "no such file"),
        (["dream", str(text), "-o", str(tmp_path / "o.png")], "is not an image file"),
        (["dream", str(photo), "-o", str(photo)], "is the input"),
        (["dream", str(photo), "-o", str(tmp_path / "o.bmp")], "output must end in .png"),
        (["dream", str(photo), "-o", str(tmp_path / "missing" / "o.png")], "does not exist"),
        (["dream", str(photo), "-o", str(tmp_path / "o.png"), "--gif", str(tmp_path / "o.mp4")], "must end in .gif"),
        (["dream", str(photo)], "the following arguments are required: -o/--output"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        assert message in error_line(capsys), argv
    assert not (tmp_path / "o.png").exists()


def test_errors_say_where_they_looked_and_suggest_the_likely_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["dream", "grace_hopper", "-o", "o.png"]) == 2
    assert error_line(capsys).endswith(f"no such file: grace_hopper (looked in {tmp_path}); "
                                        "did you mean sample:grace_hopper?")
    assert cli.main(["dream", "sample:grace_hopper", "-o", "o.png", "--stepz", "3", "--octavs=2"]) == 2
    line = error_line(capsys)
    assert "unrecognized arguments: --stepz 3 --octavs=2" in line
    assert "did you mean --steps?" in line and "did you mean --octaves?" in line and "nbart dream --help" in line
    assert not (tmp_path / "o.png").exists()


def test_a_negative_value_is_judged_as_a_value_not_taken_for_a_flag(tmp_path, monkeypatch, capsys):
    """``--style-blend -1,1`` used to be "expected one argument": argparse reads "-1,1" as a flag."""
    monkeypatch.chdir(tmp_path)
    style = ["style", "sample:grace_hopper", "sample:starry_night", "sample:starry_night", "-o", "o.png"]
    for flag, value, message in [("--style-blend", "-1,1", "each of --style-blend must be >= 0 (got -1)"),
                                 ("--style-weight", "-1e3", "--style-weight must be >= 0 (got -1000)"),
                                 ("--tv-weight", "-.5", "--tv-weight must be >= 0 (got -0.5)")]:
        assert cli.main([*style, flag, value]) == 2, flag
        assert message in error_line(capsys), flag
    assert not (tmp_path / "o.png").exists()


def test_a_layer_of_the_offline_fallback_is_accepted_and_the_readmes_layer_example_runs(photo, tmp_path,
                                                                                        monkeypatch, capsys):
    monkeypatch.setenv("NBART_OFFLINE", "1")  # the default inception_v3 falls back to the offline VGG16
    out = tmp_path / "o.png"
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"`--layers (\S+)` dreams a single channel", readme).group(1)
    for layers in ("block4_conv3", example):
        assert cli.main(["dream", str(photo), "-o", str(out), "--max-size=80", "--steps=1", "--octaves=1",
                         "--quiet", "--seed=0", f"--layers={layers}"]) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert "don't exist" not in err and "unknown layer" not in err, err
        assert list(images.read_params(out)["params"]["layers"]) == [layers]


def _ctrl_c_at_step(monkeypatch, step: int) -> None:
    """Ctrl-C arrives while the run works on the step after ``step``."""
    real_next = events.Run.__next__

    def interrupted(self):
        if self.latest is not None and self.latest.step == step:
            raise KeyboardInterrupt
        return real_next(self)

    monkeypatch.setattr(events.Run, "__next__", interrupted)


def test_ctrl_c_writes_the_current_image_and_exits_130(photo, tmp_path, monkeypatch, capsys):
    _ctrl_c_at_step(monkeypatch, 2)
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), *TINY_FLAGS, "--steps=10"]) == 130
    assert images.read_params(out)["steps_done"] == 2
    assert "interrupted at step 2/20" in capsys.readouterr().err


def test_a_fault_mid_run_writes_the_last_good_image_and_one_line(photo, tmp_path, monkeypatch, capsys):
    """Issue 8: no traceback in the CLI, and a fault loses nothing: the last completed step is written, exit 1."""
    real_next = events.Run.__next__

    def failing(self):
        if self.latest is not None:
            raise RuntimeError("engine fault")
        return real_next(self)

    monkeypatch.setattr(events.Run, "__next__", failing)
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), *TINY_FLAGS, "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"nbart: error: the run failed at step 1/4 (RuntimeError: engine fault); wrote the last good "
                     f"image to {out}"]
    meta = images.read_params(out)
    assert meta["steps_done"] == 1 and meta["ended"] == "failed: RuntimeError: engine fault"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "photo.jpg"]  # no temporary file left


def test_a_fault_before_the_first_step_writes_nothing(photo, tmp_path, monkeypatch, capsys):
    def failing(self):
        raise MemoryError

    monkeypatch.setattr(events.Run, "__next__", failing)
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), *TINY_FLAGS, "--quiet"]) == 1
    assert error_line(capsys) == ("nbart: error: out of memory; try a smaller max_size (or tile_size) "
                                   "(set NBART_DEBUG=1 to see the traceback)")
    assert list(tmp_path.iterdir()) == [photo]
    monkeypatch.setenv("NBART_DEBUG", "1")  # developers can still have the traceback
    with pytest.raises(MemoryError):
        cli.main(["dream", str(photo), "-o", str(out), *TINY_FLAGS, "--quiet"])


def test_offline_notice_is_one_line_on_stderr(photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert cli.main(["dream", str(photo), "-o", str(out), "--octaves=1", "--steps=1", "--max-size=80",
                     "--precision=float32", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("nbart: note: ImageNet weights for inception_v3 are not cached") == 1


def test_python_dash_m_and_version():
    done = subprocess.run([sys.executable, "-m", "nbart", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("nbart ")


def test_help_texts_do_not_repeat_what_empty_means(capsys):
    for command in ("dream", "style"):
        assert cli.main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "defaults) (default: empty)" not in text and "(empty: equal) (default: empty)" not in text
        assert "(default: " in text  # the others still give theirs


def test_a_warning_during_the_run_gets_its_own_line_above_the_bar(photo, tmp_path, monkeypatch, capsys):
    import warnings

    real_next = events.Run.__next__

    def warns(self):
        if self.latest is not None and self.latest.step == 2:
            warnings.warn("something to know mid-run", RuntimeWarning, stacklevel=1)
        return real_next(self)

    monkeypatch.setattr(events.Run, "__next__", warns)
    assert cli.main(["dream", str(photo), "-o", str(tmp_path / "o.png"), *TINY_FLAGS, "--steps=4"]) == 0
    lines = [part.strip() for part in re.split(r"[\r\n]", capsys.readouterr().err)]
    assert "nbart: warning: something to know mid-run" in lines  # not glued to the bar's text


def test_a_video_output_from_a_still_or_unreadable_input_says_why(tmp_path, monkeypatch, capsys):
    """A CSV named fake.gif used to get only "output must end in .png, ..." as if the output name were the fault."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fake.gif").write_text("a,b\n1,2\n")
    assert cli.main(["fast-style", "fake.gif", "sample:starry_night", "-o", "o.gif"]) == 2
    assert error_line(capsys).endswith("(got 'o.gif'); a .gif or .mp4 output needs a video or an animated GIF as "
                                       "input, and 'fake.gif' is not one")


def test_an_interrupted_run_names_every_file_it_wrote(photo, tmp_path, monkeypatch, capsys):
    _ctrl_c_at_step(monkeypatch, 2)
    out, video = tmp_path / "out.png", tmp_path / "run.gif"
    assert cli.main(["dream", str(photo), "-o", str(out), *TINY_FLAGS, "--steps=10", "--video", str(video)]) == 130
    assert f"interrupted at step 2/20; wrote {out} and {video}" in capsys.readouterr().err
    assert out.exists() and video.exists()
