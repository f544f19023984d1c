"""A decode step with static shapes, replayed from a CUDA graph on the GPU.

Eager decoding of a 7B model is launch-bound: bench/profile_decode.py measured about twice as
much CPU time as GPU time per step on an H200. Here every step has the same shapes: the cache is
grouped (harness.models._kv_cache), one row per clip holding the prompt once and then a slot of
new tokens per beam or sample; each clip's sequences are the queries of one attention over its
row, under a 4D additive mask built on the device from the prompt's padding and the beams'
lineage; the new keys and values are written at device-side positions; the inputs live in fixed
tensors. So one step can be captured once and replayed, across the batches of a call when the
pooled cache buffers keep their addresses; on the CPU (and where capture fails) the same step
runs eagerly, which is how the tests check it against the ordinary path.

The prompt is read once per clip, not once per beam, and a beam reorder moves no keys or
values: beam search reads and stores about a fifth of what a repeated cache costs.
"""

from __future__ import annotations

import contextlib
import warnings

from harness.models.fast_path import ATTENTION_KERNELS

GROUPED_ATTENTION = "harness-grouped-decode"  # registered with transformers' AttentionInterface
_REGISTERED: set[str] = set()  # the names registered so far (once per process)


def attention_kernels(name: str):
    """A context choosing PyTorch's SDPA kernel for the decode step; ``auto`` leaves it to torch,
    ``matmul`` bypasses SDPA (:func:`grouped_attention_matmul`).

    A clip's few queries (one per beam) against its masked row are a skinny matrix product;
    which kernel reads the cache fastest is measured by bench/gpu_throughput.py, not assumed.
    """
    if name not in ATTENTION_KERNELS:
        raise ValueError(f"decode attention must be one of {ATTENTION_KERNELS}, not {name!r}")
    if name in ("auto", "matmul"):
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"math": SDPBackend.MATH, "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION}[name]
    return sdpa_kernel([backend])


