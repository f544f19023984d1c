"""Utterances per second of Audio Flamingo 3, Qwen2.5-Omni's thinker and Ultravox v0.4 at full
size: the fast path against plain ``generate`` one utterance at a time, in one run.

Each model is built at its checkpoint's architecture with random bf16 weights on the GPU (Audio
Flamingo 3: a Whisper-large encoder, 1280 wide, 32 layers, and a Qwen2.5-7B decoder, 3584 wide,
28 layers, 4 KV heads; the Omni thinker: its 32-layer audio encoder and the same decoder with
multimodal rotary positions; its vision tower, which an audio prompt never runs, at depth 1;
Ultravox v0.4: Whisper-large-v3-turbo's encoder, 32 layers, 128 mel bins, the stacking projector
and Llama-3.1-8B, 4096 wide, 32 layers, 8 KV heads, default rotary scaling), fed 6-second clips
with the IEMOCAP base prompt (the tiny fixture's tokenizer: prompts 5-7% longer than Qwen's),
40 new tokens pinned. The baseline is the model's own ``generate`` on what its processor builds
(30 s padded features; Ultravox: the clip's own frames, as its code builds them,
fixtures.ultravox_reference), one clip at a time; the fast path runs with its GPU defaults
(graph-replayed static decode, compiled blocks, batch size from free memory). Targets on one
H100/H200: fast path >= 20x the baseline for greedy, >= 15x for beam 5, per model.

    python -m bench.fast_path_models                   # on the GPU, the three models
    python -m bench.fast_path_models --models omni     # one of them
    python -m bench.fast_path_models --tiny            # the same code, tiny configs, on the CPU

``--models af2``: Audio Flamingo 2 on NVIDIA's own inference code (installed as the README says;
on no registry, so not in the default set), HTSAT large and Qwen2.5-3B's architecture in float32
(the adapter's default, as NVIDIA runs it; 4.80B parameters with the cross-attention layers), the
adapter's batches against NVIDIA's ``generate`` one clip at a time (its ``inference.py``). Its
answers stop at ``<|endofchunk|>`` as well as EOS, which ``min_new_tokens`` does not hold back, so
their lengths are not checked (errors and candidate counts are).
"""

from __future__ import annotations

import argparse
import gc
import time

import torch

from bench.stage_times import timed_value
from bench.workload import BEAM, GREEDY, bench_prompts, clips
from fixtures import tiny_architectures as arch
from fixtures.processor_inputs import omni_processor_inputs
from fixtures.ultravox_reference import plain_generate
from harness.models import Request
from harness.models._audio_chat import AudioTextProcessor
from harness.models._hf_common import generate_kwargs
from harness.models.fast_path import FastPathOptions
from harness.models.hf_audio_flamingo_3 import AudioFlamingo3Backend
from harness.models.hf_generic import HFGenerateBackend
from harness.models.hf_qwen2_5_omni import Qwen2_5OmniThinkerBackend
from harness.models.hf_ultravox import UltravoxBackend

QWEN2_5_7B = {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
              "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
              "max_position_embeddings": 32768, "rope_theta": 1_000_000.0}
WHISPER_LARGE = {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 20,
                 "intermediate_size": 5120}
OMNI_AUDIO = {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20,
              "encoder_ffn_dim": 5120, "output_dim": 3584, "n_window": 100}
OMNI_ROPE = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
LLAMA_3_1_8B = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
                "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                "max_position_embeddings": 131072, "rope_theta": 500_000.0}
WHISPER_TURBO_ENCODER = {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20,
                         "encoder_ffn_dim": 5120, "num_mel_bins": 128}
ULTRAVOX_PROJECTOR = 4096  # Ultravox's default inner width (SwiGLU halves it): a sliver of the cost
TARGETS = {"greedy": 20.0, "beam-5": 15.0}


def build_af3(tiny: bool, device: str):
    """The fast backend and the plain-generate baseline on one Audio Flamingo 3."""
    audio = arch.AF3_AUDIO if tiny else dict(arch.AF3_AUDIO, **WHISPER_LARGE)
    text = arch.TEXT if tiny else QWEN2_5_7B
    model, processor = arch.audio_flamingo_3(audio, text, dtype(tiny), device)
    fast = AudioFlamingo3Backend("bench", model, processor, "random", options(tiny))
    plain = HFGenerateBackend("bench-plain", model, processor, "random", batch_size=1)
    return fast, lambda requests, decoding: plain.generate(requests, decoding)


def build_omni(tiny: bool, device: str):
    """The fast backend and the model's own ``generate`` on its processor's inputs."""
    text = dict(arch.TEXT if tiny else QWEN2_5_7B,
                rope_parameters=arch.OMNI_ROPE if tiny else OMNI_ROPE)
    audio = arch.OMNI_AUDIO if tiny else OMNI_AUDIO
    vision = dict(arch.OMNI_VISION, out_hidden_size=text["hidden_size"])
    model, tok, extractor = arch.qwen2_5_omni_thinker(audio, text, vision, dtype(tiny), device)
    fast = Qwen2_5OmniThinkerBackend("bench", model, AudioTextProcessor(tok, extractor), "random",
                                     options(tiny))

    def plain(requests, decoding):
        for r in requests:  # one at a time, as the paper-style loop runs
            model.generate(**omni_processor_inputs(fast, [r]), **generate_kwargs(decoding),
                           eos_token_id=fast.eos_ids, pad_token_id=fast.pad_id)

    return fast, plain


