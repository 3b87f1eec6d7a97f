"""The sample pictures bundled with nbart, usable anywhere an image is expected as ``"sample:NAME"``."""

from __future__ import annotations

import importlib.util
import pathlib

from nbart.images.convert import ImageError

__all__ = ["sample_names", "painting_names", "sample_credit", "sample_path"]

_DATA = pathlib.Path(__file__).parent.parent / "data"  # nbart/data
_SAMPLES = {
    "grace_hopper": "Grace Hopper, photo bundled with matplotlib",
    "starry_night": "Vincent van Gogh, The Starry Night (1889), public domain",
    "the_scream": "Edvard Munch, The Scream (1893), public domain",
}
_PHOTOS = ("grace_hopper",)  # the samples that are photographs; the others are paintings


def sample_names() -> tuple[str, ...]:
    """Names of the bundled samples, usable anywhere an image is expected as ``"sample:NAME"``."""
    return tuple(_SAMPLES)


def painting_names() -> tuple[str, ...]:
    """Names of the bundled samples that are paintings (styles to try), in :func:`sample_names`' order."""
    return tuple(n for n in _SAMPLES if n not in _PHOTOS)


def sample_credit(name: str) -> str:
    """Title, author and licence of a bundled sample."""
    return _SAMPLES[name]


def sample_path(name: str) -> pathlib.Path:
    """The file of a bundled sample."""
    if name not in _SAMPLES:
        raise ImageError(f"unknown sample {name!r}; choose from {', '.join(_SAMPLES)}")
    if name == "grace_hopper":
        spec = importlib.util.find_spec("matplotlib")
        return pathlib.Path(spec.submodule_search_locations[0]) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return _DATA / f"{name}.jpg"
