"""A decode step with static shapes, replayed from a CUDA graph on the GPU.

Eager decoding of a 7B model is launch-bound: bench/profile_decode.py measured about twice as
much CPU time as GPU time per step on an H200. Here every step has the same shapes: the cache
buffers allocated at the prefill are attended in full under a 4D additive mask, the new key and
value are written at a device-side index, and the inputs live in fixed tensors. So one step can be
captured once and replayed, across the batches of a call when the pooled cache buffers keep their
addresses; on the CPU (and where capture fails) the same step runs eagerly, which is how the
tests check it against the ordinary path.
"""

from __future__ import annotations

import contextlib
import warnings

ATTENTION_KERNELS = ("auto", "math", "efficient", "cudnn")


def attention_kernels(name: str):
    """A context choosing PyTorch's SDPA kernel for the decode step; ``auto`` leaves it to torch.

    One query per sequence against a masked buffer is a matrix-vector product; which kernel
    reads the cache fastest is measured by bench/gpu_throughput.py, not assumed.
    """
    if name == "auto":
        return contextlib.nullcontext()
    if name not in ATTENTION_KERNELS:
        raise ValueError(f"decode attention must be one of {ATTENTION_KERNELS}, not {name!r}")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"math": SDPBackend.MATH, "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION}[name]
    return sdpa_kernel([backend])


class StaticStep:
    """Callable like ``backend.step``: ``(tokens, mask, positions, cache) -> logits``.

    One object serves every batch of a ``generate`` call: :meth:`begin` starts a batch, and the
    first step binds to its cache (after beams or samples have repeated it). When that cache sits
    in the same buffers as the last batch's (a :class:`~harness.models._kv_cache.KVPool` keeps
    them), the graph captured on an earlier batch replays as is; otherwise the step's own tensors
    are rebuilt and, with ``graphs=True``, a new graph is captured at the first step.
    """

    def __init__(self, backend, graphs: bool) -> None:
        self.backend = backend
        self.graphs = graphs
        self.graph = None
        self.failure: str | None = None
        self.layers = None
        self.bound_to = None  # (sequences, buffer addresses) the step's tensors were built for
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
        key = (tokens.shape[0], tuple((x._k.data_ptr(), x._v.data_ptr(), x._k.shape)
                                      for x in layers))
        dtype, device = self.backend.dtype, tokens.device
        if key != self.bound_to:  # other buffers: new step tensors, and any graph is stale
            self.graph = None
            width = layers[0]._k.shape[2]
            self.mask = torch.empty((tokens.shape[0], 1, 1, width), dtype=dtype, device=device)
            self.index = torch.zeros(1, dtype=torch.long, device=device)
            self.tokens, self.positions = tokens.clone(), positions.clone()
            self.bound_to = key
            self.rebuilds += 1
        prompt = layers[0].length
        self.mask.fill_(torch.finfo(dtype).min)
        self.mask[:, 0, 0, :prompt] = torch.where(
            mask[:, :prompt].bool(), 0.0, torch.finfo(dtype).min).to(dtype)
        for layer in layers:
            layer.write_index = self.index
        self.layers, self.cache = layers, cache

    def _forward(self):
        b = self.backend
        with attention_kernels(b.decode_attention):
            hidden = b.lm(inputs_embeds=b.embed(self.tokens[:, None]), attention_mask=self.mask,
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
        step = self.layers[0].length
        self.mask[:, 0, 0, step] = 0.0
        self.index.fill_(step)
        self.tokens.copy_(tokens)
        self.positions.copy_(positions)
        logits = self._run()
        for layer in self.layers:
            layer.length = step + 1
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
