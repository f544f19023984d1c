import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, Request  # noqa: E402
from harness.prompts import base_prompt  # noqa: E402


@pytest.mark.parametrize("decoding", [
    Decoding(max_new_tokens=40),
    Decoding(mode="beam", num_candidates=4, max_new_tokens=40),
    Decoding(mode="sample", num_candidates=2, max_new_tokens=30, temperature=0.5, seed=4),
], ids=["greedy", "beam", "sample"])
def test_static_shape_step_decodes_like_the_ordinary_step(tiny, decoding):
    """The step a CUDA graph replays (full buffer, 4D mask, device-side write index), run eagerly."""
    dataset = load_dataset("msp_podcast")
    reqs = [Request(it.load_audio(), base_prompt("msp_podcast", it.transcript, dataset.labels))
            for it in list(dataset)[:4]]
    outputs = {}
    for mode in ("eager", "static"):
        tiny.decode_mode = mode
        outputs[mode] = tiny.generate(reqs, decoding)
    tiny.decode_mode = "eager"
    for a, b in zip(outputs["eager"], outputs["static"]):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert [c.logprob for c in a.candidates] == pytest.approx([c.logprob for c in b.candidates],
                                                                 abs=1e-4)



def test_one_static_step_serves_every_batch_of_a_call_and_decodes_like_eager(tiny, monkeypatch):
    """Batches of a call reuse the pooled KV buffers, so the step (on a GPU, its CUDA graph) is
    built once per shape; shorter prompts in a reused, longer buffer decode the same."""
    dataset = load_dataset("iemocap")
    items = list(dataset)[:7]
    reqs = [Request(it.load_audio()[: 16_000 + 1_000 * i], base_prompt("iemocap", it.transcript,
                                                                       dataset.labels))
            for i, it in enumerate(items)]
    decoding = Decoding(mode="beam", num_candidates=3, max_new_tokens=12)
    seen = []
    release = type(tiny)._release_decoder

    def record(self):
        if self._static_step is not None:
            seen.append((self._static_step.rebuilds, self._pool.allocations))
        release(self)

    monkeypatch.setattr(type(tiny), "_release_decoder", record)
    outputs = {}
    try:
        tiny.batch_size = 2
        for mode in ("eager", "static"):
            tiny.decode_mode = mode
            outputs[mode] = tiny.generate(reqs, decoding)
    finally:
        tiny.decode_mode, tiny.batch_size = "eager", None
    for a, b in zip(outputs["eager"], outputs["static"]):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert [c.logprob for c in a.candidates] == pytest.approx([c.logprob for c in b.candidates],
                                                                 abs=1e-4)
    # 4 batches (2+2+2+1 clips): the three of two clips share one set of buffers (prompt and
    # repeated, keys and values, per layer) within the slack; the last, smaller one needs its own
    layers = tiny.lm.config.num_hidden_layers
    assert seen == [(2, 2 * 4 * layers)]



def test_out_of_memory_drops_the_pooled_buffers_before_the_smaller_retry(tiny, monkeypatch):
    import harness.models.hf_qwen2_audio as backend_module

    dataset = load_dataset("crema_d")
    reqs = [Request(it.load_audio(), base_prompt("crema_d", it.transcript, dataset.labels))
            for it in list(dataset)[:4]]
    held_at_prefill = []
    prefill, sample = type(tiny).prefill, backend_module.sample

    def spy_prefill(self, *args, **kwargs):
        held_at_prefill.append(len(self._pool.buffers))
        return prefill(self, *args, **kwargs)

    def sample_or_oom(step, state, *args, **kwargs):
        if state.logits.shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        return sample(step, state, *args, **kwargs)

    monkeypatch.setattr(type(tiny), "prefill", spy_prefill)
    monkeypatch.setattr(backend_module, "sample", sample_or_oom)
    try:
        tiny.decode_mode, tiny.batch_size = "static", 4
        with pytest.warns(UserWarning, match="batch size halved to 2"):
            out = tiny.generate(reqs, Decoding(max_new_tokens=6))
    finally:
        tiny.decode_mode, tiny.batch_size = "eager", None
    assert all(g.candidates and g.error is None for g in out)
    layers = tiny.lm.config.num_hidden_layers
    assert held_at_prefill == [0, 0, 2 * layers]  # released after the OOM, reused after that
    assert tiny._pool is None and tiny._static_step is None


def test_decode_attention_kernel_is_selectable_and_checked(tiny):
    from harness.models._static_step import attention_kernels

    dataset = load_dataset("iemocap")
    reqs = [Request(it.load_audio(), base_prompt("iemocap", it.transcript, dataset.labels))
            for it in list(dataset)[:3]]
    decoding = Decoding(max_new_tokens=20)
    reference = tiny.generate(reqs, decoding)
    try:
        tiny.decode_mode, tiny.decode_attention = "static", "math"
        with_math = tiny.generate(reqs, decoding)
    finally:
        tiny.decode_mode, tiny.decode_attention = "eager", "auto"
    assert [g.candidates[0].text for g in with_math] == [g.candidates[0].text for g in reference]
    with pytest.raises(ValueError, match="decode attention must be one of"):
        attention_kernels("flash-ish")
