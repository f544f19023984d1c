import contextlib
import warnings

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, Request  # noqa: E402
from harness.prompts import base_prompt  # noqa: E402
from tests.helpers import requests_for  # noqa: E402


@pytest.mark.parametrize("decoding", [
    Decoding(max_new_tokens=40),
    Decoding(mode="beam", num_candidates=4, max_new_tokens=40),
    Decoding(mode="sample", num_candidates=2, max_new_tokens=30, temperature=0.5, seed=4),
], ids=["greedy", "beam", "sample"])
def test_static_shape_step_decodes_like_the_ordinary_step(tiny, decoding):
    """The step a CUDA graph replays (full buffer, 4D mask, device-side write index), run eagerly."""
    _, reqs = requests_for("msp_podcast", 4)
    outputs = {mode: tiny.with_options(decode=mode).generate(reqs, decoding)
               for mode in ("eager", "static")}
    for a, b in zip(outputs["eager"], outputs["static"]):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert [c.logprob for c in a.candidates] == pytest.approx([c.logprob for c in b.candidates],
                                                                 abs=1e-4)



def test_constrained_beams_decode_alike_on_the_static_step(tiny):
    """On a GPU the grouped static step is the default: the JSON automaton follows its beams
    through the lineage (states move with the reorder, keys and values do not)."""
    dataset, reqs = requests_for("iemocap", 3)
    decoding = Decoding(mode="beam", num_candidates=3, max_new_tokens=48, constrained=True,
                        json_labels=tuple(dataset.labels))
    outputs = {mode: tiny.with_options(decode=mode).generate(reqs, decoding)
               for mode in ("eager", "static")}
    for a, b in zip(outputs["eager"], outputs["static"]):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert all(c.text.startswith("{") for c in b.candidates)
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
    outputs = {mode: tiny.with_options(decode=mode, batch_size=2).generate(reqs, decoding)
               for mode in ("eager", "static")}
    for a, b in zip(outputs["eager"], outputs["static"]):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert [c.logprob for c in a.candidates] == pytest.approx([c.logprob for c in b.candidates],
                                                                 abs=1e-4)
    # 4 batches (2+2+2+1 clips): the three of two clips share one set of buffers (keys and
    # values per layer, one row per clip: beams repeat nothing) within the slack; the last,
    # smaller one needs its own
    layers = tiny.lm.config.num_hidden_layers
    assert seen == [(2, 2 * 2 * layers)]



@pytest.mark.parametrize("together", [False, True])
def test_out_of_memory_drops_the_pooled_buffers_before_the_smaller_retry(tiny, monkeypatch,
                                                                       together):
    """One decoding, or two decoded together (``decode_together``): the retry's prefill finds
    the pool emptied."""
    import harness.models._shared_prefill as together_module
    import harness.models.fast_audio_lm as alone_module

    backend_module = together_module if together else alone_module
    _, reqs = requests_for("crema_d", 4)
    held_at_prefill = []
    prefill, decode = type(tiny).prefill, backend_module.decode_searches

    def spy_prefill(self, *args, **kwargs):
        held_at_prefill.append(len(self._pool.buffers))
        return prefill(self, *args, **kwargs)

    def decode_or_oom(step, state, searches):
        if state.logits.shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        return decode(step, state, searches)

    monkeypatch.setattr(type(tiny), "prefill", spy_prefill)
    monkeypatch.setattr(backend_module, "decode_searches", decode_or_oom)
    static = tiny.with_options(decode="static", batch_size=4, decode_together=together)
    decodings = [Decoding(max_new_tokens=6)] + [Decoding(mode="beam", num_candidates=2,
                                                         max_new_tokens=4)] * together
    with pytest.warns(UserWarning, match="batch size halved to 2"):
        out = static.generate_many(reqs, decodings)
    assert all(g.candidates and g.error is None for answers in out for g in answers)
    layers = tiny.lm.config.num_hidden_layers
    assert held_at_prefill == [0, 0, 2 * layers]  # released after the OOM, reused after that
    assert static._pool is None and static._static_step is None


