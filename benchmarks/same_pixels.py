"""Do two trees of nbart give the same pictures? Render a small default-style dream and two style runs with the
offline VGG16 and a fixed seed, and save them (``save DIR``) or compare them with saved ones (``compare DIR``).

    PYTHONPATH=<old tree> python benchmarks/same_pixels.py save /tmp/ref      # run from outside both trees
    PYTHONPATH=<new tree> python benchmarks/same_pixels.py compare /tmp/ref   # exit status 1 unless identical

Needs ../shared/images (NBART_IMAGES). About 2-3 minutes on 2 CPU cores.
"""

import os
import pathlib
import sys

import numpy as np

IMAGES = pathlib.Path(os.environ.get("NBART_IMAGES", pathlib.Path(__file__).resolve().parents[2] / "shared" / "images"))


def render() -> dict[str, np.ndarray]:
    import nbart

    content, style = str(IMAGES / "tubingen.jpg"), str(IMAGES / "starry_night.jpg")
    common = dict(model="vgg16", weights="offline", seed=3)
    return {
        "dream": np.asarray(nbart.dream(str(IMAGES / "golden_gate.jpg"), max_size=224, octaves=2, steps=4, **common)),
        "style": np.asarray(nbart.style_transfer(content, style, max_size=192, steps=6, **common)),
        "style_adam": np.asarray(nbart.style_transfer(content, style, max_size=128, steps=4, optimizer="adam",
                                                      **common)),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = pathlib.Path(argv[1])
    pictures = render()
    if argv[0] == "save":
        folder.mkdir(parents=True, exist_ok=True)
        for name, picture in pictures.items():
            np.save(folder / f"{name}.npy", picture)
        return 0
    same = True
    for name, picture in pictures.items():
        saved = np.load(folder / f"{name}.npy")
        equal = saved.shape == picture.shape and bool((saved == picture).all())
        same &= equal
        print(f"{name} {picture.shape}: {'identical' if equal else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
