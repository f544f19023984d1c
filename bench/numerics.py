"""Numerical checks of the GPU benchmark (bench/gpu_throughput.py): the harness's prefill
against the processor's padded reference, bf16's own noise, the graph-replayed decode step
against the same step run eagerly, and a float32 calibration."""

from __future__ import annotations

import torch


def prefill_logits(backend, processor, model, audios, prompts, device):
    """Last-position logits of the harness prefill and of the processor's padded reference."""
    with torch.inference_mode():
        ours = backend.prefill(audios, prompts).logits.float()
        texts = [backend.render(p, 1) for p in prompts]
        inputs = processor(text=texts, audio=audios, sampling_rate=16_000, return_tensors="pt",
                           padding=True).to(device)
        ref = model(**inputs, logits_to_keep=1).logits[:, -1].float()
    return ours, ref, inputs


def relative(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def calibration(model, inputs, ours, ref) -> str:
    """Both paths in the model's dtype against the reference in float32 (the model is converted
    in place: run last). The harness is as exact as bf16 allows when its error is the
    reference's own."""
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    model.float()
    with torch.inference_mode():
        exact = model(**inputs, logits_to_keep=1).logits[:, -1].float()
    return (f"against the float32 reference: harness {dtype} {relative(ours, exact):.2e}, "
            f"reference {dtype} {relative(ref, exact):.2e}")


def noise_floor(backend, processor, model, audios, prompts, device) -> float:
    """The same reference path on one clip alone vs inside a batch: bf16's own noise."""
    with torch.inference_mode():
        texts = [backend.render(p, 1) for p in prompts]
        batch = processor(text=texts, audio=audios, sampling_rate=16_000, return_tensors="pt",
                          padding=True).to(device)
        one = processor(text=texts[:1], audio=audios[:1], sampling_rate=16_000,
                        return_tensors="pt").to(device)
        a = model(**batch, logits_to_keep=1).logits[0, -1].float()
        b = model(**one, logits_to_keep=1).logits[0, -1].float()
    return float((a - b).abs().max() / b.abs().max())


def graph_agreement(backend, requests, decoding) -> str:
    """The graph-replayed step against the same static step run eagerly, over two batches (so
    the second batch replays the first one's graph); every candidate compared. Each mode runs
    twice: where the eager step does not even agree with itself, a difference with the graph is
    the kernels' run-to-run noise (random weights leave near-ties that any rounding flips), not
    the graph's doing."""
    outputs = {}
    for run in ("static", "static again", "graph", "graph again"):
        two_batches = backend.with_options(decode=run.split()[0], batch_size=max(1, len(requests) // 2))
        outputs[run] = [c for g in two_batches.generate(requests, decoding) for c in g.candidates]
    return "; ".join(f"{a} vs {b}: {_compare(outputs[a], outputs[b])}" for a, b in (
        ("static", "graph"), ("static", "static again"), ("graph", "graph again")))


def _compare(first, second) -> str:
    pairs = list(zip(first, second))
    same = sum(a.text == b.text for a, b in pairs)
    gap = max(abs(a.logprob - b.logprob) for a, b in pairs)
    return f"{same}/{len(pairs)} identical texts, max |delta logprob| {gap:.2e}"


def first_step_gap(backend, requests, decoding) -> str:
    """The first decode step's logits, replayed from a graph and run eagerly on the same
    prefill, and the eager step against itself: max |diff| / max |logit|, and the share of rows
    whose best token is the same; and the prefill's logits against themselves (a prefill is
    run before each step)."""
    static = backend.with_options(decode="static")
    runs = [_first_step(static, requests, decoding, static.static_step(graphs))
            for graphs in (False, False, True)]
    (prefill, eager), (prefill_again, again), (_, graph) = runs
    return (f"graph vs eager {relative(graph, eager):.2e} (same best token "
            f"{_same_best(graph, eager)}), eager vs eager {relative(again, eager):.2e} "
            f"(same best token {_same_best(again, eager)}); prefill vs prefill "
            f"{relative(prefill_again, prefill):.2e}")


def _first_step(backend, requests, decoding, step):
    with torch.inference_mode():
        state = backend.prefill([r.audio for r in requests], [r.prompt for r in requests],
                                reserve=backend.decode_reserve(decoding))
        token = state.logits.argmax(-1)
        mask = torch.cat([state.attention_mask, state.attention_mask.new_ones(len(token), 1)], 1)
        logits = step(token, mask, state.next_position, state.cache).float().clone()
        return state.logits.float(), logits


def _same_best(a, b) -> str:
    return f"{int((a.argmax(-1) == b.argmax(-1)).sum())}/{a.shape[0]}"