def build_ultravox(tiny: bool, device: str):
    """The fast backend and one clip at a time as Ultravox's own code runs it."""
    audio = arch.WHISPER if tiny else WHISPER_TURBO_ENCODER
    text = arch.TEXT if tiny else LLAMA_3_1_8B
    width = arch.ULTRAVOX_PROJECTOR if tiny else ULTRAVOX_PROJECTOR
    model, processor = arch.ultravox(audio, text, width, dtype(tiny), device)
    fast = UltravoxBackend("bench", model, processor, "random", options(tiny))

    def plain(requests, decoding):
        for r in requests:
            plain_generate(fast, r, decoding)

    return fast, plain


def build_af2(tiny: bool, device: str):
    """Audio Flamingo 2 on NVIDIA's own code (installed as the README says): the adapter's
    batches against NVIDIA's ``generate`` one clip at a time, as its ``inference.py`` calls it."""
    from bench.af2_nvidia_check import af2_backends

    fast, plain = af2_backends(tiny, device, batch_size=8 if tiny else 64)
    return fast, lambda requests, decoding: plain.generate(requests, decoding)


MODELS = {"af3": ("audio-flamingo-3", build_af3), "omni": ("qwen2.5-omni-thinker", build_omni),
          "ultravox": ("ultravox-v0.4", build_ultravox), "af2": ("audio-flamingo-2", build_af2)}
UNPINNED = {"af2"}  # NVIDIA's answers end at <|endofchunk|> too, which min_new_tokens does not hold


def dtype(tiny: bool):
    return torch.float32 if tiny else torch.bfloat16


def options(tiny: bool) -> FastPathOptions:
    """The fast path's defaults, but nothing kept of the clips between calls: each timed call
    hears its clips afresh, as the plain baseline does (harness.models._heard_clips)."""
    return FastPathOptions(batch_size=8 if tiny else None, heard_clips_mib=0)


def rate(fn, requests, decoding, device, pinned: bool = True) -> float:
    """Utterances per second of ``fn``, once the generations it returns (the model's own
    ``generate`` called directly returns none: it raises) are checked to be the work timed."""
    generated(fn(requests[:2], decoding), decoding, pinned)  # warm-up (the fast path: capture)
    with torch.inference_mode():
        seconds, out = timed_value(lambda: fn(requests, decoding), device)
    generated(out, decoding, pinned)
    return len(requests) / seconds


def generated(generations, decoding, pinned: bool = True) -> None:
    """Raise unless each generation has the decoding's candidates, each of its pinned length
    (``pinned``; else of any length): a failed request returns at once, with its error, and would
    be timed as a fast one (Audio Flamingo 3's plain baseline ran at 33.9 clips/s one at a time on
    an H200, 50 times the others', 2026-12-04)."""
    for g in generations or ():
        if g.error:
            raise RuntimeError(f"a request failed: {g.error[:300]}")
        lengths = [c.n_tokens for c in g.candidates]
        if len(lengths) != decoding.num_candidates or (
                pinned and set(lengths) != {decoding.max_new_tokens}):
            raise RuntimeError(f"{lengths} tokens generated, not {decoding.num_candidates} of "
                               f"{decoding.max_new_tokens}")


def say(text: str, started: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {text}", flush=True)


def measure(key: str, args, device: str) -> None:
    name, build = MODELS[key]
    fast, plain = build(args.tiny, device)
    params = sum(p.numel() for p in fast.model.parameters()) / 1e9
    options = getattr(fast, "options", None)  # Audio Flamingo 2: batches, no fast path's options
    say(f"{name}: {params:.2f}B parameters, {fast.info.dtype}, " + (
        f"decode {options.decode}, compiled blocks {fast.compiled}" if options else
        f"batches of {fast.batch_size} against one clip at a time"))
    prompt = bench_prompts()[0]
    requests = [Request(a, prompt, audio_hash=str(i))
                for i, a in enumerate(clips(max(args.n, args.n_beam)))]
    for label, decoding, n in (("greedy", GREEDY, args.n), ("beam-5", BEAM, args.n_beam)):
        try:
            pinned = key not in UNPINNED
            base = rate(plain, requests[: args.n_baseline], decoding, device, pinned)
            ours = rate(fast.generate, requests[:n], decoding, device, pinned)
        except Exception as exc:  # one model's failure must not cost the other's figures
            say(f"{name} {label}: failed: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        target = TARGETS[label]
        verdict = ("tiny config: the targets are for the full model on a GPU" if args.tiny else
                   f"target >= {target:.0f}x: {'met' if ours >= target * base else 'NOT met'}")
        say(f"{name} {label:7s} plain one at a time {base:7.2f} utt/s | fast path {ours:8.2f} "
            f"utt/s ({n} clips) | x{ours / base:6.1f} | {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs on the CPU")
    parser.add_argument("--models", default="af3,omni,ultravox",
                        help="comma-separated: af3, omni, ultravox, af2 (NVIDIA's code installed)")
    parser.add_argument("--n", type=int, default=256, help="clips for the fast path's greedy rate")
    parser.add_argument("--n-beam", type=int, default=128)
    parser.add_argument("--n-baseline", type=int, default=4)
    args = parser.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if args.tiny:
        args.n, args.n_beam, args.n_baseline = min(args.n, 16), min(args.n_beam, 8), 2
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    say(f"device {name}; torch {torch.__version__}; 6 s clips; 40 new tokens pinned")
    for key in args.models.split(","):
        measure(key, args, device)
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
