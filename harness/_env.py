"""The cores this process may use, and settings read from environment variables
(``HARNESS_CHUNK``, ``HARNESS_CHUNK_MIB``, ``HARNESS_READERS``, ``HARNESS_CACHE_CHUNK``,
``HARNESS_MAX_CLIP_SECONDS``, ``HARNESS_DEFER_LOADING``): a value that is not what the setting
must be is refused naming the variable, rather than failing later as something else (a chunk
size of 0 or -5 once ended in an IndexError, and a clip limit of ``abc`` made every clip
"unreadable audio")."""

from __future__ import annotations

import math
import os
from pathlib import Path

# a container's CPU limit (``docker --cpus``, a Kubernetes pod's): cgroup v2, then v1
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CFS_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity where the system reports one (a batch
    scheduler's job given 8 of a node's 128 cores sees 8), else every core, and no more than
    its container's CPU limit (a pod limited to 4 CPUs on that node: 4). With
    ``os.cpu_count()`` four workers in such a job took 32 torch threads each."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = _cpu_limit()
    return cores if limit is None else max(1, min(cores, limit))


def _cpu_limit() -> int | None:
    """The container's CPU limit rounded up (``cpu.max``'s "200000 100000": 2), None where
    there is none or it cannot be read."""
    try:
        if CPU_MAX.exists():
            quota, _, period = CPU_MAX.read_text().strip().partition(" ")
        else:
            quota = CFS_QUOTA.read_text().strip()
            period = (CFS_QUOTA.parent / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return math.ceil(int(quota) / int(period))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def positive_int(name: str, default: int) -> int:
    """The variable as a whole number of at least 1, ``default`` when unset or empty.

    Raises:
        ValueError: it is set to anything else (the message names it).
    """
    value = _setting(name, int, lambda v: v >= 1, "a whole number of at least 1")
    return default if value is None else value


def positive_float(name: str) -> float | None:
    """The variable as a finite number above 0, None when unset or empty.

    Raises:
        ValueError: it is set to anything else (the message names it).
    """
    return _setting(name, float, lambda v: math.isfinite(v) and v > 0,
                    "a number of seconds above 0")


def env_flag(name: str, default: bool) -> bool:
    """The variable as true or false (``1``/``0``, ``true``/``false``, ``yes``/``no``,
    ``on``/``off``, any case), ``default`` when unset or empty.

    Raises:
        ValueError: it is set to anything else (the message names it).
    """
    from harness._values import flag

    value = _setting(name, flag, lambda v: True, "true or false (1/0, yes/no, on/off)")
    return default if value is None else value


def _setting(name: str, convert, acceptable, must_be: str):
    """The variable converted, None when unset or empty; ValueError naming it when it does not
    convert or is not ``acceptable``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = convert(raw)
    except ValueError:
        value = None
    if value is None or not acceptable(value):
        raise ValueError(f"{name}={raw!r}: must be {must_be}")
    return value
