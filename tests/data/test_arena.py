import numpy as np

from harness.data.arena import Arena


def test_a_block_is_reused_only_once_no_clip_of_it_lives():
    arena = Arena(block=100)
    first = arena.take(60)
    first[:] = 1.0
    arena.take(60)                 # a second block: 60 more do not fit in the first
    view_of_view = first[10:20]    # a view of the clip keeps its block too
    del first
    arena.take(60)                 # a third: the first block still has a live clip
    assert arena.blocks == 3
    del view_of_view
    reused = arena.take(60)        # now the first block is free
    assert arena.blocks == 3 and reused.base is not None


def test_a_live_clip_is_never_overwritten():
    arena = Arena(block=64)
    kept = [arena.take(40) for _ in range(3)]
    for n, clip in enumerate(kept):
        clip[:] = n
    for _ in range(20):
        arena.take(40)[:] = -1.0   # taken and dropped at once: reused freely
    assert [float(c.mean()) for c in kept] == [0.0, 1.0, 2.0]


def test_a_clip_longer_than_a_block_gets_memory_of_its_own_and_trim_lets_blocks_go():
    arena = Arena(block=10)
    assert arena.take(11).size == 11 and arena.blocks == 0
    clips = [arena.take(8) for _ in range(4)]
    del clips
    arena.take(8)
    arena.trim(keep=1)
    assert arena.blocks <= 2  # the current block and one free one
    assert np.shares_memory(arena.take(2), arena.take(1)) is False


def test_clips_fill_a_block_exactly_before_the_next_one_is_taken():
    arena = Arena(block=100)
    whole = arena.take(100)  # a clip of a block's size is carved from one
    assert whole.size == 100 and arena.blocks == 1
    again = Arena(block=100)
    first, second = again.take(60), again.take(40)
    assert (first.size, second.size, again.blocks) == (60, 40, 1)
    assert np.shares_memory(first.base, second.base) and not np.shares_memory(first, second)
    assert again.take(1).size == 1 and again.blocks == 2