@pytest.mark.parametrize("mode", ["static", "eager"])
def test_a_finished_call_frees_its_kv_caches_without_the_cycle_collector(tiny, monkeypatch, mode):
    """Each batch's cache (tens of GB on a GPU) goes when its batch is done: a reference cycle
    would keep it until Python's cycle collector happened to run, and the next batch, sized
    from free memory, would run out of it."""
    import gc
    import weakref

    import harness.models.fast_audio_lm as backend_module

    _, reqs = requests_for("crema_d", 4)
    caches = []

    def tracked(*args, **kwargs):
        cache = new_cache(*args, **kwargs)
        caches.append(weakref.ref(cache))
        return cache

    new_cache = backend_module.new_cache
    monkeypatch.setattr(backend_module, "new_cache", tracked)
    gc.collect()
    gc.disable()
    backend = tiny.with_options(decode=mode, batch_size=2)
    try:
        backend.generate(reqs, Decoding(max_new_tokens=4))
        backend.generate(reqs, Decoding(mode="beam", num_candidates=3, max_new_tokens=4))
        backend.label_logprobs(reqs, ["yes", "no"])
        alive = sum(ref() is not None for ref in caches)
    finally:
        gc.enable()
    # three calls of two batches; the first call's also prefilled its clips' audio in a cache
    # of its own (kept, copied out, for the calls after it: harness.models._heard_clips)
    assert len(caches) == 8 and alive == 0


def test_decode_attention_kernel_is_selectable_and_checked(tiny):
    from harness.models._static_step import attention_kernels

    _, reqs = requests_for("iemocap", 3)
    decoding = Decoding(max_new_tokens=20)
    reference = tiny.generate(reqs, decoding)
    assert tiny.options.attention == "matmul"  # deterministic and the fastest on an H200
    for kernel in ("auto", "math", "matmul"):
        chosen = tiny.with_options(decode="static", attention=kernel).generate(reqs, decoding)
        assert [g.candidates[0].text for g in chosen] == [g.candidates[0].text for g in reference]
        assert [g.candidates[0].logprob for g in chosen] == pytest.approx(
            [g.candidates[0].logprob for g in reference], abs=1e-4)
    with pytest.raises(ValueError, match="decode attention must be one of"):
        attention_kernels("flash-ish")


@pytest.mark.parametrize(("kernel", "kv_heads"), [("sdpa", 4), ("matmul", 4), ("matmul", 2)])
def test_grouped_attention_equals_attention_over_each_sequences_own_history(kernel, kv_heads):
    """Each clip's sequences attend its one row under their own masks: the same as attending a
    per-sequence copy of what each sequence sees (with grouped-query heads too)."""
    from harness.models._static_step import grouped_attention, grouped_attention_matmul

    attend = grouped_attention if kernel == "sdpa" else grouped_attention_matmul
    clips, group, heads, width, dim = 2, 3, 4, 11, 8
    query = torch.randn(clips * group, heads, 1, dim, dtype=torch.float64)
    key, value = (torch.randn(clips, kv_heads, width, dim, dtype=torch.float64) for _ in range(2))
    seen = torch.rand(clips, group, width) < 0.6
    seen[..., 0] = True
    mask = torch.zeros(clips, 1, group, width, dtype=torch.float64).masked_fill(
        ~seen[:, None], torch.finfo(torch.float64).min)
    out, _ = attend(None, query, key, value, mask, scaling=0.3)
    assert out.shape == (clips * group, 1, heads, dim)
    shared = heads // kv_heads  # query heads per key head
    for s in range(clips * group):
        c, b = divmod(s, group)
        keep = seen[c, b]
        k, v = (x[c].repeat_interleave(shared, 0)[:, keep] for x in (key, value))
        weights = torch.softmax(torch.einsum("hd,hld->hl", query[s, :, 0], k) * 0.3, dim=-1)
        expected = torch.einsum("hl,hld->hd", weights, v)
        assert torch.allclose(out[s, 0], expected, atol=1e-12)


def test_grouped_layout_switches_the_attention_and_puts_it_back(tiny):
    from harness.models._static_step import GROUPED_ATTENTION, grouped_layout

    config = tiny.lm.layers[0].self_attn.config
    before = config._attn_implementation
    with pytest.raises(RuntimeError, match="inside"), grouped_layout(tiny.lm):
        assert all(layer.self_attn.config._attn_implementation == GROUPED_ATTENTION
                   for layer in tiny.lm.layers)
        raise RuntimeError("inside")
    assert config._attn_implementation == before


def test_static_step_names_the_missing_room_for_new_tokens(tiny):
    dataset = load_dataset("iemocap")
    it = list(dataset)[0]
    decoding = Decoding(mode="beam", num_candidates=3, max_new_tokens=6, min_new_tokens=6)
    static = tiny.with_options(decode="static")
    state = static.prefill([it.load_audio()], [base_prompt("iemocap", it.transcript,
                                                           dataset.labels)], reserve=6)
    # room for 6 new tokens in all, where each of the 3 beams needs 6 of its own
    with torch.inference_mode(), pytest.raises(ValueError, match="decode_reserve"):
        static.decode(state, decoding)


