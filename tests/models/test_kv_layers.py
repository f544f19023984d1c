"""The prealloc cache layer on its own: written in place, its views the filled prefix, repeated
for beams into pooled buffers, rows selected, a beam reorder that moves only the generated suffix
(never in the grouped layout), a fork that holds another layer's prompt, and its size."""

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models._kv_cache import KVPool, mark_shared_prefix  # noqa: E402
from harness.models._kv_layers import PrefixLayer  # noqa: E402


def states(batch, length, start=0.0):
    """Keys and values (batch, heads 2, length, dim 3), each position its own numbers."""
    keys = start + torch.arange(batch * 2 * length * 3, dtype=torch.float32).view(batch, 2, length, 3)
    return keys, -keys


def filled(batch=2, length=4, **options):
    layer = PrefixLayer(**options)
    layer.update(*states(batch, length))
    return layer


def decoder_config(layers):
    from transformers import Qwen2Config

    return Qwen2Config(num_hidden_layers=layers, hidden_size=8, num_attention_heads=2,
                       num_key_value_heads=1, intermediate_size=8, vocab_size=16)


def test_a_layer_starts_empty_and_its_views_are_what_was_written():
    layer = PrefixLayer(reserve=5)
    assert (layer.reserve, layer.length, layer.shared, layer.nbytes) == (5, 0, 0, 0)
    keys, values = states(2, 4)
    got_keys, got_values = layer.update(keys, values)
    assert torch.equal(got_keys, keys) and torch.equal(got_values, values)
    assert layer.get_seq_length() == 4 and layer._k.shape[2] == 16  # 4 + 5, aligned to 16
    assert layer.nbytes == 2 * 2 * 2 * 16 * 3 * 4  # keys and values, float32
    buffer, more = layer._k, states(2, 1, start=1000.0)
    layer.update(*more)
    assert torch.equal(layer.keys[:, :, 4:], more[0]) and layer.length == 5
    layer.update(*states(2, 11))  # exactly full: the same buffer, written in place
    assert layer._k is buffer and layer.length == 16


@pytest.mark.parametrize("pooled", [False, True])
def test_beams_repeat_each_clip_s_rows_in_place_or_into_the_pool(pooled):
    pool = KVPool() if pooled else None
    layer = filled(batch=3, pool=pool)  # 3 clips, 2 heads: no dimension mistaken for another
    keys = layer.keys.clone()
    layer.batch_repeat_interleave(3)
    assert layer.keys.shape == (9, 2, 4, 3) and layer.values.shape == (9, 2, 4, 3)
    assert torch.equal(layer.keys, keys.repeat_interleave(3, dim=0))
    assert torch.equal(layer.values, -keys.repeat_interleave(3, dim=0))
    if pooled:
        assert layer._k is pool.buffers[(0, "k", "repeated")]


def test_rows_are_selected_and_an_empty_layer_is_left_alone():
    layer = filled(batch=3)
    keys = layer.keys.clone()
    layer.batch_select_indices(torch.tensor([2, 0]))
    assert torch.equal(layer.keys, keys[[2, 0]]) and torch.equal(layer.values, -keys[[2, 0]])
    empty = PrefixLayer()
    empty.batch_select_indices(torch.tensor([0]))
    empty.batch_repeat_interleave(2)
    assert empty._k is None


def test_a_beam_reorder_moves_only_what_was_generated_after_the_shared_prompt():
    layer = filled(batch=2, length=3)
    cache = type("Cache", (), {"layers": [layer]})()
    mark_shared_prefix(cache)
    prompt = layer.keys.clone()
    layer.reorder_cache(torch.tensor([1, 1]))  # nothing generated yet: nothing moves
    assert torch.equal(layer.keys, prompt)
    layer.update(*states(2, 2, start=500.0))
    generated = layer.keys[:, :, 3:].clone()
    layer.reorder_cache(torch.tensor([1, 1]))
    assert torch.equal(layer.keys[:, :, :3], prompt)
    assert torch.equal(layer.keys[0, :, 3:], generated[1]) and torch.equal(layer.keys[1, :, 3:],
                                                                         generated[1])


