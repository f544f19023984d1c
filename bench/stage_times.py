"""Stage-by-stage timing of one batch of the Qwen2-Audio harness path (bench/gpu_throughput.py).

Each stage is synchronised and timed on its own, in steady state (the decode graph captured on
an untimed first pass, as ``generate`` reuses it), next to what the stage asks of the GPU: the
prefill's matrix FLOPs and the bytes one decode step reads.
"""

from __future__ import annotations

import time

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    return timed_value(fn, device)[0]


def timed_value(fn, device: str):
    """(seconds, result) of ``fn()``, synchronised on both sides."""
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return time.perf_counter() - start, value


def breakdown(backend, requests, decoding, device) -> tuple[str, float]:
    """Milliseconds per clip for each stage of one batch of the harness path (each stage
    synchronised), with the prefill's matrix throughput and the decode's read bandwidth (weights
    and the whole cache, once per step), as text, and the total."""
    with torch.inference_mode():
        times, replay, (flops, step_bytes) = _stage_times(backend, requests, decoding, device)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    n, steps = len(requests), decoding.max_new_tokens - 1  # the first token is the prefill's
    t_feat, t_enc, t_pre, t_dec = (t / n * 1e3 for t in times)
    graph = "" if replay != replay else (
        f"; graph replay alone {replay:.1f} ms on the GPU, {step_bytes / replay / 1e9:.3g} TB/s")
    return (f"batch {n}: features {t_feat:.2f} ms/clip, encoder {t_enc:.2f}, "
            f"LM prefill {t_pre:.2f} ({flops / times[2] / 1e12:.3g} TFLOP/s), decode {t_dec:.2f} "
            f"({times[3] / steps * 1e3:.1f} ms/step, {step_bytes * steps / times[3] / 1e12:.3g} "
            f"TB/s of weights and cache{graph})", t_feat + t_enc + t_pre + t_dec)


def readout_breakdown(backend, requests, labels, device) -> tuple[str, float]:
    """Milliseconds per clip for each stage of one readout batch (features, encoder, LM prefill,
    the labels' extra forward), timed as :func:`breakdown` does (second pass), and the total."""
    tree = backend.label_tree(labels)
    with torch.inference_mode():
        _readout_pass(backend, requests, tree, device)  # warm-up
        times, flops = _readout_pass(backend, requests, tree, device)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    ms = [t / len(requests) * 1e3 for t in times]
    return (f"batch {len(requests)}: features {ms[0]:.2f} ms/clip, encoder {ms[1]:.2f}, "
            f"LM prefill {ms[2]:.2f} ({flops / times[2] / 1e12:.3g} TFLOP/s), labels {ms[3]:.2f}",
            sum(ms))


def _readout_pass(backend, requests, tree, device):
    times, state = _prefill_stages(backend, requests, tree.size, device)
    t_lab = timed(lambda: backend.score_label_tree(state, tree), device)
    return (*times, t_lab), work(backend, state)[0]


def _prefill_stages(backend, requests, reserve: int, device):
    """Seconds of the features, the audio encoder and the LM prefill (each synchronised), and
    the prefilled state."""
    audios, prompts = [r.audio for r in requests], [r.prompt for r in requests]
    t_feat, (feats, frames) = timed_value(lambda: backend.features(audios), device)
    t_enc, (audio, lens) = timed_value(lambda: backend.encode_audio(feats, frames), device)
    t_pre, state = timed_value(lambda: backend.prefill_text(audio, lens, prompts, reserve), device)
    return (t_feat, t_enc, t_pre), state


def _stage_times(backend, requests, decoding, device):
    """As ``generate`` runs a batch, in steady state: the first pass (which captures the decode
    graph) is not timed, the second reuses the pooled buffers and the graph."""
    with backend.pooled_decoding():
        _one_pass(backend, requests, decoding, device)
        times, step, work = _one_pass(backend, requests, decoding, device)
        if getattr(step, "captures", 0) > 1:
            raise RuntimeError("the decode graph was captured again on the second batch")
        return times, replay_ms(step), work


def _one_pass(backend, requests, decoding, device):
    prefill_times, state = _prefill_stages(backend, requests, backend.decode_reserve(decoding), device)
    step = backend.decode_step()
    sizes = work(backend, state)
    t_dec = timed(lambda: backend.decode(state, decoding, step), device)
    if getattr(step, "failure", None):
        raise RuntimeError(f"CUDA graph capture failed: {step.failure}")
    if hasattr(step, "end"):
        step.end()
    return (*prefill_times, t_dec), step, sizes


def work(backend, state) -> tuple[float, float]:
    """FLOPs of the LM prefill that made ``state`` (2 per weight and token: the matrix
    products) and the bytes one decode step reads at least: the LM's weights and every cache
    buffer (the static step attends whole rows)."""
    prefix = backend.prefix_length
    clips, tokens = state.attention_mask.shape[0], state.attention_mask.shape[1] - prefix
    weights = sum(p.numel() for p in backend.lm.parameters()) - backend.embed.weight.numel()
    size = backend.lm_head.weight.element_size()
    cache = sum(layer.nbytes for layer in state.cache.layers)
    return 2.0 * weights * clips * tokens, (weights + backend.lm_head.weight.numel()) * size + cache


def replay_ms(step, repeats: int = 10) -> float:
    """GPU milliseconds of one replay of the step's graph (nan without a graph): against the
    loop's time per step, it says how much of a step is the host's."""
    graph = getattr(step, "graph", None)
    if graph is None:
        return float("nan")
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()  # it rewrites the slot of the last step, which nothing reads any more
    start.record()
    for _ in range(repeats):
        graph.replay()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / repeats
