"""Where a decode step's time goes: torch.profiler over a few greedy steps of the full model.

Variants: ``eager`` (ordinary steps over the preallocated cache), ``cat`` (concatenating cache),
``static:<attention>`` (the static-shape step a CUDA graph replays, run eagerly so its kernels
show, with the given attention kernel: auto, math, efficient, cudnn, matmul), and ``prefill``
(one batch's features, audio encoder and LM prefill: the readout's whole cost but its few label
tokens).

    python -m bench.profile_decode [--batch 128] [--steps 6] [--variants eager,static:auto]
    python -m bench.profile_decode --tiny      # the same code on a tiny config, on the CPU
"""

from __future__ import annotations

import argparse

import torch

from bench.workload import bench_prompts, build, clips
from harness.models.api import Decoding
from harness.models.hf_qwen2_audio import Qwen2AudioBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", default="eager,static:auto,static:math,static:matmul")
    parser.add_argument("--rows", type=int, default=18)
    args = parser.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    model, processor = build(args.tiny, device)
    backend = Qwen2AudioBackend("bench", model, processor, "random")
    audios = clips(args.batch)
    prompts = [bench_prompts()[0]] * args.batch
    decoding = Decoding(max_new_tokens=args.steps, min_new_tokens=args.steps)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.inference_mode():
        for variant in args.variants.split(","):
            profile(backend, variant, audios, prompts, decoding, activities, device, args)


def configure(backend, variant: str):
    """The backend for ``eager`` or ``static:<attention>`` (built with those options)."""
    mode, _, attention = variant.partition(":")
    if mode == "static":
        return backend.with_options(decode="static", attention=attention or "auto")
    return backend.with_options(decode="eager", attention="matmul")


def profile(backend, variant, audios, prompts, decoding, activities, device, args) -> None:
    backend = configure(backend, "eager" if variant == "prefill" else variant)
    for warm_up in (True, False):
        run = one_pass(backend, variant, audios, prompts, decoding)
        if warm_up:
            run()
            continue
        with torch.profiler.profile(activities=activities) as prof:
            run()
    sort = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    steps = "" if variant == "prefill" else f", {args.steps} steps"
    print(f"=== {variant}, batch {args.batch}{steps}, sorted by {sort}", flush=True)
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=60),
          flush=True)
    del run
    if device == "cuda":
        torch.cuda.empty_cache()


def one_pass(backend, variant, audios, prompts, decoding):
    """The work one pass profiles: a prefill, or the decode after an (unprofiled) prefill."""
    if variant == "prefill":
        return lambda: backend.prefill(audios, prompts)
    state = backend.prefill(audios, prompts, reserve=backend.decode_reserve(decoding))
    step = backend.decode_step()
    return lambda: backend.decode(state, decoding, step)


if __name__ == "__main__":
    main()
