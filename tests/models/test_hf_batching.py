"""How many clips a batch holds (an estimate from free memory) and how a batch that runs out of
memory or fails is retried (harness.models._hf_common: ``clips_per_batch``, ``batched``)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")


def test_batch_size_estimate_counts_the_copies_each_decoding_keeps():
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    qwen_7b = SimpleNamespace(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                              hidden_size=4096, intermediate_size=11008)
    per_clip_greedy = (2 * 32 * 32 * 128 * 2 * (342 + 40)  # keys and values of one sequence
                       + 342 * (3 * 11008 + 6 * 4096) * 2 + 156_032 * 4 * 6)
    free = int(100 * per_clip_greedy / 0.6) + 1
    assert clips_per_batch(free, qwen_7b, 342, 40, 1, 156_032) == 100
    beam = clips_per_batch(free, qwen_7b, 342, 40, 5, 156_032)
    assert 100 / 6 - 1 < beam < 100 / 5  # five beams plus the prompt copy they came from
    assert clips_per_batch(10**15, qwen_7b, 342, 40, 1, 156_032) == 256  # capped
    assert clips_per_batch(0, qwen_7b, 342, 40, 1, 156_032) == 1


def test_batch_size_estimate_counts_the_prompt_once_in_a_grouped_cache():
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    qwen_7b = SimpleNamespace(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                              hidden_size=4096, intermediate_size=11008)
    per_token = 2 * 32 * 32 * 128 * 2
    per_clip_beam = (per_token * (342 + 5 * 40)  # the prompt once, forty new tokens per beam
                     + 342 * (3 * 11008 + 6 * 4096) * 2 + 5 * 156_032 * 4 * 6)
    free = int(50 * per_clip_beam / 0.6) + 1
    assert clips_per_batch(free, qwen_7b, 342, 40, 5, 156_032, shared_prompt=True) == 50
    assert clips_per_batch(free, qwen_7b, 342, 40, 5, 156_032) < 50 / 3  # six prompt copies


def _requests(n):
    import numpy as np

    from harness.models import Request

    return [Request(np.zeros(100 * (n - i), np.float32), "", f"r{i}") for i in range(n)]


def test_a_batch_that_defers_its_results_is_read_after_the_next_batch_is_queued():
    from harness.models._hf_common import batched

    events = []

    def run(chunk):
        names = [r.item_id for r in chunk]
        events.append(("queued", names[0]))

        def read():
            events.append(("read", names[0]))
            return names
        return read

    out = batched(_requests(5), run, 2, torch, on_error=lambda _, reason: reason)
    assert out == [f"r{i}" for i in range(5)]
    assert events == [("queued", "r0"), ("queued", "r2"), ("read", "r0"), ("queued", "r4"),
                      ("read", "r2"), ("read", "r4")]


def test_a_deferred_read_that_fails_is_retried_one_request_at_a_time():
    from harness.models._hf_common import batched

    def run(chunk):
        names = [r.item_id for r in chunk]

        def read():
            if "r2" in names:
                raise RuntimeError("device fault")
            return names
        return read

    out = batched(_requests(5), run, 2, torch, on_error=lambda r, reason: f"{r.item_id}: {reason}")
    assert out == ["r0", "r1", "r2: RuntimeError: device fault", "r3", "r4"]


def test_out_of_memory_halves_the_batch_down_to_one_clip_and_one_that_never_fits_fails_alone():
    from harness.models._hf_common import batched

    sizes = []

    def run(chunk):
        sizes.append(len(chunk))
        if len(chunk) > 1 or chunk[0].item_id == "r0":
            raise torch.cuda.OutOfMemoryError("simulated")
        return [r.item_id for r in chunk]

    halvings = []
    with pytest.warns(UserWarning) as warned:
        out = batched(_requests(5), run, 4, torch, on_error=lambda r, why: f"{r.item_id}: {why}",
                      on_halved=lambda tried, fitted: halvings.append((tried, fitted)))
    assert [str(w.message) for w in warned] == ["out of GPU memory: batch size halved to 2",
                                                "out of GPU memory: batch size halved to 1"]
    assert sizes == [4, 2, 1, 1, 1, 1, 1]
    assert halvings == [(4, 2), (2, 1)]  # a single clip that does not fit halves nothing
    assert out == ["r0: out of GPU memory for a single clip", "r1", "r2", "r3", "r4"]


def test_a_batch_size_below_one_runs_one_clip_at_a_time():
    from harness.models._hf_common import batched

    sizes = []
    out = batched(_requests(3), lambda chunk: sizes.append(len(chunk)) or [r.item_id for r in chunk],
                  0, torch, on_error=lambda r, why: why)
    assert out == ["r0", "r1", "r2"] and sizes == [1, 1, 1]


def test_a_config_s_own_head_dim_and_kv_heads_size_the_cache():
    """Where ``head_dim`` is not hidden size over heads (Qwen3's 128 at 2048 / 32) it is the one
    counted; a config without ``num_key_value_heads`` counts every head."""
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    wide = SimpleNamespace(num_hidden_layers=2, num_attention_heads=32, num_key_value_heads=4,
                           head_dim=128, hidden_size=2048, intermediate_size=0)
    per_clip = 2 * 2 * 4 * 128 * 2 * (100 + 10) + 100 * 6 * 2048 * 2 + 1 * 1000 * 4 * 6
    free = int(7 * per_clip / 0.6) + 1
    assert clips_per_batch(free, wide, 100, 10, 1, 1000) == 7
    every_head = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, head_dim=128,
                                 hidden_size=2048, intermediate_size=0)
    assert clips_per_batch(free, every_head, 100, 10, 1, 1000) == 7


def test_a_retry_after_out_of_memory_reads_the_queued_batch_and_empties_the_cache_first():
    """The batch queued before the one that ran out is read (its device tensors let go of) and
    the allocator's cache emptied before the halved retry is queued."""
    from types import SimpleNamespace

    from harness.models._hf_common import batched

    class OutOfMemory(Exception):
        pass

    events = []
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(
        OutOfMemoryError=OutOfMemory, empty_cache=lambda: events.append("empty cache")))

    def run(chunk):
        names = [r.item_id for r in chunk]
        if len(chunk) > 1 and names[0] != "r0":
            raise OutOfMemory
        events.append(("queued", *names))
        return lambda: events.append(("read", *names)) or names

    with pytest.warns(UserWarning, match="halved to 1"):
        out = batched(_requests(4), run, 2, fake_torch, on_error=lambda r, why: why)
    assert out == ["r0", "r1", "r2", "r3"]
    assert events == [("queued", "r0", "r1"), ("read", "r0", "r1"), "empty cache",
                      ("queued", "r2"), ("queued", "r3"), ("read", "r2"), ("read", "r3")]


