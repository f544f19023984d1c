"""Where a decode step's time goes: torch.profiler over a few greedy steps of the full model.

    python bench/profile_decode.py [--batch 128] [--steps 6]   # on the GPU; --tiny on the CPU
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_throughput import LABELS, build, clips  # noqa: E402

from harness.models._decode import sample  # noqa: E402
from harness.models.api import Decoding  # noqa: E402
from harness.models.hf_qwen2_audio import Qwen2AudioBackend  # noqa: E402
from harness.prompts import base_prompt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    model, processor = build(args.tiny, device)
    backend = Qwen2AudioBackend("bench", model, processor, "random")
    audios = clips(args.batch)
    prompts = [base_prompt("iemocap", "I told you I would be there on time.", LABELS)] * args.batch
    decoding = Decoding(max_new_tokens=args.steps, min_new_tokens=args.steps)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.inference_mode():
        for mode in ("prealloc", "cat"):
            backend.cache_mode = mode
            state = backend.prefill(audios, prompts, reserve=args.steps)
            sample(backend.step, state, 1, decoding, backend.eos_ids, backend.pad_id)  # warm-up
            state = backend.prefill(audios, prompts, reserve=args.steps)
            with torch.profiler.profile(activities=activities) as prof:
                sample(backend.step, state, 1, decoding, backend.eos_ids, backend.pad_id)
            sort = "cuda_time_total" if device == "cuda" else "cpu_time_total"
            print(f"=== cache {mode}, batch {args.batch}, {args.steps} steps, sorted by {sort}")
            print(prof.key_averages().table(sort_by=sort, row_limit=18, max_name_column_width=60))
            del state
            if device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
