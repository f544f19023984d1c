"""A batch size that ran out of memory is not tried again by the same backend."""

from harness.models._batch_sizes import LearnedBatchSizes


def test_an_estimate_is_tried_whole_until_its_kind_ran_out_of_memory():
    sizes = LearnedBatchSizes()
    assert sizes.size((5, 40), 256) == 256 and sizes.halvings == 0
    sizes.learner((5, 40))(256, 128)
    assert sizes.size((5, 40), 256) == 128 and sizes.halvings == 1
    assert sizes.size((5, 40), 100) == 50  # the share that fitted, of a new estimate
    assert sizes.size((1, 40), 256) == 256  # another kind keeps its own


def test_halvings_in_a_row_compound_and_a_size_never_falls_below_one():
    sizes = LearnedBatchSizes()
    halved = sizes.learner("beam")
    halved(5, 2)
    halved(2, 1)
    assert sizes.size("beam", 5) == 1 and sizes.size("beam", 1) == 1
    assert sizes.halvings == 2
    halved(1, 0)  # never asked by batched, but not a division by zero either way
    assert sizes.size("beam", 1000) == 1