def test_free_gpu_memory_counts_what_the_allocator_holds_unused(monkeypatch):
    from harness.models._hf_common import free_gpu_bytes

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 80_000))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 700)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 200)
    assert free_gpu_bytes("cuda:0") == 1000 + 700 - 200


def test_a_repeated_cache_counts_each_sequence_and_the_prompt_copy_they_came_from():
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    config = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                             hidden_size=256, intermediate_size=0)
    per_token = 2 * 2 * 4 * 64 * 2
    for sequences, copies in ((1, 1), (2, 3), (5, 6)):
        per_clip = per_token * (100 + 10) * copies + 100 * 6 * 256 * 2 + sequences * 1000 * 24
        free = int(9 * per_clip / 0.6) + 1
        assert clips_per_batch(free, config, 100, 10, sequences, 1000) == 9, sequences


def test_a_deferred_read_of_one_request_that_fails_is_not_run_again():
    from harness.models._hf_common import batched

    runs = []

    def run(chunk):
        runs.append(chunk[0].item_id)

        def read():
            if chunk[0].item_id == "r1":
                raise ValueError("bad logits")
            return [chunk[0].item_id]
        return read

    out = batched(_requests(3), run, 1, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert out == ["r0", "r1: ValueError: bad logits", "r2"] and runs == ["r0", "r1", "r2"]


def test_a_request_that_raises_at_once_in_a_batch_of_one_fails_alone():
    from harness.models._hf_common import batched

    def run(chunk):
        if chunk[0].item_id == "r1":
            raise RuntimeError("CUDA error: device-side assert")
        return [chunk[0].item_id]

    runs = []
    counted = lambda chunk: runs.append(chunk[0].item_id) or run(chunk)  # noqa: E731
    out = batched(_requests(3), counted, 1, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert out == ["r0", "r1: RuntimeError: CUDA error: device-side assert", "r2"]
    assert runs == ["r0", "r1", "r2"]  # not run again on its own: it was on its own


def test_a_batch_that_raises_at_once_is_retried_singly_after_the_queued_batch_is_read():
    from harness.models._hf_common import batched

    events = []

    def run(chunk):
        names = [r.item_id for r in chunk]
        if len(chunk) > 1 and "r3" in names:
            raise RuntimeError("shape mismatch")
        if names == ["r3"]:
            raise ValueError("bad clip")
        events.append(("queued", *names))
        return lambda: events.append(("read", *names)) or names

    out = batched(_requests(4), run, 2, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert out == ["r0", "r1", "r2", "r3: ValueError: bad clip"]
    assert events[:3] == [("queued", "r0", "r1"), ("read", "r0", "r1"), ("queued", "r2")]


def test_batches_order_clips_longest_first_then_prompts_keeping_a_clip_s_requests_together():
    """Among clips as long, the longest prompts first, so that a batch pads its rows little; a
    verifier's requests of one clip stay next to each other (they share its prefill)."""
    from types import SimpleNamespace

    from harness.models._hf_common import length_order

    short, long_a, long_b = np.zeros(3), np.zeros(5), np.zeros(5)
    requests = [SimpleNamespace(audio=a, prompt=p) for a, p in (
        (short, "x" * 90), (long_a, "x" * 10), (long_b, "x" * 20), (long_a, "x" * 30),
        (long_b, "x" * 5), (long_a, "x" * 1))]
    assert length_order(requests) == [1, 3, 5, 2, 4, 0]
    same = [SimpleNamespace(audio=np.zeros(4), prompt="p") for _ in range(3)]
    assert length_order(same) == [0, 1, 2]  # ties keep the given order
