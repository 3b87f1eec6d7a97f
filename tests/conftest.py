"""Shared fixtures. Tests never touch the network: NBART_OFFLINE=1 makes `auto` weights fall back at once, and
Keras' cache is a private folder so a developer's ~/.keras can't change results. A test run writes nothing into the
tree (no Hypothesis database; its cache in the temp folder). The slow soak runs only with --run-slow."""

import os
import pathlib
import tempfile

os.environ.setdefault("NBART_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NBART_WARM_UP", "0")  # studios don't build networks behind the tests' backs (one test does)
os.environ.setdefault("NBART_FAST_PREVIEW", "0")  # nor make fast previews (tests/test_studio_fast.py turns them on)
os.environ.setdefault("NBART_ESTIMATE", "0")  # nor estimate runs (tests/test_studio_progress.py turns it on)
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), f"nbart-test-keras-{os.getuid()}"))
# Hypothesis' own cache (it keeps parsed constants even without a database) outside the tree, too
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), f"nbart-test-hypothesis-{os.getuid()}"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402
from PIL import Image  # noqa: E402

# No example database: a test run writes nothing into the tree (every settings() in the tests inherits this).
settings.register_profile("nbart", database=None)
settings.load_profile("nbart")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (the soak); no -m expression brings them back by accident")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_IMAGES = pathlib.Path(os.environ.get("NBART_IMAGES", ROOT.parent / "shared" / "images"))


def shared_image(name: str) -> pathlib.Path:
    """A photo or painting from ../shared/images (NBART_IMAGES); skip the test where it is absent."""
    path = SHARED_IMAGES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: set NBART_IMAGES to the shared test-image folder to run this test")
    return path


@pytest.fixture
def gradient_image() -> Image.Image:
    """A small smooth RGB image (96x80) with some structure, for plumbing tests."""
    y, x = np.mgrid[0:80, 0:96].astype(np.float32)
    rgb = np.stack([x / 95, y / 79, 0.5 + 0.5 * np.sin(x / 7) * np.cos(y / 5)], axis=-1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8))


# Tiny, fast runs: random VGG16 weights and small images. Plumbing tests use these keywords.
TINY = dict(model="vgg16", weights="none", max_size=64, octaves=2, steps=2, seed=0, precision="float32")
TINY_STYLE = dict(model="vgg16", weights="none", sizes=(48,), steps=3, seed=0, precision="float32")


def error_line(capsys) -> str:
    """The CLI's stderr after a refused command: exactly one ``nbart: error: ...`` line and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nbart: error: "), err
    assert "Traceback" not in err
    return lines[0]