def _grouped_cache(prompt: int, width: int, reserve: int, grouped: bool = True):
    """A one-layer cache as the static step sees it: two clips' rows of ``width`` positions."""
    from types import SimpleNamespace

    layer = SimpleNamespace(_k=torch.zeros(2, 1, width, 4), _v=torch.zeros(2, 1, width, 4),
                            length=prompt, reserve=reserve, grouped=grouped, write_index=None)
    return SimpleNamespace(layers=[layer], lineage=SimpleNamespace(table=None))


def test_the_static_step_binds_to_a_grouped_cache_with_a_slot_per_sequence(tiny):
    """Two clips of three beams, a 5-token prompt (the second clip's padded by two), room for 2
    new tokens per beam: the slots lie after the prompt, one per beam, and each sequence sees
    its clip's prompt less the padding. A row one position short, or a cache repeated per beam
    instead of grouped, is refused before anything is written."""
    from harness.models._static_step import StaticStep

    tokens, positions = torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long)
    mask = torch.ones(6, 5, dtype=torch.long)
    mask[3:, :2] = 0  # the second clip's prompt is left-padded
    for cache in (_grouped_cache(5, 10, reserve=6), _grouped_cache(5, 16, 6, grouped=False)):
        with pytest.raises(ValueError, match="needs a grouped cache with a slot of new tokens"):
            StaticStep(tiny, graphs=False)._bind(tokens, mask, positions, cache)
    step, cache = StaticStep(tiny, graphs=False), _grouped_cache(5, 11, reserve=6)
    step._bind(tokens, mask, positions, cache)
    assert step.slot_start.tolist() == [5, 7, 9]
    assert step.column_slot.tolist() == [-1] * 5 + [0, 0, 1, 1, 2, 2]
    assert step.column_step.tolist() == [0] * 5 + [0, 1] * 3
    assert step.prompt_seen.tolist() == [[True] * 5 + [False] * 6,
                                         [False] * 2 + [True] * 3 + [False] * 6]
    assert cache.layers[0].write_index is step.write and cache.lineage.table is step.lineage
    assert step.layers is cache.layers and step.begin() is step  # a new batch: bind again
    assert step.layers is None and step.cache is None
    step._bind(tokens, mask, positions, _grouped_cache(5, 13, reserve=6))  # room to spare
    assert step.column_slot.tolist() == [-1] * 5 + [0, 0, 1, 1, 2, 2] + [-1] * 2


def test_each_static_step_extends_the_caches_length_by_one_token(tiny):
    dataset = load_dataset("iemocap")
    it = list(dataset)[0]
    static = tiny.with_options(decode="static")
    decoding = Decoding(mode="beam", num_candidates=2, max_new_tokens=5, min_new_tokens=5)
    state = static.prefill([it.load_audio()], [base_prompt("iemocap", it.transcript,
                                                           dataset.labels)],
                           reserve=static.decode_reserve(decoding))
    prompt, step, lengths = state.cache.layers[0].length, static.static_step(False), []

    def recording(tokens, mask, positions, cache):
        logits = step(tokens, mask, positions, cache)
        lengths.append({layer.length for layer in cache.layers})
        return logits

    with torch.inference_mode():
        static.decode(state, decoding, step=recording)
    assert lengths == [{prompt + n} for n in range(1, 5)]


def test_the_decode_attention_kernel_chooses_the_grouped_attention_run(tiny, monkeypatch):
    """``matmul`` runs the two-product attention; the SDPA kernels run SDPA's."""
    import harness.models._static_step as static_step

    chosen, layout = [], static_step.grouped_layout

    def recording(lm, matmul=False):
        chosen.append(matmul)
        return layout(lm, matmul)

    monkeypatch.setattr(static_step, "grouped_layout", recording)
    _, reqs = requests_for("iemocap", 1)
    for kernel in ("matmul", "math"):
        chosen.clear()
        tiny.with_options(decode="static", attention=kernel).generate(reqs, Decoding(max_new_tokens=4))
        assert chosen and set(chosen) == {kernel == "matmul"}


def test_grouped_matmul_attention_of_16_bit_tensors_on_the_cpu(tiny):
    """bfloat16 keys and values on the CPU: the scores are taken in float32 (the GPU's
    accumulation), and the output is the float64 attention's to bfloat16's precision."""
    from harness.models._static_step import grouped_attention, grouped_attention_matmul

    clips, group, heads, width, dim = 2, 2, 4, 9, 8
    query = torch.randn(clips * group, heads, 1, dim).bfloat16()
    key, value = (torch.randn(clips, 2, width, dim).bfloat16() for _ in range(2))
    mask = torch.zeros(clips, 1, group, width, dtype=torch.bfloat16)
    out, _ = grouped_attention_matmul(None, query, key, value, mask, scaling=0.3)
    exact, _ = grouped_attention_matmul(None, query.double(), key.double(), value.double(),
                                        mask.double(), scaling=0.3)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.double(), exact, atol=3e-2)
    # no scaling given: 1/sqrt(dim), as SDPA takes it
    unscaled = [attend(None, query.double(), key.double(), value.double(), mask.double())[0]
                for attend in (grouped_attention_matmul, grouped_attention)]
    assert torch.allclose(*unscaled, atol=1e-12)


