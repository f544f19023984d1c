import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


def test_unwritten_cache_slots_are_zero_so_the_masked_full_buffer_stays_finite():
    """The static step attends the whole preallocated buffer; stale memory there (NaN) used to
    survive the additive mask and poison the softmax, so the buffer must start zeroed."""
    from harness.models._kv_cache import prefix_layer_class

    layer = prefix_layer_class()(reserve=6)
    k = torch.randn(2, 3, 4, 8)
    for _ in range(3):  # the first allocation, then a growth past the reserve
        layer.update(k, k.clone())
    assert layer.length == 12 and layer._k.shape[2] > 12
    assert torch.count_nonzero(layer._k[:, :, 12:]) == 0
    assert torch.count_nonzero(layer._v[:, :, 12:]) == 0

def test_kv_pool_reuses_a_buffer_within_its_slack_and_zeroes_what_was_left():
    from harness.models._kv_cache import KVPool

    pool = KVPool(slack=0.25, minimum_slack=2)
    like = torch.zeros(1)
    first = pool.take("k", (2, 3, 10, 4), like)
    first.fill_(float("nan"))
    again = pool.take("k", (2, 3, 9, 4), like, keep=5)
    assert again.data_ptr() == first.data_ptr() and pool.allocations == 1
    assert torch.isnan(again[:, :, :5]).all() and torch.count_nonzero(again[:, :, 5:]) == 0
    assert pool.take("k", (2, 3, 4, 4), like).shape[2] == 4  # too much slack: a new buffer
    assert pool.take("k", (4, 3, 4, 4), like).shape[0] == 4 and pool.allocations == 3
