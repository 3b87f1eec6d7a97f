"""Float-image helpers of style transfer: BT.601 YCbCr colour transforms, luminance, resize. Images are float
arrays (H, W, 3) in [0, 1]."""

from __future__ import annotations

import numpy as np

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "luminance", "resize", "is_grey", "match_colors"]

# ITU-R BT.601 full range, as in JPEG and Pillow's "YCbCr" mode; images in [0, 1].
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCBCR_INV = np.linalg.inv(_YCBCR).astype(np.float32)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] (..., 3) -> Y in [0, 1], Cb and Cr centred on 0."""
    return rgb @ _YCBCR.T


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, clipped to [0, 1]."""
    return np.clip(ycc @ _YCBCR_INV.T, 0.0, 1.0)


def luminance(rgb: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB of an image's luminance; with ``like``, its mean and spread are matched to ``like``'s luminance
    (the luminance-only transfer of Gatys et al. 2016, "Preserving color in neural artistic style transfer")."""
    y = rgb_to_ycbcr(rgb)[..., 0]
    if like is not None:
        ref = rgb_to_ycbcr(like)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1)


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image (H, W, 3) to (height, width): antialiased bilinear down, bicubic up, clipped to [0, 1]."""
    from nbart.quiet import tensorflow
    tf = tensorflow()

    if array.shape[:2] == tuple(size):
        return array
    method = "bicubic" if size[0] > array.shape[0] else "bilinear"
    return np.clip(tf.image.resize(array, size, method=method, antialias=True).numpy(), 0.0, 1.0)


def is_grey(rgb: np.ndarray, tolerance: float = 2.0 / 255) -> bool:
    """Whether an image (H, W, 3) in [0, 1] is grey: its channels differ by at most ``tolerance`` anywhere."""
    return bool(np.ptp(rgb, axis=-1).max() <= tolerance)


def match_colors(rgb: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``rgb`` (H, W, 3) in [0, 1] with each channel's histogram matched to ``reference``'s (any size), by
    scikit-image's :func:`skimage.exposure.match_histograms`: the picture takes the reference's colours."""
    from skimage.exposure import match_histograms

    return np.clip(match_histograms(rgb, reference, channel_axis=-1), 0.0, 1.0).astype(np.float32)
