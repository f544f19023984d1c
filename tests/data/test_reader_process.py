"""The reader process: it writes into the blocks reserved for it, lets go of the blocks the run
lets go of, and is started again after it dies."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harness.data.arena import SHAREABLE, Arena
from harness.data.audio import read_audio
from harness.data.reader_process import ReaderProcess, blocks_for

pytestmark = pytest.mark.skipif(not SHAREABLE, reason="shared blocks need memfd_create (Linux)")


def mapped_blocks(pid: int) -> int:
    return sum("harness-arena" in line for line in Path(f"/proc/{pid}/maps").read_text().splitlines())


def clips(folder, count=3, seconds=1.0):
    rng = np.random.default_rng(3)
    paths = []
    for n in range(count):
        path = folder / f"c{n}.wav"
        sf.write(str(path), rng.uniform(-0.5, 0.5, int(16_000 * seconds)), 16_000, subtype="PCM_16")
        paths.append(str(path))
    return paths


def test_blocks_are_reserved_as_the_reader_packs_clips():
    block = 1000
    assert blocks_for([], block) == 1  # one spare
    assert blocks_for([44 + 2 * 600, 44 + 2 * 600], block) == 3  # two do not share a block
    assert blocks_for([44 + 2 * 400] * 5, block) == 4  # two a block, and a spare
    assert blocks_for([44 + 2 * 5000], block) == 1  # over a block: read by the caller


def test_the_reader_writes_into_the_reserved_blocks_and_lets_go_of_trimmed_ones(tmp_path):
    arena = Arena(block=40_000, shared=True)
    reader = ReaderProcess(arena)
    try:
        paths = clips(tmp_path)
        sizes = [os.path.getsize(p) for p in paths]
        replies = reader.run([("samples", p) for p in paths], sizes)
        assert all(np.array_equal(r[1], read_audio(p)[0]) for r, p in zip(replies, paths))
        assert all(arena.handle(r[1].base) is not None for r in replies)  # views of its blocks
        held = mapped_blocks(reader.pid)
        assert held == arena.blocks >= 2
        del replies
        arena.trim(keep=0)
        reader.let_go()  # as a run's end does
        assert arena.blocks == 0 and mapped_blocks(reader.pid) == 0
    finally:
        reader.close()


def test_a_reader_that_died_is_started_again(tmp_path):
    reader = ReaderProcess(Arena(block=40_000, shared=True))
    try:
        paths = clips(tmp_path, count=1)
        assert reader.run([("identity", paths[0])], None)[0][0] == "identity"
        pid = reader.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while reader.pid == pid and time.monotonic() < deadline:  # until it is gone
            time.sleep(0.01)
        replies = reader.run([("samples", paths[0])], [os.path.getsize(paths[0])])
        assert reader.started == 2 and np.array_equal(replies[0][1], read_audio(paths[0])[0])
    finally:
        reader.close()
    assert reader.pid is None


def test_a_forked_copy_of_the_run_starts_a_reader_of_its_own(tmp_path):
    reader = ReaderProcess(Arena(block=40_000, shared=True))
    try:
        path = clips(tmp_path, count=1)[0]
        reader.run([("identity", path)], None)
        parents = reader.pid
        child = os.fork()
        if child == 0:  # the copy: its own reader, the parent's left alone
            ok = reader.run([("identity", path)], None)[0][0] == "identity"
            os._exit(0 if ok and reader.pid not in (None, parents) else 1)
        deadline, (done, status) = time.monotonic() + 30, (0, 0)
        while not done:
            if time.monotonic() > deadline:
                os.kill(child, signal.SIGKILL)
            time.sleep(0.01)
            done, status = os.waitpid(child, os.WNOHANG)
        assert os.waitstatus_to_exitcode(status) == 0
        assert reader.run([("identity", path)], None)[0][0] == "identity"
        assert reader.pid == parents
    finally:
        reader.close()
