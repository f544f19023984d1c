"""Where cells run: xdist workers grouped so each loads a model once, shards across machines, and
each worker's share of the GPUs and the cores."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness._env import usable_cores


def _cell_parts(nodeid: str) -> tuple[str, str, str] | None:
    """``[<model>-<corpus>-<strategy>]`` at the end of a test's node id (xdist may add
    ``@group``): its model, corpus and strategy, or None. The corpus is the last ``-<corpus>-``
    in the brackets with a strategy after it, as a model's name may hold one. Linear in the
    id's length: the regular expression this replaced backtracked over every ``[`` of an id,
    and a test's id of a parameter of 700,000 brackets (pytest 8 puts a string parameter's
    whole text in the id) held the scheduler for a minute."""
    from harness.data import CORPORA

    test = nodeid.find("::test_")
    end = nodeid.rfind("]")
    if test < 0 or end < 0 or not (end + 1 == len(nodeid) or nodeid[end + 1] == "@"):
        return None
    start = nodeid.find("[", test)
    if start < 0 or start > end:
        return None
    inner = nodeid[start + 1:end]
    at, corpus = max((inner.rfind(f"-{c}-", 0, len(inner) - 1), c) for c in CORPORA)
    model, strategy = inner[:at], inner[at + len(corpus) + 2:]
    if at <= 0 or not strategy or "]" in strategy:
        return None
    return model, corpus, strategy


def group_key(nodeid: str, by: str = "model-dataset") -> str | None:
    """The group a grid cell's node id belongs to (None: not a grid cell): its model, its model
    and corpus, its model, corpus and decoding (the cells that share generations: bon and w-bon
    one beam run, alm-v and w-alm-v another), or the cell itself."""
    parts = _cell_parts(nodeid)
    if parts is None:
        return None
    model, dataset, strategy = parts
    if by != "cell" and _is_chance(model):
        return "chance-baselines"  # milliseconds each: one worker takes them all
    if by == "model":
        return model
    if by == "model-dataset":
        return f"{model}-{dataset}"
    if by == "decoding":
        return f"{model}-{dataset}-{decoding_family(strategy)}"
    return f"[{model}-{dataset}-{strategy}]"


@functools.cache
def decoding_family(strategy: str) -> str:
    """Strategies whose generations are the same cache entries (same prompt and decoding) share
    a family: running them on different workers would compute those generations twice."""
    from harness.strategies import StrategyConfig, get_strategy

    try:
        s = get_strategy(strategy)
    except ValueError:  # registered in a conftest the controller has not read
        return strategy
    labels = ("a", "b")
    key = (s.prompt("iemocap", "t", labels), s.decoding(StrategyConfig(), labels).key(),
           type(s).results.__qualname__)
    return hashlib.sha256(repr(key).encode()).hexdigest()[:8]


def auto_group_by(gpus: int) -> str:
    """``model-dataset`` on a machine without GPUs or with one (a worker loading a model costs
    more than the cells it would take over); ``decoding`` with several GPUs, so that one model's
    cells keep every GPU busy."""
    return "decoding" if gpus > 1 else "model-dataset"


_GPU_ID = re.compile(r"\d+|(?:GPU|MIG)-[0-9A-Za-z/-]+")
_SMI_GPU = re.compile(r"GPU (\d+):")
_SMI_MIG = re.compile(r"\s+MIG .*\(UUID: (MIG-[0-9A-Za-z/-]+)\)")


def gpu_ids() -> list[str]:
    """The GPUs this run may use: HARNESS_GPUS, else CUDA_VISIBLE_DEVICES, else nvidia-smi -L.

    Raises:
        ValueError: HARNESS_GPUS names something that is not a GPU index or UUID (``abc`` or
            ``-1`` made CUDA see no GPU at all, and a model ran on the CPU without a word).
    """
    ours = os.environ.get("HARNESS_GPUS", "").strip()
    listed = ours or os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g.strip() for g in (listed or "").split(",") if g.strip()]
    wrong = [g for g in gpus if not _GPU_ID.fullmatch(g)] if ours else []
    if wrong:
        raise ValueError(f"HARNESS_GPUS={ours!r}: {wrong[0]!r} is not a GPU's index or UUID "
                         "(0, 1, ... or GPU-... / MIG-..., comma-separated)")
    if not gpus and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # a hung driver: no GPU to pin, not a hang
            return []
        gpus = _smi_devices(out.stdout)
    return gpus


def _smi_devices(listing: str) -> list[str]:
    """The devices of ``nvidia-smi -L``'s listing: each GPU's index (from its ``GPU N:`` line),
    or, for a GPU in MIG mode, its MIG devices' UUIDs (CUDA runs on a MIG device, never on its
    parent GPU: pinned to the index, a worker of a MIG machine saw no GPU)."""
    groups: list[tuple[str, list[str]]] = []
    for line in listing.splitlines():
        if gpu := _SMI_GPU.match(line):
            groups.append((gpu[1], []))
        elif (mig := _SMI_MIG.match(line)) and groups:
            groups[-1][1].append(mig[1])
    return [device for index, migs in groups for device in (migs or [index])]


def _is_chance(model: str) -> bool:
    from harness.models.registry import model_kind

    try:
        return model_kind(model) == "chance"
    except ValueError:  # a model registered in a conftest the controller has not read
        return False


def make_scheduler(config: pytest.Config, log: Any, by: str) -> Any:
    """An xdist scheduler that sends each group of cells to one worker (so it loads the model
    once) and spreads the groups over the workers; other tests as ``loadgroup`` would. It
    reads the node ids themselves: xdist's ``xdist_group`` rewrites node ids, which pytest 9.2
    no longer reads, so that mark kept nothing together."""
    from xdist.scheduler import LoadGroupScheduling

    if by == "auto":
        by = auto_group_by(len(gpu_ids()))

    class CellGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_key(nodeid, by) or super()._split_scope(nodeid)

    return CellGroupScheduling(config, log)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4); a usage error unless 1 <= I <= N."""
    index, slash, count = text.partition("/")
    if not (slash and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise pytest.UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/4")
    return int(index), int(count)


def shard_of(cell_ids: Sequence[str], count: int) -> dict[str, int]:
    """Each cell's shard (0-based), deterministic: whole models where there are at least as many
    models as shards, else whole model-corpus groups, else single cells; groups go largest first
    to the least-loaded shard (ties to the lower shard, names sorted)."""
    for by in ("model", "model-dataset", "cell"):
        groups: dict[str, list[str]] = {}
        for cell in sorted(cell_ids):
            groups.setdefault(group_key(f"x::test_cell[{cell}]", by) or cell, []).append(cell)
        if len(groups) >= count:
            break
    load = [0] * count
    out = {}
    for _, cells in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        target = min(range(count), key=lambda s: (load[s], s))
        load[target] += len(cells)
        out.update({cell: target for cell in cells})
    return out


def select_shard(config: pytest.Config, items: list[pytest.Item], text: str) -> None:
    """Keep only this shard's grid cells (other tests stay in shard 1); deselect the rest."""
    index, count = parse_shard(text)
    specs: dict[str, Any] = {item.nodeid: getattr(item, "callspec", None) for item in items}
    cells = {nodeid: spec.id for nodeid, spec in specs.items()
             if spec is not None and "cell" in spec.params}
    shards = shard_of(sorted(set(cells.values())), count)
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        shard = shards[cells[item.nodeid]] if item.nodeid in cells else 0
        (keep if shard == index - 1 else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pin_gpu(worker: str) -> None:
    """Worker gwN gets GPU N mod count, from HARNESS_GPUS or the GPUs present (before torch)."""
    gpus = gpu_ids()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(worker.removeprefix("gw")) % len(gpus)]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
BLAS_VARIABLES = {"openblas": "OPENBLAS_NUM_THREADS", "mkl": "MKL_NUM_THREADS"}  # by library
_USER_SET = {name for name in THREAD_VARIABLES if name in os.environ}


def worker_id(config: Any) -> str | None:
    """This process's xdist worker id (``gw0``), None where it is no worker: read from what xdist
    gave this session, not from ``PYTEST_XDIST_WORKER``, which a worker hands on to any pytest it
    starts (a ``pytest evals`` run by a test under ``-n`` is no worker of that run)."""
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def worker_count(config: Any) -> int:
    """How many workers share the cores: xdist's count on a worker, else 1."""
    workerinput = getattr(config, "workerinput", None)
    return 1 if workerinput is None else int(workerinput.get("workercount", 1) or 1)


def share_cores(workers: int = 1) -> None:
    """Each of N xdist workers (or the one process) gets cores // N threads (at least one) for
    torch and BLAS, unless the user set them: with -n 4 on 2 cores every worker took both, and
    the tiny model ran 4x slower in total than one process alone."""
    threads = max(1, usable_cores() // max(1, workers))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    limit_blas(threads)
    torch = sys.modules.get("torch")  # imported already (by a conftest): tell it directly
    if torch is not None and "OMP_NUM_THREADS" not in _USER_SET:
        torch.set_num_threads(threads)


def limit_blas(threads: int) -> None:
    """Hold the BLAS libraries loaded already (numpy's, loaded with this plugin) to ``threads``
    (threadpoolctl), each unless the user set its variable: such a library reads its variable
    once, when it loads, so the environment alone reaches only those loaded later. Without it
    every worker's OpenBLAS kept a thread per core, which spin on after numpy's products (one
    spent 150 ms of CPU in a 0.25 s cell)."""
    from threadpoolctl import ThreadpoolController

    libraries = [library for library, variable in BLAS_VARIABLES.items()
                 if variable not in _USER_SET]
    if libraries:
        ThreadpoolController().select(internal_api=libraries).limit(limits=threads)


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


@contextlib.contextmanager
def cores_while_running(folder: Path, worker: str) -> Iterator[Callable[[], None]]:
    """A local-model cell on an xdist worker takes cores // (local-model cells running now) torch
    threads, so that a worker left alone with the heavy cells uses every core while the others
    sit idle (the user's OMP_NUM_THREADS wins). Running cells are marked by files in ``folder``.

    Yields ``take_cores()``: torch imported already is told at once; otherwise the grid worker
    calls it just before it loads a model in this cell (harness.models.deferred), so that the
    model's first cell runs on the same threads as its later ones (float sums in one order,
    results equal to the last bit), and a cell whose answers are all cached imports no torch."""
    folder.mkdir(parents=True, exist_ok=True)
    mark = folder / worker
    mark.touch()
    try:
        running = max(1, sum(1 for _ in folder.iterdir()))

        def take_cores() -> None:
            torch = sys.modules.get("torch") or _torch_or_none()
            if torch is not None and "OMP_NUM_THREADS" not in _USER_SET:
                torch.set_num_threads(max(1, usable_cores() // running))

        if sys.modules.get("torch") is not None:
            take_cores()
        yield take_cores
    finally:
        mark.unlink(missing_ok=True)
