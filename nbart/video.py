"""Moving pictures in and out: animated GIF and MP4 written atomically and frame by frame, videos read as a stream.

MP4 goes through ``imageio-ffmpeg``, whose wheels bundle an ffmpeg binary (no system ffmpeg needed); a video read
streams its frames (memory does not grow with its length). GIFs go through Pillow: a GIF's frames are held until
:meth:`VideoWriter.close`, as palette images (one byte a pixel), since Pillow writes a GIF in one call.

Every writer writes to a hidden temporary file beside the target and renames it over the target when closed, so a
failure leaves no partial file and any old file intact; a writer closed after a stop or an interrupt still writes
the frames it was given (nothing made is lost).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageSequence

from nbart.images import ImageError, folder_problem

__all__ = ["VIDEO_FORMATS", "READ_FORMATS", "VideoWriter", "save_video", "read_video", "video_info", "is_video"]

VIDEO_FORMATS = (".mp4", ".gif")  # what the writers make
READ_FORMATS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")  # what read_video reads (ffmpeg; GIF: Pillow)
DEFAULT_FPS = 12.0


def _suffix(path: str | os.PathLike) -> str:
    return pathlib.Path(path).suffix.lower()


def _as_array(frame: Any) -> np.ndarray:
    if callable(getattr(frame, "pil", None)):  # a run timeline's Frame (run.frames()) or a step event
        frame = frame.pil()
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        got = f"{array.dtype} {array.shape}" if array.dtype != object else type(frame).__name__
        raise ImageError(f"a video frame must be a PIL image, a timeline frame or a uint8 (height, width, 3) array "
                         f"(got {got})")
    return array


class VideoWriter:
    """Write frames to ``path`` (``.mp4`` or ``.gif``) at ``fps`` frames per second, atomically on :meth:`close`.

    ``add(frame)`` takes a PIL image or a uint8 (height, width, 3) array; the first frame sets the size and later
    frames of another size are resized to it (Lanczos). An MP4 (H.264, yuv420p) needs even sides: an odd side is
    padded by one pixel, repeating the edge. Use as a context manager: leaving it closes the writer, which writes
    the file whenever at least one frame was added (also on a stop, an interrupt or an error), so nothing made is
    lost; with no frame, nothing is written. Errors: :class:`~nbart.errors.ImageError` (a wrong suffix, a folder
    that can't be written, ffmpeg failing), in one line.
    """

    def __init__(self, path: str | os.PathLike, fps: float = DEFAULT_FPS, quality: int = 7):
        self.path = os.fspath(path)
        self.kind = _suffix(self.path)
        if self.kind not in VIDEO_FORMATS:
            raise ImageError(f"a video must end in {' or '.join(VIDEO_FORMATS)} (got {self.path!r})")
        if not (0 < fps <= 120):
            raise ImageError(f"fps must be in (0, 120] (got {fps})")
        problem = folder_problem(self.path)
        if problem:
            raise ImageError(f"can't write {self.path}: {problem}")
        self.fps, self.quality = float(fps), int(quality)
        self.frames = 0  # frames added so far
        self.size: tuple[int, int] | None = None  # (width, height) of every frame, set by the first
        folder, name = os.path.split(os.path.abspath(self.path))
        self._tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident():x}.tmp{self.kind}")
        self._gif: list[Image.Image] = []
        self._ffmpeg: Any = None
        self._closed = False

    def add(self, frame: Any) -> None:
        """Append one frame (PIL image or uint8 (H, W, 3) array)."""
        if self._closed:
            raise ImageError(f"{self.path} is closed: no more frames can be added")
        array = _as_array(frame)
        if self.size is None:
            self.size = (array.shape[1], array.shape[0])
        elif (array.shape[1], array.shape[0]) != self.size:
            array = np.asarray(Image.fromarray(array).resize(self.size, Image.Resampling.LANCZOS))
        if self.kind == ".gif":
            # a palette image: a third of the memory, and what the GIF stores anyway
            self._gif.append(Image.fromarray(array).quantize(256, method=Image.Quantize.MEDIANCUT))
        else:
            self._send(array)
        self.frames += 1

    def _send(self, array: np.ndarray) -> None:
        pad_h, pad_w = array.shape[0] % 2, array.shape[1] % 2
        if pad_h or pad_w:  # yuv420p halves the chroma planes: both sides must be even
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        try:
            if self._ffmpeg is None:
                import imageio_ffmpeg

                self._ffmpeg = imageio_ffmpeg.write_frames(
                    self._tmp, (array.shape[1], array.shape[0]), fps=self.fps, quality=self.quality,
                    macro_block_size=1, ffmpeg_log_level="error")
                self._ffmpeg.send(None)  # start ffmpeg
            self._ffmpeg.send(np.ascontiguousarray(array))
        except (OSError, RuntimeError) as e:
            self.abort()
            raise ImageError(f"can't write {self.path}: {' '.join(str(e).split())[:300]}") from None

    def close(self) -> bool:
        """Finish the file and rename it over ``path``; True if it was written (False: no frame was added)."""
        if self._closed:
            return False
        self._closed = True
        if self.frames == 0:
            self._remove_tmp()
            return False
        try:
            if self.kind == ".gif":
                duration = round(1000 / self.fps)
                frames, self._gif = self._gif, []
                with open(self._tmp, "wb") as f:
                    frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=duration,
                                   loop=0)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                self._ffmpeg.close()  # waits for ffmpeg to finish the file
                self._ffmpeg = None
            os.replace(self._tmp, self.path)
        except (OSError, RuntimeError, ValueError) as e:
            self._remove_tmp()
            raise ImageError(f"can't write {self.path}: {getattr(e, 'strerror', None) or ' '.join(str(e).split())}"
                             ) from None
        return True

    def abort(self) -> None:
        """Give up: no file is written, the temporary one is removed (an old file at ``path`` stays)."""
        self._closed = True
        self._gif = []
        if self._ffmpeg is not None:
            with contextlib.suppress(Exception):
                self._ffmpeg.close()
            self._ffmpeg = None
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(OSError):
            os.remove(self._tmp)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()  # also after an error or an interrupt: the frames made are kept


def save_video(frames: Iterable[Any], path: str | os.PathLike, fps: float = DEFAULT_FPS) -> int:
    """Write ``frames`` (PIL images or uint8 arrays) as an MP4 or animated GIF by ``path``'s suffix, atomically;
    returns the number of frames written. ImageError if there are none."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.add(frame)
        if writer.frames == 0:
            writer.abort()
            raise ImageError(f"no frames to write to {os.fspath(path)}")
    return writer.frames


def _first_words(error: Exception) -> str:
    """An ffmpeg failure in one line: its message without the ffmpeg banner and log that follow it."""
    return " ".join(str(error).split("=== stderr", 1)[0].split())[:200]


def is_video(path: Any) -> bool:
    """Whether ``path`` names a moving picture nbart reads frame by frame: a video file by its suffix, or a GIF of
    more than one frame."""
    if not isinstance(path, (str, os.PathLike)) or _suffix(path) not in READ_FORMATS:
        return False
    if _suffix(path) != ".gif":
        return True
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1) > 1
    except Exception:  # unreadable, or a decompression bomb: not a video; the image loader says what it is
        return False


