"""What this process may use: the memory it can still grow by, and how much it holds now.

The limit is the smallest of: the cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``; Docker,
Kubernetes, Binder) less what the cgroup already uses, the kernel's ``MemAvailable`` (free memory plus reclaimable
cache, Linux >= 3.14), and the address-space limit ``RLIMIT_AS`` (``ulimit -v``) less this process's virtual size.
Each reader takes its file's path so tests can hand it fixtures. Linux only; elsewhere the readers return None
(no known limit). Imports nothing of nbart.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

__all__ = ["Limit", "memory_limit", "cgroup_limit", "mem_available", "address_space_limit", "current_rss",
           "peak_rss"]

_UNLIMITED_V1 = 1 << 60  # cgroup v1 writes ~2**63 rounded to pages for "no limit"


@dataclass(frozen=True)
class Limit:
    """How many more bytes this process may use (``bytes``) and which limit says so (``source``, for messages:
    'cgroup limit', 'free memory', 'ulimit -v')."""

    bytes: int
    source: str


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cgroup_dirs(proc_self_cgroup: str, root: str) -> list[tuple[str, str]]:
    """(version, directory) of this process's memory cgroup(s), from /proc/self/cgroup: 'v2' for the unified
    '0::/path' line, 'v1' for a line whose controllers include memory. A directory that is not mounted where the
    path says (inside a container the path is often the host's) falls back to the mount root."""
    text = _read(proc_self_cgroup) or ""
    found = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            version, base = "v2", root
        elif "memory" in controllers.split(","):
            version, base = "v1", os.path.join(root, "memory")
        else:
            continue
        for candidate in (os.path.join(base, path.lstrip("/")), base):
            if os.path.isdir(candidate):
                found.append((version, candidate))
                break
    return found


def cgroup_limit(proc_self_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> int | None:
    """Bytes this cgroup may still grow by (its memory limit less its current usage), or None without a limit.

    cgroup v2: ``memory.max`` ('max' = none) and ``memory.current``; v1: ``memory.limit_in_bytes`` (a huge value =
    none) and ``memory.usage_in_bytes``.
    """
    best = None
    for version, directory in _cgroup_dirs(proc_self_cgroup, root):
        names = ("memory.max", "memory.current") if version == "v2" else \
            ("memory.limit_in_bytes", "memory.usage_in_bytes")
        limit, usage = (_read(os.path.join(directory, n)) for n in names)
        if limit is None or not limit.isdigit() or int(limit) >= _UNLIMITED_V1:
            continue  # 'max', missing, or v1's "no limit"
        room = int(limit) - (int(usage) if usage and usage.isdigit() else 0)
        best = room if best is None else min(best, room)
    return None if best is None else max(0, best)


def mem_available(meminfo: str = "/proc/meminfo") -> int | None:
    """The kernel's estimate of memory available to start new work without swapping (``MemAvailable``), bytes."""
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemAvailable:"):
            value = line.split()[1:]
            if value and value[0].isdigit():
                return int(value[0]) * (1024 if value[1:] == ["kB"] else 1)
    return None


def _virtual_size(status: str = "/proc/self/status") -> int:
    for line in (_read(status) or "").splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def address_space_limit(status: str = "/proc/self/status") -> int | None:
    """Bytes of address space this process may still map under ``RLIMIT_AS`` (``ulimit -v``), or None.

    TensorFlow maps much more than it touches (thread stacks, reserved arenas), so this is a loose bound: a run
    whose resident peak fits under it may still be refused an allocation.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    return max(0, soft - _virtual_size(status))


def memory_limit() -> Limit | None:
    """The tightest of :func:`cgroup_limit`, :func:`mem_available` and :func:`address_space_limit`: how many more
    bytes this process may use, and which limit it is; None where none is known (not Linux)."""
    candidates = [(cgroup_limit(), "cgroup limit"), (mem_available(), "free memory"),
                  (address_space_limit(), "ulimit -v")]
    known = [Limit(b, source) for b, source in candidates if b is not None]
    return min(known, key=lambda limit: limit.bytes) if known else None


def current_rss(status: str = "/proc/self/status") -> int:
    """This process's resident set size now (``VmRSS``), bytes; 0 where unknown."""
    for line in (_read(status) or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    """This process's peak resident set size so far (``ru_maxrss``, kilobytes on Linux), bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