def grouped_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                      **kwargs):
    """Attention of a grouped cache (a transformers attention function).

    ``query`` (sequences, heads, 1, dim) holds each clip's ``group`` sequences next to each other;
    ``key``/``value`` (clips, kv heads, length, dim) are the clips' rows; ``attention_mask``
    (clips, 1, group, length) says which positions each sequence sees. Returns (sequences, 1,
    heads, dim), as transformers' own attention functions do.
    """
    import torch

    clips = key.shape[0]
    sequences, heads, _, dim = query.shape
    q = query.reshape(clips, sequences // clips, heads, dim).transpose(1, 2)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=key.shape[1] != heads)
    return out.transpose(1, 2).reshape(sequences, 1, heads, dim), None


def grouped_attention_matmul(module, query, key, value, attention_mask, scaling=None,
                             dropout=0.0, **kwargs):
    """:func:`grouped_attention` as two batched matrix products: scores accumulated and kept in
    float32 (as the fused kernels keep them), the cache read once in its own dtype, never
    converted (PyTorch's ``math`` SDPA converts 16-bit keys and values to float32 first)."""
    import torch

    clips, kv_heads, width, dim = key.shape
    sequences, heads = query.shape[:2]
    group, repeat = sequences // clips, heads // kv_heads
    # queries of one kv head side by side: (clips * kv heads, repeat * group, dim)
    q = query.reshape(clips, group, kv_heads, repeat, dim).permute(0, 2, 3, 1, 4)
    q = q.reshape(clips * kv_heads, repeat * group, dim)
    k = key.reshape(clips * kv_heads, width, dim).transpose(1, 2)
    scores = _float32_product(q, k).view(clips, kv_heads, repeat, group, width)
    scores = scores * (scaling if scaling is not None else dim ** -0.5)
    weights = torch.softmax(scores + attention_mask[:, :, None].to(scores.dtype), dim=-1)
    weights = weights.to(value.dtype).view(clips * kv_heads, repeat * group, width)
    out = torch.bmm(weights, value.reshape(clips * kv_heads, width, dim))
    out = out.view(clips, kv_heads, repeat, group, dim).permute(0, 3, 1, 2, 4)
    return out.reshape(sequences, 1, heads, dim), None


def _float32_product(a, b):
    """``a @ b``, at least in float32: 16-bit operands are multiplied as they are on the GPU
    (float32 accumulation and result), converted first elsewhere."""
    import torch

    if a.dtype not in (torch.float16, torch.bfloat16):
        return torch.bmm(a, b)
    if a.device.type != "cuda":
        return torch.bmm(a.float(), b.float())
    return torch.bmm(a, b, out_dtype=torch.float32)


@contextlib.contextmanager
def grouped_layout(lm, matmul: bool = False):
    """Within: ``lm``'s attention layers run :func:`grouped_attention` (or, with ``matmul``,
    :func:`grouped_attention_matmul`)."""
    name = GROUPED_ATTENTION + ("-matmul" if matmul else "")
    if name not in _REGISTERED:
        from transformers import AttentionInterface

        AttentionInterface.register(name, grouped_attention_matmul if matmul else grouped_attention)
        _REGISTERED.add(name)
    configs = {id(layer.self_attn.config): layer.self_attn.config for layer in lm.layers}
    previous = {key: config._attn_implementation for key, config in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation = name
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = previous[key]


class StaticStep:
    """Callable like ``backend.step``: ``(tokens, mask, positions, cache) -> logits``.

    One object serves every batch of a ``generate`` call: :meth:`begin` starts a batch, and the
    first step binds to its cache (grouped, after beams or samples have multiplied it). When that
    cache sits in the same buffers as the last batch's (a :class:`~harness.models._kv_cache.KVPool`
    keeps them), the graph captured on an earlier batch replays as is: everything that differs
    between batches (the prompt length, its padding) is written into the step's own tensors.
    Otherwise those tensors are rebuilt and, with ``graphs=True``, a new graph is captured.
    """

    def __init__(self, backend, graphs: bool) -> None:
        self.backend = backend
        self.graphs = graphs
        self.graph = None
        self.failure: str | None = None
        self.layers = None
        self.bound_to: tuple | None = None  # (sequences, slot size, buffers) the tensors' shape
        self.captures = 0
        self.rebuilds = 0

    def begin(self) -> StaticStep:
        """A new batch: the next call binds to its cache."""
        self.end()
        return self

    def end(self) -> None:
        """The batch is decoded: let go of its cache, so that memory it does not share with the
        pool is free before the next prefill."""
        self.layers = self.cache = None

    def _bind(self, tokens, mask, positions, cache) -> None:
        torch = self.backend._torch
        layers = cache.layers
        first = layers[0]
        clips, width = first._k.shape[0], first._k.shape[2]
        group = tokens.shape[0] // clips
        prompt, slot = first.length, first.reserve // group
        if not first.grouped or prompt + group * slot > width:
            raise ValueError("the static step needs a grouped cache with a slot of new tokens "
                             "per sequence: prefill with reserve=backend.decode_reserve(decoding)")
        key = (tokens.shape[0], slot, tuple((x._k.data_ptr(), x._v.data_ptr(), x._k.shape)
                                            for x in layers))
        if key != self.bound_to:  # other buffers: new step tensors, and any graph is stale
            self._build(tokens, positions, clips, group, slot, width)
            self.bound_to = key
        device = tokens.device
        self.slot_start.copy_(prompt + torch.arange(group, device=device) * slot)
        self.lineage.copy_(self.own[:, None].expand(-1, slot))
        self.prompt_seen.zero_()
        self.prompt_seen[:, :prompt] = mask[::group, :prompt].bool()
        offset = torch.arange(width, device=device) - prompt
        in_slots = (offset >= 0) & (offset < group * slot)
        self.column_slot.copy_(torch.where(in_slots, offset.div(slot, rounding_mode="floor"), -1))
        self.column_step.copy_(torch.where(in_slots, offset % slot, 0))
        for layer in layers:
            layer.write_index = self.write
        cache.lineage.table = self.lineage
        self.prompt, self.generated = prompt, 0
        self.layers, self.cache = layers, cache

    def _build(self, tokens, positions, clips: int, group: int, slot: int, width: int) -> None:
        """The step's fixed tensors (a captured graph reads and writes exactly these)."""
        torch = self.backend._torch
        device, long = tokens.device, torch.long
        self.graph = None
        self.tokens, self.positions = tokens.clone(), positions.clone()
        self.t = torch.zeros(1, dtype=long, device=device)  # the step: generated tokens so far
        self.slot_start = torch.zeros(group, dtype=long, device=device)  # in each clip's row
        self.write = torch.zeros(group, dtype=long, device=device)
        self.own = torch.arange(tokens.shape[0], device=device) % group  # each sequence's slot
        self.lineage = torch.zeros((tokens.shape[0], slot), dtype=long, device=device)
        self.prompt_seen = torch.zeros((clips, width), dtype=torch.bool, device=device)
        self.column_slot = torch.zeros(width, dtype=long, device=device)  # -1: not a slot
        self.column_step = torch.zeros(width, dtype=long, device=device)
        self.rebuilds += 1

    def _mask(self):
        """(clips, 1, group, width): each sequence sees its clip's prompt and, at each step so
        far, the slot its lineage names."""
        torch = self.backend._torch
        clips, width = self.prompt_seen.shape
        owner = self.lineage.view(clips, self.write.shape[0], -1)[:, :, self.column_step]
        own_history = (owner == self.column_slot) & (self.column_step <= self.t)
        seen = self.prompt_seen[:, None, :] | own_history
        dtype = self.backend.dtype
        return torch.zeros((), dtype=dtype, device=seen.device).masked_fill(
            ~seen, torch.finfo(dtype).min)[:, None]

    def _forward(self):
        b = self.backend
        self.write.copy_(self.slot_start + self.t)
        self.lineage.index_copy_(1, self.t, self.own[:, None])
        mask = self._mask()
        kernel = b.options.attention
        with attention_kernels(kernel), grouped_layout(b.lm, kernel == "matmul"):
            hidden = b.lm(inputs_embeds=b.embed(self.tokens[:, None]), attention_mask=mask,
                          position_ids=self.positions[:, None], use_cache=True,
                          **{b.cache_kw: self.cache}).last_hidden_state
        return b.lm_head(hidden[:, -1])

    def _capture(self):
        torch = self.backend._torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up: cuBLAS handles, autotuning (writes the same slot)
                self._forward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.logits = self._forward()
        return graph

    def __call__(self, tokens, mask, positions, cache):
        if self.layers is None:
            self._bind(tokens, mask, positions, cache)
        if self.generated == self.lineage.shape[1]:
            raise ValueError(f"the cache has room for {self.generated} new tokens per sequence; "
                             "prefill with reserve=backend.decode_reserve(decoding)")
        self.t.fill_(self.generated)
        self.tokens.copy_(tokens)
        self.positions.copy_(positions)
        logits = self._run()
        self.generated += 1
        for layer in self.layers:
            layer.length = self.prompt + self.generated
        return logits

    def _run(self):
        if self.graphs and self.graph is None and self.failure is None:
            try:
                self.graph = self._capture()
                self.captures += 1
            except Exception as exc:  # capture is an optimisation: fall back to eager
                self.failure = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"CUDA graph capture failed, decoding eagerly: {self.failure}",
                              stacklevel=3)
        if self.graph is not None:
            self.graph.replay()
            return self.logits
        return self._forward()
