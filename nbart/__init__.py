"""nbart: Deep Dream and Neural Style Transfer for Jupyter, on TensorFlow/Keras 3.

The engine (``dream``, ``style_transfer``, their ``*_run`` iterators, ``load_image`` ...) knows nothing of
widgets; the studios in ``nbart.studio`` and the ``nbart`` command are front-ends over it.
"""

import importlib as _importlib
import importlib.util as _importlib_util

from nbart import masks  # the mask makers: nbart.masks.ellipse(...)
from nbart import quiet as _quiet
from nbart.cost import Estimate, check_fits, estimate
from nbart.deepdream import dream, dream_run
from nbart.errors import ImageError, ParamError, WeightsError
from nbart.events import Outcome, Run, StepEvent
from nbart.explorer import explore, explore_run
from nbart.extractors import activations
from nbart.fast import fast_style, fast_style_run, style_sheet
from nbart.images import load_image, sample_names, save_image
from nbart.params import DreamParams, FastStyleParams, StyleParams, ZoomParams
from nbart.progress import progress, run_with_progress
from nbart.styletransfer import style_run, style_transfer
from nbart.sweeps import sweep, sweep_run
from nbart.video import read_video, save_video
from nbart.warmup import warm_up
from nbart.zoom import dream_zoom, dream_zoom_run

__version__ = "0.1.0"

__all__ = [
    "dream", "dream_run", "style_transfer", "style_run", "fast_style", "fast_style_run", "style_sheet", "load_image",
    "save_image", "sample_names", "DreamParams", "StyleParams", "FastStyleParams", "Run", "StepEvent", "Outcome",
    "activations", "warm_up", "ParamError", "ImageError", "WeightsError",
    "estimate", "check_fits", "Estimate",
    "DreamStudio", "StyleStudio", "__version__",
    "masks",
    "progress", "run_with_progress",
    "dream_zoom", "dream_zoom_run", "ZoomParams", "save_video", "read_video",
    "explore", "explore_run", "sweep", "sweep_run",
]

_STUDIOS = ("DreamStudio", "StyleStudio")

# In a Jupyter kernel TensorFlow starts importing now, in the background, so that a studio opened a cell later is
# ready when Run is pressed (nbart.quiet.preload; NBART_PRELOAD=0 turns it off). Never in the CLI or a script.
_quiet.preload()


def __getattr__(name: str):
    # The studios import ipywidgets: only when asked for, so the engine and the CLI never load it.
    if name in _STUDIOS:
        from nbart import studio

        return getattr(studio, name)
    # Submodules that `import nbart` does not load (nbart.objectives imports TensorFlow): loaded when first named,
    # so help(nbart.objectives) works as it reads.
    if not name.startswith("_") and _importlib_util.find_spec(f"nbart.{name}") is not None:
        return _importlib.import_module(f"nbart.{name}")
    raise AttributeError(f"module 'nbart' has no attribute {name!r}")