def test_a_grouped_layer_never_moves_keys_on_a_reorder():
    layer = filled(batch=2, length=3, grouped=True)
    layer.update(*states(2, 2, start=500.0))
    keys = layer.keys.clone()
    layer.batch_repeat_interleave(3)  # grouped: one row per clip, whatever the beams
    layer.reorder_cache(torch.tensor([1, 0]))
    assert torch.equal(layer.keys, keys)


def test_an_adopting_layer_holds_the_other_s_prompt_in_its_buffers():
    theirs = filled()
    mine = PrefixLayer(reserve=2)
    mine.adopt(theirs)
    assert mine._k is theirs._k and mine.length == 4 and mine.is_initialized
    assert (mine.device, mine.dtype) == (theirs.device, theirs.dtype)
    assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)
    empty = PrefixLayer()
    empty.adopt(PrefixLayer())
    assert empty._k is None and empty.length == 0


def test_a_layer_that_outgrows_its_buffer_keeps_what_it_held():
    layer = PrefixLayer()
    assert layer.reserve == 0
    first, more = states(1, 4), states(1, 13, start=100.0)
    layer.update(*first)
    assert layer._k.shape[2] == 16
    layer.update(*more)  # 17 positions: a buffer of 32, the first 4 copied over
    assert layer._k.shape[2] == 32 and layer.length == 17
    assert torch.equal(layer.keys, torch.cat([first[0], more[0]], dim=2))
    assert torch.equal(layer.values, torch.cat([first[1], more[1]], dim=2))


def test_a_reused_pool_buffer_holds_nothing_stale_past_what_was_written():
    """A buffer taken back from the pool is zeroed past the keys written into it: the static
    step attends the whole buffer under a mask, and a NaN left there would survive the mask."""
    pool = KVPool()
    for kind in ("k", "v"):
        pool.buffers[(0, kind, "prompt")] = torch.full((2, 2, 16, 3), torch.nan)
    stale = pool.buffers[(0, "k", "prompt")]
    layer = PrefixLayer(pool=pool)
    keys, values = states(2, 1)  # one position: fewer than the heads, so neither is the other
    layer.update(keys, values)
    assert layer._k is stale  # reused, not a fresh allocation
    assert torch.equal(layer._k[:, :, :1], keys) and torch.equal(layer._v[:, :, :1], values)
    assert not layer._k[:, :, 1:].any() and not layer._v[:, :, 1:].any()


@pytest.mark.parametrize("mode", ["prealloc", "grouped"])
def test_a_fork_of_a_one_layer_cache_holds_its_prompt_in_the_same_layout(mode):
    from harness.models._kv_layers import fork_cache, new_cache

    config = decoder_config(1)
    pool = KVPool()
    cache = new_cache(config, 8, mode, pool)
    keys, values = states(2, 4)
    cache.layers[0].update(keys, values)
    fork = fork_cache(cache, config, 8)
    [layer] = fork.layers
    assert layer.grouped == (mode == "grouped") and layer.pool is pool and layer.reserve == 8
    assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)


def test_a_new_cache_has_a_layer_per_decoder_layer_and_refuses_an_unknown_mode():
    from harness.models._kv_layers import new_cache

    config = decoder_config(3)
    cache = new_cache(config)
    assert [(layer.reserve, layer.index, layer.grouped) for layer in cache.layers] == [
        (0, 0, False), (0, 1, False), (0, 2, False)]
    assert new_cache(config, 4, "grouped").layers[0].grouped
    with pytest.raises(ValueError, match=r"^cache mode must be one of \('prealloc', 'grouped'\), "
                                         r"not 'paged'$"):
        new_cache(config, mode="paged")
