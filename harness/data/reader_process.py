"""Clips read in a process of their own, into shared memory this process hands it.

A thread reading clips beside a busy one takes turns with it for the interpreter's lock: every
stat, open, read and close lets the lock go, and taking it back waits for the other thread's
next switch (5 ms). With a model that never lets the lock go (the benchmarks' instant model) the
two threads' work added up instead of overlapping. A process has its own interpreter: it reads,
hashes and decodes a chunk's clips on another core, writes the samples into blocks of the
runner's :class:`~harness.data.arena.Arena` (shared memory: their file descriptors are passed
over a Unix socket), and sends back only each clip's facts, error, or place in the blocks; this
process takes the lock twice a chunk instead of several times a clip.

One reader process serves a whole run process (:func:`shared_reader`; a grid's cells reuse it),
started at the first chunk that has clips to read. Whatever it cannot do is done by the caller as
before, in its own thread: a clip that does not fit in the blocks reserved for it (the
reservation assumes 16-bit samples at 16 kHz; a clip over a block, 65 s, never fits), a failure
that is not the clip's own :class:`~harness.data.problems.AudioError`, and every clip of a job
whose process died (it is started again for the next job, at most :data:`RESTARTS` times).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.data.arena import ARENA, Arena
from harness.data.audio import read_audio
from harness.data.clips import MEMO, first_sight, identity
from harness.data.problems import AudioError

RESTARTS = 3  # processes started per run process before its clips are read in threads for good
_PIECE = 1 << 15  # bytes per socket message: well under a Unix datagram socket's buffer
_MOST_FDS = 4096  # block descriptors one job may pass
_HEAD = struct.Struct("<Q")
_BOOT = "import sys; from harness.data.reader_process import serve; serve(int(sys.argv[1]))"

Task = tuple  # ("identity", path), ("first", path, identity) or ("samples", path)


def _send(sock: socket.socket, obj: object, fds: Sequence[int] = ()) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    head = _HEAD.pack(len(data)) + data[:_PIECE]
    if fds:
        socket.send_fds(sock, [head], list(fds))
    else:
        sock.sendall(head)
    for start in range(_PIECE, len(data), _PIECE):
        sock.sendall(data[start:start + _PIECE])


def _receive(sock: socket.socket, most_fds: int = 0) -> tuple[object, list[int]]:
    """One message and the descriptors that came with it; EOFError when the other end closed."""
    if most_fds:
        head, fds, _, _ = socket.recv_fds(sock, _HEAD.size + _PIECE, most_fds)
    else:
        head, fds = sock.recv(_HEAD.size + _PIECE), []
    if len(head) < _HEAD.size:
        raise EOFError("the other end closed")
    (size,) = _HEAD.unpack_from(head)
    parts, got = [head[_HEAD.size:]], len(head) - _HEAD.size
    while got < size:
        part = sock.recv(_PIECE)
        if not part:
            raise EOFError("the other end closed mid-message")
        parts.append(part)
        got += len(part)
    return pickle.loads(b"".join(parts)), fds


def blocks_for(sizes: Sequence[int], block: int) -> int:
    """Blocks to reserve for clips of these file sizes, packed in order as the reader packs them,
    each taken as 16-bit samples at the target rate, and one more for what that misjudges."""
    count, room = 0, 0
    for size in sizes:
        need = max(size - 44, 0) // 2
        if need > block:
            continue  # never fits: read by the caller
        if need > room:
            count, room = count + 1, block
        room -= need
    return count + 1


class ReaderProcess:
    """The parent's end: runs jobs of :data:`Task` in the reader process, one at a time."""

    def __init__(self, arena: Arena = ARENA) -> None:
        self.arena = arena
        self.started = 0
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._mapped: set[int] = set()  # serials of the blocks the process has mapped
        self._owner = os.getpid()  # a forked copy of this process starts a reader of its own
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The process's id while it runs."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running else None  # type: ignore[union-attr]

    @property
    def usable(self) -> bool:
        return self.arena.shared and (self._process is not None or self.started < RESTARTS)

    def run(self, tasks: Sequence[Task], sizes: Sequence[int] | None) -> list | None:
        """Each task's reply, its samples' place already a view of the reserved block (None
        where they did not fit); None when there is no process to do it (the caller reads).
        ``sizes``: the clip files' sizes, for the blocks to reserve (None: none)."""
        if self._owner != os.getpid():
            self._forget_parents()
        if not self.usable:
            return None
        with self._lock:
            blocks = self.arena.reserve(blocks_for(sizes, self.arena.block) if sizes else 0)
            try:
                replies = self._exchange(tasks, blocks)
            except (OSError, EOFError, pickle.PickleError):
                self.close()
                return None
        return [_placed(reply, blocks) for reply in replies]

    def let_go(self) -> None:
        """Have the process unmap the blocks the arena has let go of (a run's end), so that
        their memory goes back now rather than at the next run's first job."""
        if self.pid is not None and self._owner == os.getpid():
            self.run([], None)

    def _forget_parents(self) -> None:
        """In a forked copy: leave the parent's process and socket to the parent."""
        if self._sock is not None:
            self._sock.close()  # this copy's descriptor only
        self._sock, self._process, self._mapped = None, None, set()
        self.started, self._owner = 0, os.getpid()

    def _exchange(self, tasks: Sequence[Task], blocks: list[np.ndarray]) -> list:
        if self._process is None or self._process.poll() is not None:
            self._start()
        assert self._sock is not None
        handles = [self.arena.handle(b) for b in blocks]
        new = [h for h in handles if h is not None and h[0] not in self._mapped]
        dropped = [s for s in self.arena.take_dropped() if s in self._mapped]
        job = {"env": {k: v for k, v in os.environ.items() if k.startswith("HARNESS_")},
               "cwd": os.getcwd(),
               "new": [serial for serial, _ in new], "dropped": dropped,
               "blocks": [h[0] for h in handles if h is not None], "tasks": list(tasks)}
        _send(self._sock, job, [fd for _, fd in new])
        self._mapped.update(serial for serial, _ in new)
        self._mapped.difference_update(dropped)
        replies, _ = _receive(self._sock)
        if not isinstance(replies, list) or len(replies) != len(tasks):
            raise EOFError("the reader process answered out of turn")
        return replies

    def _start(self) -> None:
        self.close()
        self.started += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # the folder this harness is imported from comes first, as it does here
        where = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (where, os.environ.get("PYTHONPATH")) if p)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": path})
        self._sock, self._mapped = ours, set()

    def close(self) -> None:
        """End the process (it exits when its socket closes)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process = None


def _placed(reply: tuple, blocks: list[np.ndarray]) -> tuple:
    """The reply with its samples' place, (block, start, count), as a view of that block."""
    if reply[0] == "facts":
        return (*reply[:3], _view(reply[3], blocks))
    if reply[0] == "samples":
        return ("samples", _view(reply[1], blocks))
    return reply


