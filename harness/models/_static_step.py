"""A decode step with static shapes, replayed from a CUDA graph on the GPU.

Eager decoding of a 7B model is launch-bound: bench/profile_decode.py measured about twice as
much CPU time as GPU time per step on an H200. Here every step has the same shapes: the cache
buffers allocated at the prefill are attended in full under a 4D additive mask, the new key and
value are written at a device-side index, and the inputs live in fixed tensors. So one step can be
captured once per batch and replayed; on the CPU (and where capture fails) the same step runs
eagerly, which is how the tests check it against the ordinary path.
"""

from __future__ import annotations

import warnings


class StaticStep:
    """Callable like ``backend.step``: ``(tokens, mask, positions, cache) -> logits``.

    Built after the prefill; takes its sizes from the cache at the first call (after beams or
    samples have repeated it). ``graphs=True`` captures a CUDA graph at that first call.
    """

    def __init__(self, backend, graphs: bool) -> None:
        self.backend = backend
        self.graphs = graphs
        self.graph = None
        self.failure: str | None = None
        self.layers = None

    def _setup(self, tokens, mask, positions, cache) -> None:
        torch = self.backend._torch
        self.layers = cache.layers
        first = self.layers[0]
        self.prompt = first.length
        width = first._k.shape[2]
        sequences = tokens.shape[0]
        dtype = self.backend.dtype
        device = tokens.device
        self.mask = torch.full((sequences, 1, 1, width), torch.finfo(dtype).min, dtype=dtype,
                               device=device)
        self.mask[:, 0, 0, : self.prompt] = torch.where(
            mask[:, : self.prompt].bool(), 0.0, torch.finfo(dtype).min).to(dtype)
        self.index = torch.zeros(1, dtype=torch.long, device=device)
        self.tokens = tokens.clone()
        self.positions = positions.clone()
        for layer in self.layers:
            layer.write_index = self.index
        self.cache = cache

    def _forward(self):
        b = self.backend
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
            self._setup(tokens, mask, positions, cache)
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
            except Exception as exc:  # capture is an optimisation: fall back to eager
                self.failure = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"CUDA graph capture failed, decoding eagerly: {self.failure}",
                              stacklevel=3)
        if self.graph is not None:
            self.graph.replay()
            return self.logits
        return self._forward()
