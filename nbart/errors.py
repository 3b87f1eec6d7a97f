"""The error types a user can meet, and the one line a front-end shows for any error.

A leaf module: it imports nothing of nbart, so every layer can raise these and every front-end can word them.

- :class:`ParamError`: a parameter out of range or of the wrong type (``steps must be >= 1 (got 0)``).
- :class:`ImageError`: an image that can't be read, sized or written.
- :class:`WeightsError`: weights that can't be had here, with what to use instead.
- :class:`Stopped`: a stop requested mid-step; the engine catches it and never lets it reach the consumer.

:func:`error_message` holds the one table of advice (out of memory, interrupted) that the CLI and the studios show.
"""

from __future__ import annotations

__all__ = ["ParamError", "ImageError", "WeightsError", "Stopped", "USER_ERRORS", "error_message"]


class ParamError(ValueError):
    """A parameter value is out of range or of the wrong type; the message names the value and what is allowed."""


class ImageError(ValueError):
    """An image can't be read, converted or written; the message says which and why, in one line."""


class WeightsError(RuntimeError):
    """The requested weights can't be had here; the message says why and what to use instead."""


class Stopped(Exception):
    """Raised inside the engine when a stop was requested mid-step; never reaches the consumer."""


# Errors whose messages are written for people already: shown as they are.
USER_ERRORS = (ParamError, ImageError, WeightsError)

MAX_LINE = 300  # characters of an unexpected error's message kept in the one line

# The advice table: (does this error match?, what to tell the user). Checked in order, after USER_ERRORS.
_ADVICE = (
    (lambda e: isinstance(e, MemoryError) or type(e).__name__ == "ResourceExhaustedError",
     "out of memory; try a smaller max_size (or tile_size)"),
    (lambda e: isinstance(e, KeyboardInterrupt), "interrupted"),
)


def error_message(error: BaseException) -> str:
    """One line for a front-end to show about an error that ended a run or refused to start one: no traceback.

    A :data:`USER_ERRORS` message as it is (whitespace folded to single spaces); advice for out-of-memory (a
    ``MemoryError`` or TensorFlow's ``ResourceExhaustedError``) and interrupts; else ``"Type: message"`` cut to
    ``MAX_LINE`` characters.

    >>> error_message(ParamError("steps must be >= 1 (got 0)"))
    'steps must be >= 1 (got 0)'
    >>> error_message(MemoryError())
    'out of memory; try a smaller max_size (or tile_size)'
    >>> error_message(RuntimeError("boom"))
    'RuntimeError: boom'
    """
    text = " ".join(str(error).split())
    if isinstance(error, USER_ERRORS):
        return text
    for matches, advice in _ADVICE:
        if matches(error):
            return advice
    if len(text) > MAX_LINE:
        text = text[: MAX_LINE - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