def _view(where: tuple | None, blocks: list[np.ndarray]) -> np.ndarray | None:
    if where is None:
        return None
    k, start, count = where
    return blocks[k][start:start + count]


_SHARED: ReaderProcess | None = None
_SHARED_LOCK = threading.Lock()


def shared_reader() -> ReaderProcess:
    """The run process's reader (started at its first job, ended at exit)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            import atexit

            _SHARED = ReaderProcess()
            atexit.register(_SHARED.close)
        return _SHARED


# ---------------------------------------------------------------------------- the process's end


class _Space:
    """The blocks reserved for one job, filled in order."""

    def __init__(self, blocks: list[np.ndarray]) -> None:
        self.blocks, self.k, self.used = blocks, 0, 0
        self.last: tuple[int, int, int] | None = None

    def take(self, n: int) -> np.ndarray:
        self.last = None
        if self.k < len(self.blocks) and self.used + n > self.blocks[self.k].size:
            self.k, self.used = self.k + 1, 0
        if self.k >= len(self.blocks) or n > self.blocks[self.k].size:
            return np.empty(n, dtype=np.float32)  # no room: not handed back
        start, self.used = self.used, self.used + n
        self.last = (self.k, start, n)
        return self.blocks[self.k][start:self.used]

    def place(self, samples: np.ndarray) -> tuple[int, int, int] | None:
        """Where ``samples`` lie in the blocks: where :meth:`take` put them, or copied in."""
        last, self.last = self.last, None
        if last is not None and samples.size <= last[2] and _address(samples) == _address(
                self.blocks[last[0]][last[1]:]):
            return (last[0], last[1], samples.size)
        target = self.take(samples.size)
        if self.last is None:
            return None
        target[:] = samples
        return self.last


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def serve(fd: int) -> None:
    """The reader process: run jobs until the parent closes its end."""
    sock = socket.socket(fileno=fd)
    mapped: dict[int, np.ndarray] = {}
    while True:
        try:
            job, fds = _receive(sock, _MOST_FDS)
        except (EOFError, OSError):
            return
        assert isinstance(job, dict)
        for serial, block_fd in zip(job["new"], fds):
            try:
                mapped[serial] = np.frombuffer(mmap.mmap(block_fd, 0), dtype=np.float32)
            finally:
                os.close(block_fd)
        for serial in job["dropped"]:
            mapped.pop(serial, None)
        _use_environment(job["env"], job["cwd"])
        space = _Space([mapped[serial] for serial in job["blocks"]])
        _send(sock, [_do(task, space) for task in job["tasks"]])


def _use_environment(harness_env: dict[str, str], cwd: str) -> None:
    """The parent's settings and working folder (relative clip paths are the parent's)."""
    if os.getcwd() != cwd:
        os.chdir(cwd)
    for name in [k for k in os.environ if k.startswith("HARNESS_") and k not in harness_env]:
        del os.environ[name]
    os.environ.update(harness_env)


def _do(task: Task, space: _Space) -> tuple:
    """One task's reply: ("facts", digest, notes, place), ("samples", place), ("error", path,
    reason) for the clip's own AudioError, ("fallback",) for anything else."""
    try:
        if task[0] == "identity":
            return ("identity", identity(task[1]))
        if task[0] == "first":
            facts, samples = first_sight(task[1], key=task[2], out=space.take)
            MEMO.clear()  # the parent remembers it
            place = None if samples is None else space.place(samples)
            return ("facts", facts.digest, facts.notes, place)
        samples = read_audio(task[1], out=space.take)[0]
        place = space.place(samples)
        return ("samples", place) if place is not None else ("fallback",)
    except AudioError as exc:
        return ("error", exc.path, exc.reason)
    except Exception:  # the caller does it again, and meets the same failure where it reports
        return ("fallback",)
