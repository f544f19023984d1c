import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


def test_unwritten_cache_slots_are_zero_so_the_masked_full_buffer_stays_finite():
    """The static step attends the whole preallocated buffer; stale memory there (NaN) used to
    survive the additive mask and poison the softmax, so the buffer must start zeroed."""
    from harness.models._kv_layers import PrefixLayer

    layer = PrefixLayer(reserve=6)
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


def test_kv_pool_slack_bounds_are_inclusive_and_the_defaults_a_quarter_or_64():
    from types import SimpleNamespace

    from harness.models._kv_cache import KVPool

    pool, like = KVPool(), torch.zeros(1)
    assert (pool.slack, pool.minimum_slack) == (0.25, 64)
    for need, room in ((1000, 1250), (100, 164)):  # a quarter more, or 64 more when that is more
        kept = pool.take(need, (1, 1, room, 2), like)
        assert pool.take(need, (1, 1, room, 2), like) is kept  # the same shape
        kept.fill_(1.0)
        assert pool.take(need, (1, 1, need, 2), like) is kept  # just enough, and a room's worth
        assert torch.count_nonzero(kept) == 0  # keep=0: all of it zeroed
        assert pool.take(need, (1, 1, need - 1, 2), like) is not kept  # a row too much
    taken = []

    def new_zeros(shape):
        taken.append("old" in pool.buffers)  # the old buffer is let go of first
        return torch.zeros(shape)

    pool.take("old", (1, 1, 4, 2), like)
    pool.take("old", (2, 1, 4, 2), SimpleNamespace(dtype=like.dtype, device=like.device,
                                                   new_zeros=new_zeros))
    assert taken == [False]


def test_lineage_reorder_copies_table_rows_and_waits_for_its_table():
    from harness.models._kv_cache import Lineage

    lineage = Lineage()
    lineage.reorder(torch.tensor([1, 0]))  # before the first step: no history to move
    lineage.table = torch.tensor([[0, 0, 1], [1, 1, 1]])
    lineage.reorder(torch.tensor([1, 1]))
    assert lineage.table.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_grouped_cache_holds_each_clips_prompt_once_whatever_the_beams():
    from transformers import Qwen2Config

    from harness.models._kv_layers import new_cache

    config = Qwen2Config(num_hidden_layers=2, hidden_size=24, num_attention_heads=3)
    cache = new_cache(config, reserve=3 * 4 + 5, mode="grouped")
    for layer in cache.layers:
        layer.update(torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8))
    before = [(layer._k.data_ptr(), layer._k.shape) for layer in cache.layers]
    cache.batch_repeat_interleave(3)  # three beams per clip
    cache.reorder_cache(torch.tensor([2, 0, 1, 3, 3, 5]))  # moves no keys (no lineage table yet)
    assert [(layer._k.data_ptr(), layer._k.shape) for layer in cache.layers] == before
    assert all(layer._k.shape[0] == 2 for layer in cache.layers)  # one row per clip
    assert cache.layers[0]._k.shape[2] % 16 == 0 and cache.layers[0]._k.shape[2] >= 5 + 3 * 4


def test_a_non_finite_beam_in_a_grouped_row_does_not_spoil_its_neighbours():
    """Beams of a clip share its cache row; one beam's NaN key or infinite value, masked out
    for the others, must not reach their attention (NaN survives an additive mask)."""
    from harness.models._kv_layers import PrefixLayer
    from harness.models._static_step import grouped_attention

    layer = PrefixLayer(reserve=4, grouped=True)
    layer.update(torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8))  # one clip, 3 prompt tokens
    layer.batch_repeat_interleave(2)
    layer.write_index = torch.tensor([3, 5])  # step 0 of slot 0 and of slot 1 (2 tokens each)
    new_k, new_v = torch.randn(2, 2, 1, 8), torch.randn(2, 2, 1, 8)
    new_k[1, 0, 0, 0], new_v[1, 1, 0, 2] = float("nan"), float("inf")  # beam 1 goes bad
    new_v[1, 0, 0, 1] = -float("inf")
    keys, values = layer.update(new_k, new_v)
    assert keys[0, 0, 5, 0] == values[0, 1, 5, 2] == values[0, 0, 5, 1] == 0  # stored as 0
    seen = torch.zeros(1, 1, 2, keys.shape[2], dtype=torch.bool)
    seen[..., :3] = True
    seen[0, 0, 0, 3] = seen[0, 0, 1, 5] = True  # each beam sees the prompt and its own token
    mask = torch.zeros(seen.shape).masked_fill(~seen, torch.finfo(torch.float32).min)
    out, _ = grouped_attention(None, torch.randn(2, 2, 1, 8), keys, values, mask, scaling=0.3)
    assert torch.isfinite(out[0]).all()


def test_the_shared_prefix_is_marked_on_the_layers_that_keep_one_and_no_other():
    from types import SimpleNamespace

    from harness.models._kv_cache import mark_shared_prefix

    ours, other = SimpleNamespace(shared=0, length=5), SimpleNamespace(length=3)
    mark_shared_prefix(SimpleNamespace(layers=[ours, other]))
    assert ours.shared == 5 and not hasattr(other, "shared")
    mark_shared_prefix(object())  # a cache without layers: left as it is