def video_info(path: str | os.PathLike) -> dict[str, Any]:
    """``{"fps": float, "frames": int or None (unknown), "size": (width, height)}`` of a video or GIF."""
    path = os.fspath(path)
    _check_readable(path)
    if _suffix(path) == ".gif":
        with Image.open(path) as img:
            duration = img.info.get("duration") or 100
            return {"fps": 1000.0 / duration, "frames": getattr(img, "n_frames", 1), "size": img.size}
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    try:
        meta = next(reader)
    except (OSError, RuntimeError) as e:
        raise ImageError(f"can't read {path} as a video: {_first_words(e)}") from None
    finally:
        reader.close()
    frames, _secs = imageio_ffmpeg.count_frames_and_secs(path)
    return {"fps": float(meta.get("fps") or DEFAULT_FPS), "frames": frames, "size": tuple(meta["size"])}


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise ImageError(f"no such file: {path}")
    if _suffix(path) not in READ_FORMATS:
        raise ImageError(f"a video must end in {', '.join(READ_FORMATS)} (got {path!r})")


def read_video(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a video or animated GIF, one at a time, as uint8 (height, width, 3) arrays: a stream, so memory
    does not grow with the video's length. ImageError (one line) for a missing or unreadable file."""
    path = os.fspath(path)
    _check_readable(path)
    if _suffix(path) == ".gif":
        return _gif_frames(path)
    return _ffmpeg_frames(path)


def _gif_frames(path: str) -> Iterator[np.ndarray]:
    with Image.open(path) as img:
        for frame in ImageSequence.Iterator(img):
            yield np.asarray(frame.convert("RGB"))


def _ffmpeg_frames(path: str) -> Iterator[np.ndarray]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    try:
        try:
            meta = next(reader)
        except (OSError, RuntimeError) as e:
            raise ImageError(f"can't read {path} as a video: {_first_words(e)}") from None
        width, height = meta["size"]
        for data in reader:
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()