class _CpuGraphs:
    """torch.cuda's streams and graphs as the static step calls them, on the CPU: the capture
    runs the step once as a capture would not (the warm-up before it writes the same slot), and
    a replay runs it again into the logits tensor the capture made, which is what a replay
    rewrites. ``forwards`` says where each run of the step was: warm-up, capture or replay."""

    def __init__(self, backend, monkeypatch):
        from harness.models._static_step import StaticStep

        self.backend, self.replays, self.waits = backend, 0, []
        self.where, self.forwards = "eager", []
        main, side = self._stream("main"), self._stream("side")
        for name, fake in (("Stream", lambda: side), ("current_stream", lambda: main),
                           ("stream", lambda s: self._within("warm-up")),
                           ("CUDAGraph", lambda: self), ("graph", lambda g: self._within("capture"))):
            monkeypatch.setattr(torch.cuda, name, fake)
        forward = StaticStep._forward
        monkeypatch.setattr(StaticStep, "_forward",
                            lambda step: self.forwards.append(self.where) or forward(step))

    def _stream(self, name: str):
        waits = self.waits
        return type("Stream", (), {"name": name, "wait_stream": lambda self, other: waits.append(
            (self.name, other.name))})()

    @contextlib.contextmanager
    def _within(self, where: str):
        self.where = where
        try:
            yield
        finally:
            self.where = "eager"

    @property
    def captures(self) -> int:
        return self.forwards.count("capture")

    def replay(self):
        self.replays += 1
        step = self.backend._static_step
        with self._within("replay"):
            step.logits.copy_(step._forward())


def test_a_captured_step_is_replayed_for_every_token_and_recaptured_only_for_new_buffers(
        tiny, monkeypatch):
    """Seven clips in batches of two (three of them sharing pooled buffers, the last one not):
    two captures, one replay per decode step, the same beams as without graphs."""
    from harness.models._static_step import StaticStep

    items = list(load_dataset("iemocap"))[:7]
    reqs = [Request(it.load_audio()[: 16_000 + 1_000 * i], base_prompt("iemocap", it.transcript,
                                                                       load_dataset("iemocap").labels))
            for i, it in enumerate(items)]
    decoding = Decoding(mode="beam", num_candidates=3, max_new_tokens=12)
    graphed = tiny.with_options(decode="graph", batch_size=2)
    graphs, calls, steps = _CpuGraphs(graphed, monkeypatch), [], StaticStep.__call__
    monkeypatch.setattr(StaticStep, "__call__", lambda self, *a: calls.append(self) or steps(self, *a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed capture warns, and the static step tries none
        reference = tiny.with_options(decode="static", batch_size=2).generate(reqs, decoding)
        assert graphs.captures == 0
        del calls[:], graphs.forwards[:]
        outputs = graphed.generate(reqs, decoding)
    assert (graphs.captures, graphs.replays) == (2, len(calls)) and len(set(calls)) == 1
    assert calls[0].captures == 2
    # two warm-up runs on a side stream that waits for the work queued before it, and the
    # capture for them; the step never runs eagerly
    assert graphs.waits == [("side", "main"), ("main", "side")] * 2
    assert [w for w in graphs.forwards if w != "replay"] == ["warm-up", "warm-up", "capture"] * 2
    for a, b in zip(reference, outputs):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert [c.logprob for c in a.candidates] == pytest.approx([c.logprob for c in b.candidates],
                                                                 abs=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a capture of CPU tensors fails without CUDA")
def test_a_capture_that_fails_is_said_once_and_the_steps_run_eagerly(tiny):
    """On the CPU a capture fails: one warning for the call, not one per step, and the same
    tokens as the static step run eagerly."""
    _, reqs = requests_for("iemocap", 3)
    decoding = Decoding(mode="beam", num_candidates=2, max_new_tokens=8)
    reference = tiny.with_options(decode="static").generate(reqs, decoding)
    with pytest.warns(UserWarning, match="CUDA graph capture failed, decoding eagerly") as said:
        outputs = tiny.with_options(decode="graph").generate(reqs, decoding)
    assert len([w for w in said if "capture failed" in str(w.message)]) == 1
    assert [g.candidates[0].text for g in outputs] == [g.candidates[0].text for g in reference]
