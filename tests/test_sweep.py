"""Sweeps (nbart.sweep, ``nbart sweep``): every combination, a labelled sheet, parameters that reproduce each
picture, values checked through the spec with one-line errors, a cap, a stop. Tiny random-weight VGG16."""

import json

import numpy as np
import pytest
from conftest import TINY, TINY_STYLE, error_line
from PIL import Image

import nbart
from nbart import cli, sweeps
from nbart.sheets import Sheet

DREAM = {**{k: v for k, v in TINY.items() if k not in ("max_size", "seed")}, "octaves": 1}


def test_a_dream_sweep_renders_every_combination_on_one_sheet(gradient_image):
    sheet = nbart.sweep("dream", gradient_image, over={"step_size": [0.01, 0.05], "jitter": [0, 4]}, size=48,
                        **DREAM)
    assert isinstance(sheet, Sheet) and isinstance(sheet.image, Image.Image)
    assert [r.values for r in sheet.results] == [{"step_size": 0.01, "jitter": 0}, {"step_size": 0.01, "jitter": 4},
                                                 {"step_size": 0.05, "jitter": 0}, {"step_size": 0.05, "jitter": 4}]
    assert [r.label for r in sheet.results][1] == "step_size=0.01, jitter=4"
    pictures = [np.asarray(r.image) for r in sheet.results]
    assert all(p.shape == (40, 48, 3) for p in pictures)
    assert len({p.tobytes() for p in pictures}) == 4  # each combination its own picture
    for r in sheet.results:  # the same seed and size everywhere; the swept values as asked
        assert r.outcome == "completed" and r.params["seed"] == 0 and r.params["max_size"] == 48
        assert (r.params["step_size"], r.params["jitter"]) == (r.values["step_size"], r.values["jitter"])
    # two columns (jitter's values), two rows (step_size's): the sheet is wider than one tile, about square
    assert 2 * 48 < sheet.image.width < 3 * 48 + 40 and 2 * 40 < sheet.image.height
    again = nbart.dream(gradient_image, **sheet.results[3].params)  # what ran reproduces the picture
    assert np.array_equal(np.asarray(again), pictures[3])


def test_values_are_coerced_and_checked_by_the_spec_one_line_each(gradient_image):
    unswept = {k: v for k, v in DREAM.items() if k != "steps"}
    s = nbart.sweep_run("dream", gradient_image, over={"steps": [1.0, 2], "layers": ["block1_conv1",
                                                                                     ("block2_conv1", "block3_conv1")]},
                        **unswept)
    assert s.over == {"steps": (1, 2), "layers": (("block1_conv1",), ("block2_conv1", "block3_conv1"))}
    cases = [
        (dict(over={"step_size": [0.01, -1]}), "step_size must be > 0 (got -1)"),
        (dict(over={"stepsize": [1]}), "unknown parameter 'stepsize' for DreamParams; choose from model, weights"),
        (dict(over={"steps": []}), "over['steps'] has no values"),
        (dict(over={"steps": 3}), "over['steps'] must be a list of values (got 3)"),
        (dict(over={"steps": [1, 1]}), "over['steps'] repeats a value"),
        (dict(over={"layers": ["mixed3"]}), "unknown layer 'mixed3' for vgg16"),
        (dict(over={"layer_weights": [(1.0,), (1.0, 2.0)]}, layers=("block1_conv1",)),
         "layer_weights needs one weight per layer (1) (got 2) (in the combination layer_weights=1+2)"),
        (dict(over={"steps": list(range(1, 7)), "seed": list(range(7))}),
         "a sweep renders at most 36 combinations (asked for 6 x 7 = 42); sweep fewer values"),
        (dict(over={"steps": [1, 2]}, steps=3), "steps is both swept and fixed"),
        (dict(over={"steps": [1]}, size=64, max_size=64), "give size or max_size, not both"),
    ]
    for kwargs, message in cases:
        args = {**unswept, **kwargs}
        with pytest.raises(nbart.ParamError) as e:
            nbart.sweep_run("dream", gradient_image, **args)
        assert message in str(e.value) and "\n" not in str(e.value), (kwargs, str(e.value))
    with pytest.raises(nbart.ParamError, match="a dream sweep takes one image"):
        nbart.sweep_run("dream", gradient_image, gradient_image, over={"steps": [1]})
    with pytest.raises(nbart.ParamError, match="sweep task must be one of dream, style"):
        nbart.sweep_run("zoom", gradient_image, over={"steps": [1]})


