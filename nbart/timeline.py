"""A run's timeline: small JPEG frames of its steps, bounded in number and size, to scrub back through and export.

Every :class:`~nbart.events.Run` keeps one (``run.timeline``; set it to None before the first pull to keep none).
The bound holds for any run length: at most ``max_frames`` frames (default :data:`MAX_FRAMES`), each at most
``max_side`` px on its long side (default :data:`MAX_SIDE`), as JPEG bytes in memory (about 10-20 KB each at 256
px). It keeps every ``stride``-th step, starting with every step; when full it drops every other frame and doubles
the stride, so the frames kept stay evenly spread over the whole run (the start image as step 0, and the last step
once the run ends). A step costs nothing unless its frame is kept: then one small render
(:meth:`~nbart.events.StepEvent.preview`) and one JPEG encode. Each doubling of a run's length costs about
``max_frames / 2`` more encodes: about 900 for a 10,000-step run at the default 240 frames (9 % of its steps).
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from nbart.images import encode

__all__ = ["Frame", "Timeline", "MAX_FRAMES", "MAX_SIDE", "save_timeline"]

MAX_FRAMES = 240  # frames a timeline keeps at most
MAX_SIDE = 256  # px, the long side of a frame at most
QUALITY = 80  # JPEG quality of a frame


@dataclass(frozen=True)
class Frame:
    """One kept step: ``step`` (0: the start image), its ``stage`` and ``label``, ``loss`` (nan for the start),
    ``elapsed`` seconds, the output's ``size`` (height, width) in px, and the frame itself as ``jpeg`` bytes."""

    step: int
    stage: int
    label: str
    loss: float
    elapsed: float
    size: tuple[int, int]
    jpeg: bytes

    def pil(self) -> Image.Image:
        """The frame as an RGB PIL image (at most ``MAX_SIDE`` px)."""
        with Image.open(io.BytesIO(self.jpeg)) as img:
            return img.convert("RGB")

    def image(self) -> np.ndarray:
        """The frame as uint8 RGB (height, width, 3)."""
        return np.asarray(self.pil())

    def full_size(self) -> Image.Image:
        """The frame scaled back to the run's output size (bicubic): what "use this frame" goes on from."""
        return self.pil().resize((self.size[1], self.size[0]), Image.Resampling.BICUBIC)


class Timeline:
    """The bounded frames of one run (see the module's text). Thread-safe: the run's consumer adds frames while a
    front-end reads them from another thread."""

    def __init__(self, max_frames: int = MAX_FRAMES, max_side: int = MAX_SIDE, quality: int = QUALITY):
        if max_frames < 2:
            raise ValueError(f"a timeline keeps at least 2 frames (got max_frames={max_frames})")
        self.max_frames, self.max_side, self.quality = max_frames, max_side, quality
        self.stride = 1  # a step is kept when step % stride == 0
        self._frames: list[Frame] = []
        self._last: Frame | None = None  # the run's last step when it is off the stride (kept apart, not thinned)
        self._start: Image.Image | None = None  # the start image, until the frames are read
        self._start_kept: Frame | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.frames())

    @property
    def nbytes(self) -> int:
        """The JPEG bytes held."""
        return sum(len(f.jpeg) for f in self.frames())

    def start(self, image: Image.Image) -> None:
        """Keep the run's start image as step 0 (encoded when the frames are read: the run holds it anyway)."""
        self._start = image

    def _start_frame(self) -> Frame | None:
        image, self._start = self._start, None
        if image is None:
            return None
        return Frame(0, 0, "start", float("nan"), 0.0, (image.size[1], image.size[0]),
                     encode(image, "jpeg", self.max_side, self.quality))

    def wants(self, step: int) -> bool:
        """Whether the frame of ``step`` would be kept now."""
        return step % self.stride == 0

    def add(self, event: Any, force: bool = False) -> bool:
        """Keep ``event``'s frame (a :class:`~nbart.events.StepEvent`) if its step is on the stride (or ``force``:
        the run's last step); True if kept. Renders and encodes only a kept frame."""
        on_stride = self.wants(event.step)
        if not (on_stride or force):
            return False
        with self._lock:
            if any(f.step == event.step for f in (self._frames[-1:] + ([self._last] if self._last else []))):
                return False
        # keep=False: the event stays as the engine made it (its pixels are made only when its consumer asks)
        jpeg = encode(event.preview(self.max_side, keep=False), "jpeg", quality=self.quality)
        frame = Frame(event.step, event.stage, event.label, float(event.loss), float(event.elapsed),
                      tuple(event.size), jpeg)
        with self._lock:
            if not on_stride:
                self._last = frame
                return True
            self._last = None
            self._frames.append(frame)
            if len(self._frames) > self.max_frames - 1:  # one place stays free for an off-stride last step
                self.stride *= 2
                self._frames = [f for f in self._frames if f.step % self.stride == 0]
        return True

    def finish(self, event: Any) -> None:
        """The run ended at ``event`` (or None: before any step): keep its frame if it isn't yet."""
        if event is not None:
            self.add(event, force=True)

    def frames(self) -> list[Frame]:
        """The kept frames, step order (a copy)."""
        with self._lock:
            if self._start is not None:
                self._start_kept = self._start_frame()
            start = [self._start_kept] if self._start_kept is not None else []
            return start + self._frames + ([self._last] if self._last is not None else [])

    def steps(self) -> list[int]:
        """The steps of the kept frames."""
        return [f.step for f in self.frames()]


def save_timeline(frames: list[Frame], path: str | os.PathLike, fps: float = 12.0,
                  final: Image.Image | None = None) -> int:
    """Write ``frames`` (a timeline's) as an MP4 or animated GIF by ``path``'s suffix, atomically, at the last
    frame's size; ``final`` (the full-size result) replaces the last frame's picture, scaled down (sharper than its
    JPEG). Returns the number of frames written. :class:`~nbart.errors.ImageError` names a bad path or no frames."""
    from nbart.video import save_video

    pictures = [f.pil() for f in frames]
    if final is not None:
        size = pictures[-1].size if pictures else final.size
        pictures[-1:] = [final.convert("RGB").resize(size, Image.Resampling.LANCZOS)]
    return save_video(pictures, path, fps)
