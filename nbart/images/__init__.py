"""Image I/O on Pillow: load anything a user may hand us as RGB, fit it to a size, encode it, save it atomically.

Everything the engine sees is an RGB ``PIL.Image`` (or its float32 array in ``[0, 1]``); everything odd about an
input (EXIF rotation, transparency, CMYK, 16-bit, palettes, animation) is dealt with here, once.

- :mod:`~nbart.images.samples`: the bundled pictures (``"sample:NAME"``).
- :mod:`~nbart.images.load`: reading a path, sample, URL, bytes, file, array or PIL image.
- :mod:`~nbart.images.convert`: to RGB, :func:`fit`, float <-> uint8, and :func:`encode`, the one JPEG/PNG encoder.
- :mod:`~nbart.images.save`: atomic PNG/JPEG/WebP and GIF writing, and reading back the settings a PNG holds.

Every name is re-exported here, so ``nbart.images.X`` works whichever submodule ``X`` lives in. Settings a test
patches (``URL_TIMEOUT``, ``folder_problem``) are read from their submodule: patch them there.
"""

from nbart.images.convert import ImageError, encode, fit, from_array, to_float, to_uint8
from nbart.images.load import URL_MAX_BYTES, URL_TIMEOUT, load_image, prepare
from nbart.images.samples import painting_names, sample_credit, sample_names, sample_path
from nbart.images.save import GIF_MAX_FRAMES, SAVE_FORMATS, folder_problem, read_params, save_gif, save_image

__all__ = [
    "ImageError", "load_image", "prepare", "sample_names", "painting_names", "sample_credit", "sample_path", "fit",
    "from_array", "to_float", "to_uint8", "encode", "save_image", "save_gif", "read_params", "folder_problem",
    "SAVE_FORMATS", "GIF_MAX_FRAMES", "URL_TIMEOUT", "URL_MAX_BYTES",
]