def test_a_stopped_sweep_keeps_what_finished_and_its_sheet_shows_the_rest_grey(gradient_image):
    s = nbart.sweep_run("dream", gradient_image, over={"seed": [1, 2, 3]}, size=48, **DREAM)
    it = iter(s)
    first = next(it)
    s.stop()
    assert list(it) == [] and s.results == [first] and first.values == {"seed": 1}
    grey = np.all(np.asarray(s.sheet().image) == 220, axis=-1).sum()
    assert grey >= 2 * 48 * 40


def test_a_style_sweep(gradient_image):
    style = gradient_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    args = {k: v for k, v in TINY_STYLE.items() if k != "seed"}
    sheet = nbart.sweep("style", gradient_image, style, over={"style_weight": [1.0, 100.0]}, **args)
    assert [r.values["style_weight"] for r in sheet.results] == [1.0, 100.0]
    assert all(r.outcome == "completed" and r.params["sizes"] == [48] for r in sheet.results)
    a, b = (np.asarray(r.image, np.float32) for r in sheet.results)
    assert np.abs(a - b).mean() > 0.5  # the style weight changed the picture


def test_cli_sweep_writes_the_sheet_with_every_result_s_parameters(gradient_image, tmp_path, capsys):
    src, out = tmp_path / "in.png", tmp_path / "sheet.png"
    gradient_image.save(src)
    status = cli.main(["sweep", "dream", str(src), "--over", "step_size=0.01,0.02", "--over", "seed=1,2",
                       "-o", str(out), "--size", "48", "--model", "vgg16", "--weights", "none", "--octaves", "1",
                       "--steps", "1", "--precision", "float32", "--quiet"])
    assert status == 0, capsys.readouterr().err
    meta = json.loads(Image.open(out).text["nbart"])
    assert meta["task"] == "sweep dream" and meta["over"] == {"step_size": ["0.01", "0.02"], "seed": ["1", "2"]}
    assert [r["values"] for r in meta["results"]][1] == {"step_size": "0.01", "seed": "2"}
    assert meta["results"][3]["params"]["seed"] == 2 and meta["inputs"] == [str(src)]
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("over, message", [
    ("step_size=0.01,abc", "step_size: 'abc' is not a number"),
    ("step_size=0,0.1", "step_size must be > 0 (got 0)"),
    ("stepz=1", "unknown parameter 'stepz' for DreamParams"),
    ("steps", "--over takes NAME=V1,V2,... (got 'steps')"),
    ("steps=1,2,3,4,5,6,7", None),
])
def test_cli_sweep_refuses_bad_values_in_one_line(gradient_image, tmp_path, capsys, over, message):
    src = tmp_path / "in.png"
    gradient_image.save(src)
    argv = ["sweep", "dream", str(src), "--over", over, "-o", str(tmp_path / "s.png"), "--model", "vgg16",
            "--weights", "none"]
    if message is None:  # too many combinations
        argv += ["--over", "seed=1,2,3,4,5,6"]
        message = "a sweep renders at most 36 combinations (asked for 7 x 6 = 42)"
    assert cli.main(argv) == 2
    line = error_line(capsys)
    assert message in line, line
    assert not (tmp_path / "s.png").exists()


def test_values_from_text_in_the_field_s_kind():
    assert sweeps.values_from_text("dream", "step_size", "0.01, 0.02") == [0.01, 0.02]
    assert sweeps.values_from_text("dream", "layers", "mixed3+mixed5,block1_conv1") == [("mixed3", "mixed5"),
                                                                                         ("block1_conv1",)]
    assert sweeps.values_from_text("dream", "seed", "none, 3") == [None, 3]
    assert sweeps.values_from_text("style", "preserve_colors", "yes,off") == [True, False]
    assert sweeps.values_from_text("style", "optimizer", "adam") == ["adam"]
    for task, name, text, message in [("dream", "steps", "1.5", "steps: '1.5' is not an integer"),
                                      ("style", "optimizer", "sgd", "optimizer must be one of lbfgs, adam"),
                                      ("dream", "steps", " , ", "steps: no values")]:
        with pytest.raises(nbart.ParamError, match=message):
            sweeps.values_from_text(task, name, text)


def test_value_text():
    assert [sweeps.value_text(v) for v in (0.01, 3, ("a", "b"), None, ())] == ["0.01", "3", "a+b", "none", "empty"]
