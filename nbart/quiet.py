"""Importing TensorFlow without its native start-up chatter, for the CLI, the notebooks and the studios alike.

TensorFlow's C++ start-up lines ("Could not find cuda drivers", "cpu_feature_guard ... rebuild TensorFlow",
"failed call to cuInit" on a machine without a GPU) are written straight to file descriptor 2 before absl logging
is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not hide them; a notebook shows them as a red block. The only way is to
hold fd 2 while TensorFlow starts and probes its devices, then replay every line that is not one of these.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import os
import re
import sys
import tempfile
import threading
from typing import Any

__all__ = ["tensorflow", "NATIVE_NOISE", "release_large_buffers", "preload", "in_kernel"]

# TensorFlow's native start-up lines (oneDNN, CUDA probing on CPU machines, CPU-feature hints): informational.
NATIVE_NOISE = re.compile(
    r"^(I0000 |WARNING: All log messages before absl|E0000 .*(cuInit|CUDA)|W0000 .*(cuda|TensorRT)|"
    r"To enable the following instructions|.*rebuild TensorFlow with the appropriate compiler flags)"
)
_LOCK = threading.Lock()


def tensorflow() -> Any:
    """The ``tensorflow`` module, imported (once per process) with its start-up chatter hidden, and glibc's malloc told
    to give large freed buffers back (:func:`release_large_buffers`, once); other lines that
    TensorFlow writes meanwhile (real errors) are written to ``sys.stderr``. If TensorFlow was already imported,
    it is returned as is."""
    with _LOCK:
        if not _released:
            _released.append(release_large_buffers())
        if "tensorflow" in sys.modules:
            import tensorflow as tf  # another thread may still be importing it: this waits for the whole module

            if not _filtered:  # imported by someone else (Keras, the user) first: the warning filter still goes in
                _quiet_retracing()
            return tf
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the later native INFO/WARNING lines
        sys.stderr.flush()
        saved = os.dup(2)
        me = threading.current_thread()
        guarding = me not in _importers  # the preload's thread is guarded from before it started
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            if guarding:
                _guard_on(me)
            try:
                import tensorflow as tf

                tf.config.list_physical_devices("GPU")  # CUDA probing happens here, once
            finally:
                if guarding:
                    _guard_off(me)
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                for line in captured.read().decode(errors="replace").splitlines():
                    if line.strip() and not NATIVE_NOISE.search(line):
                        print(line, file=sys.stderr)
        _quiet_retracing()
        return tf


# Packages whose import from another thread waits while this module imports TensorFlow (see _guard_on).
GUARDED = ("tensorflow", "keras", "tf_keras")
_importers: set[threading.Thread] = set()  # threads importing TensorFlow here; the others' guarded imports wait
_imported = threading.Event()
_imported.set()
_guard_lock = threading.Lock()
_session: list[Any] = []  # (builtins.__import__, importlib.import_module) as they were, while the guard is on


def _guard_on(thread: threading.Thread) -> None:
    """From now until :func:`_guard_off`, another thread's import of TensorFlow or Keras waits until ``thread`` has
    imported TensorFlow (``import`` statements and ``importlib.import_module`` alike).

    Why: TensorFlow and Keras 3 import each other. A cell's ``import keras`` while the preload imported TensorFlow
    took Keras' module lock while the preload held TensorFlow's and wanted Keras': Python broke the cycle by handing
    one thread a half-made module, and the kernel was broken for good ("module ... dataset_ops has no attribute
    DatasetV2", then "Registering two gradient with name 'ReduceDataset'"). The wait happens before the import
    takes any lock, and :func:`preload` turns the guard on before its thread starts, so a line right after
    ``import nbart`` waits too (and TensorFlow's start-up chatter stays hidden for it).
    """
    with _guard_lock:
        if not _importers:
            original_import, original_import_module = builtins.__import__, importlib.import_module

            def waiting_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                               level: int = 0) -> Any:
                if level == 0:
                    _wait_if_guarded(name)
                return original_import(name, globals, locals, fromlist, level)

            def waiting_import_module(name: str, package: str | None = None) -> Any:
                if not name.startswith("."):
                    _wait_if_guarded(name)
                return original_import_module(name, package)

            _session[:] = [original_import, original_import_module, waiting_import, waiting_import_module]
            _imported.clear()
            builtins.__import__, importlib.import_module = waiting_import, waiting_import_module
        _importers.add(thread)


def _guard_off(thread: threading.Thread) -> None:
    with _guard_lock:
        _importers.discard(thread)
        if _importers or not _session:
            return
        original_import, original_import_module, waiting_import, waiting_import_module = _session
        if builtins.__import__ is waiting_import:  # a wrapper put in meanwhile keeps ours inside it (then idle)
            builtins.__import__ = original_import
        if importlib.import_module is waiting_import_module:
            importlib.import_module = original_import_module
        _session.clear()
        _imported.set()


def _wait_if_guarded(name: str) -> None:
    if _importers and name.partition(".")[0] in GUARDED and threading.current_thread() not in _importers:
        _imported.wait()


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (JupyterLab, Notebook 7, Colab, Binder): IPython runs with a kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


_preloading: list[threading.Thread] = []
_PRELOAD_LOCK = threading.Lock()


def preload(force: bool = False) -> threading.Thread | None:
    """Start importing TensorFlow (:func:`tensorflow`) in a background thread, once per process, and return that
    thread; None where it is not started. ``import nbart`` calls it in a Jupyter kernel (:func:`in_kernel`) unless
    ``NBART_PRELOAD=0``; ``NBART_PRELOAD=1`` or ``force`` starts it anywhere.

    Why: importing TensorFlow and Keras takes 5-6 s on a 2-core AVX2 CPU, most of the time a studio needs before its
    first step (building and tracing the network take ~2 s more; ``benchmarks/results/first-step-*``). Begun when a
    notebook's first cell imports nbart, it runs while the participant reads on, so a panel opened a few seconds
    later is ready when Run is pressed. Everything that needs TensorFlow waits for it through :func:`tensorflow`'s
    lock; a failed import (a broken install) is raised again there, in the foreground, where it is seen.
    """
    setting = os.environ.get("NBART_PRELOAD", "")
    if setting == "0" or not (force or setting == "1" or in_kernel()):
        return None
    with _PRELOAD_LOCK:  # not _LOCK: the preload holds that for the whole import, and this must never wait
        if _preloading or "tensorflow" in sys.modules:
            return _preloading[0] if _preloading else None
        thread = threading.Thread(target=_preload, daemon=True, name="nbart-preload")
        _preloading.append(thread)
        _guard_on(thread)  # before it starts: the very next line of the cell may import Keras
    try:
        thread.start()
    except BaseException:  # no thread (a process at its limit): nothing may wait for it
        _guard_off(thread)
        raise
    return thread


def _preload() -> None:
    try:
        tensorflow()
    except BaseException:  # noqa: BLE001 - the foreground's own import raises it again, where it is seen
        pass
    finally:
        _guard_off(threading.current_thread())


# Buffers from this size up get their own memory map from glibc's malloc, returned to the system when freed.
MMAP_THRESHOLD = 1 << 20


def release_large_buffers() -> bool:
    """Make glibc's malloc map every buffer of ``MMAP_THRESHOLD`` bytes or more on its own (``mallopt``), so a
    freed tensor goes back to the system at once. Returns whether it was set (False off glibc, or where the user
    set ``MALLOC_MMAP_THRESHOLD_`` themselves).

    Why: TensorFlow's CPU allocator takes tensors from malloc, whose threshold rises with every large buffer freed
    (up to 32 MB), after which buffers of a style step's size stay in the heap, fragmented across sizes and
    stages. Measured on an AMD EPYC (AVX2, float32, VGG19 at 437x512 px, 8 L-BFGS iterations): peak RSS 1276 MB
    against 1363 MB, and 709 MB held between steps against 818 MB (benchmarks/results/memory-avx2.md).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(
            libc.mallopt(m_trim_threshold, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator as it is
        return False


_filtered: list[bool] = []
_released: list[bool] = []


def _quiet_retracing() -> None:
    logging.getLogger("tensorflow").addFilter(_no_retracing)
    _filtered.append(True)


def _no_retracing(record: logging.LogRecord) -> bool:
    """Drop tf.function's "triggered tf.function retracing" advice: nbart traces one function per image size on
    purpose (octaves, style stages), which is what the warning counts."""
    return "tf.function retracing" not in record.getMessage()
