"""The CLI's instant style: ``nbart fast-style``, ``nbart style-sheet`` and ``nbart style --init fast``."""

import numpy as np
import pytest
from conftest import TINY_STYLE, error_line
from PIL import Image

from nbart import cli, fast, images
from nbart.params import FastStyleParams, fields_of

TINY_STYLE_FLAGS = [f"--{k.replace('_', '-')}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                    for k, v in TINY_STYLE.items()]


@pytest.fixture
def photo(tmp_path, gradient_image):
    path = tmp_path / "photo.png"
    gradient_image.resize((150, 100)).save(path)
    return path


def test_fast_style_flags_are_the_spec_fields():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["fast-style"]
    dests = {a.dest for a in sub._actions} - {"help", "content", "style"} - set(cli.CLI_ONLY_FLAGS)
    assert dests == {f.name for f in fields_of(FastStyleParams)}


def test_fast_style_writes_the_picture_with_its_parameters(photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    argv = ["fast-style", str(photo), "sample:starry_night", "sample:the_scream", "-o", str(out),
            "--strength=0.8", "--style-size=192", "--style-blend=1,3"]
    assert cli.main(argv) == 0
    meta = images.read_params(out)
    # the engine's task name (the studio writes the same), not the CLI command's
    assert meta["task"] == "fast_style" and meta["steps_done"] == 1 and meta["ended"] == "completed"
    assert meta["params"]["strength"] == 0.8 and meta["params"]["style_blend"] == [1.0, 3.0]
    written = Image.open(out)
    assert written.size == (150, 100)
    expected = fast.fast_style(photo, ["sample:starry_night", "sample:the_scream"], strength=0.8, style_size=192,
                               style_blend=(1, 3))
    assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(expected))  # PNG: lossless, same pixels
    err = capsys.readouterr().err
    assert "loss=nan" not in err and "wrote" in err


@pytest.mark.parametrize("args, message", [
    (["--strength=2"], "strength must be <= 1 (got 2)"),
    (["--strength=x"], "argument --strength: must be a number (got 'x')"),
    (["--style-size=10"], "--style-size must be >= 64 (got 10)"),
    (["--style-blend=1,2"], "--style-blend needs one weight per style image (1) (got 2)"),
    (["--steps=3"], "unrecognized arguments: --steps=3"),
])
def test_fast_style_bad_parameters_exit_2_with_one_line(photo, tmp_path, capsys, args, message):
    argv = ["fast-style", str(photo), "sample:starry_night", "-o", str(tmp_path / "o.png"), *args]
    assert cli.main(argv) == 2
    assert message in error_line(capsys)


def test_fast_style_bad_inputs_exit_2_with_one_line(photo, tmp_path, capsys):
    assert cli.main(["fast-style", str(photo), str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o.png")]) == 2
    assert "missing.jpg" in error_line(capsys)
    assert cli.main(["fast-style", str(photo), "sample:starry_night", "-o", str(tmp_path / "o.gif2")]) == 2
    assert "output must end in" in error_line(capsys)


def test_fast_style_bad_weights_file_exits_2_with_one_line(photo, tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    models.mkdir()
    (models / fast.PREDICT_FILE).write_bytes(b"not onnx")
    monkeypatch.setattr(fast, "_models_dir", lambda: models)
    fast._networks.cache_clear()
    try:
        assert cli.main(["fast-style", str(photo), "sample:starry_night", "-o", str(tmp_path / "o.png"),
                         "--quiet"]) == 2
    finally:
        fast._networks.cache_clear()
    line = error_line(capsys)
    assert fast.PREDICT_FILE in line and "reinstall" in line


def test_style_sheet_writes_one_labelled_sheet(photo, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert cli.main(["style-sheet", str(photo), str(photo), "-o", str(out), "--tile=96", "--columns=2",
                     "--strength=0.9"]) == 0
    paintings = list(images.painting_names())
    rows = -(-(2 + len(paintings)) // 2)
    assert Image.open(out).size == (2 * (96 + 6) + 6, rows * (64 + 16 + 6) + 6)
    meta = images.read_params(out)  # enough to make the sheet again, and to tell its tiles apart
    assert meta["params"] == {"strength": 0.9, "style_size": 256, "preserve_colors": False}
    assert (meta["tile"], meta["columns"], meta["inputs"]) == (96, 2, [str(photo), str(photo)])
    assert meta["labels"] == ["content", *paintings, photo.stem]
    assert "wrote" in capsys.readouterr().err
    assert cli.main(["style-sheet", str(photo), "-o", str(out), "--tile=8"]) == 2
    assert "tile must be an integer from 64 to 1024 px (got 8)" in error_line(capsys)


def test_style_init_fast_runs(photo, tmp_path):
    out = tmp_path / "out.png"
    assert cli.main(["style", str(photo), "sample:starry_night", "-o", str(out), "--init=fast", "--quiet",
                     *TINY_STYLE_FLAGS]) == 0
    meta = images.read_params(out)
    assert meta["params"]["init"] == "fast" and meta["steps_done"] == TINY_STYLE["steps"]


def test_style_init_rejects_unknown_starts(photo, tmp_path, capsys):
    assert cli.main(["style", str(photo), "sample:starry_night", "-o", str(tmp_path / "o.png"),
                     "--init=fastest"]) == 2
    assert "fast" in error_line(capsys)
