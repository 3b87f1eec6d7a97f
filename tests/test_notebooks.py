"""The teaching notebooks run top to bottom, offline, with small sizes injected after their parameters cell.

Every figure cell must show a picture that is not blank, and each studio must end with a result."""

import base64
import io
import pathlib

import nbformat
import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# The smallest sizes and steps that still run every cell's path (CI time: benchmarks/results/ci-time.md); what the
# test checks (figures not blank, progress bars, the studio's result) doesn't depend on them.
SMALL = {
    "00_quickstart.ipynb": "SIZE = 96\nSTEPS = 2\nRUN_NOW = True",
    "01_deep_dream.ipynb": "SIZE = 96\nSTEPS = 2\nRUN_STUDIO = True",
    "02_style_transfer.ipynb": "SIZE = 64\nSTEPS = 2\nRUN_STUDIO = True",
    "03_creative_control.ipynb": "SIZE = 64\nSTEPS = 2\nRUN_STUDIO = True",
    "04_inside_the_network.ipynb": "SIZE = 64\nSTEPS = 2\nRUN_STUDIO = True",
}

# TensorFlow's native start-up lines and tf.function's retracing advice: a participant reads them as "it is broken".
NOISE = ("Could not find cuda drivers", "cpu_feature_guard", "failed call to cuInit", "rebuild TensorFlow",
         "tf.function retracing", "absl::InitializeLog")


# calls that run optimization steps (seconds to minutes at a participant's sizes); a studio has its own progress
RUNS = ("dream_run(", "style_run(", "nbart.dream(", "style_transfer(")


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def test_the_notebooks_exist_and_are_committed_without_outputs():
    assert [p.name for p in NOTEBOOKS] == list(SMALL)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs committed"
        assert sum("parameters" in _tags(c) for c in nb.cells) == 1
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert 'if "google.colab" in sys.modules' in first_code.source and "%pip install" in first_code.source
        assert "colab-badge.svg" in nb.cells[0].source and "mybinder.org/badge_logo.svg" in nb.cells[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_offline_and_shows_every_figure(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in _tags(c))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(SMALL[path.name], metadata={"tags": ["injected-parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell(
        "assert studio.result is not None and len(studio.history) == 1, studio.error\n"
        "print('studio result', studio.result.size)"
    ))
    monkeypatch.setenv("NBART_OFFLINE", "1")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    streams = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                        if o.output_type == "stream")
    for noise in NOISE:
        assert noise not in streams, f"{path.name} shows TensorFlow's start-up noise {noise!r}:\n{streams[:2000]}"

    figures = [c for c in nb.cells if "figure" in _tags(c)]
    assert figures or path.name == "00_quickstart.ipynb"
    for cell in figures:
        pngs = [o.data["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        assert pngs, f"a figure cell of {path.name} shows nothing:\n{cell.source[:200]}"
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(pngs[0]))).convert("L"), np.float32)
        assert pixels.std() > 10, f"a figure of {path.name} is blank"
    for cell in (c for c in nb.cells if "studio" in _tags(c)):
        kinds = {key for o in cell.outputs for key in o.get("data", {})}
        assert "application/vnd.jupyter.widget-view+json" in kinds, f"the studio of {path.name} was not displayed"
    # every cell that runs optimization steps shows a progress bar (nbart.progress: tqdm's widget bar here)
    for cell in nb.cells:
        if cell.cell_type == "code" and any(call in cell.source for call in RUNS) and "studio" not in _tags(cell):
            kinds = {key for o in cell.outputs for key in o.get("data", {})}
            assert "application/vnd.jupyter.widget-view+json" in kinds, \
                f"a cell of {path.name} runs steps without a progress bar:\n{cell.source[:300]}"
    assert "studio result" in nb.cells[-1].outputs[0].text
