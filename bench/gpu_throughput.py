"""Utterances per second of the full Qwen2-Audio-7B architecture: harness path vs plain generate.

Builds the architecture of ``Qwen/Qwen2-Audio-7B-Instruct`` (text 4096 hidden, 11008 FFN, 32
layers, 32 heads, vocab 156032; audio encoder 1280 wide, 32 layers, 20 heads, 128 mels) with random
bf16 weights on the GPU, feeds 6-second clips with the IEMOCAP base prompt, pins 40 new tokens
(min = max) and prints, in one run, the paper-style baseline (``generate`` one utterance at a time;
a plain batched forward for the readout) next to the harness's own path, and their ratio.
Targets on one H100/H200: greedy >= 60 utt/s, beam 5 >= 25 utt/s, readout >= 150 utt/s.

    python -m bench.gpu_throughput            # on the GPU
    python -m bench.gpu_throughput --tiny     # the same code on a tiny config, on the CPU

Prompts are tokenized with Qwen's own tokenizer once ``python -m bench.qwen_tokenizer`` has built it
(otherwise with the tiny fixture's, whose prompts are 5-7% longer; the first line says which).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from bench.numerics import (
    calibration,
    first_step_gap,
    graph_agreement,
    noise_floor,
    prefill_logits,
    relative,
)
from bench.stage_times import breakdown, readout_breakdown, timed, timed_value
from bench.workload import BEAM, GREEDY, LABELS, QWEN_PROCESSOR, bench_prompts, build, clips, processor_path
from harness.models import Request
from harness.models.fast_path import FastPathOptions
from harness.models.hf_qwen2_audio import Qwen2AudioBackend


def baseline_generate(model, processor, backend, audios, prompts, device, beams: int) -> float:
    """Paper-style: processor + ``generate`` one utterance at a time (30 s padded audio)."""

    def one(a, p):
        text = backend.render(p, 1)
        inputs = processor(text=[text], audio=[a], sampling_rate=16_000, return_tensors="pt").to(device)
        model.generate(**inputs, max_new_tokens=40, min_new_tokens=40, do_sample=False,
                       num_beams=beams, num_return_sequences=beams, length_penalty=0.0,
                       repetition_penalty=1.0, temperature=None, top_p=None, top_k=None)

    one(audios[0], prompts[0])  # warm-up
    with torch.inference_mode():
        seconds = timed(lambda: [one(a, p) for a, p in zip(audios, prompts)], device)
    return len(audios) / seconds


def baseline_readout(model, processor, backend, audios, prompts, device, batch: int) -> float:
    """Paper-style readout: the processor's padded batch and one plain forward per batch."""

    def run():
        for s in range(0, len(audios), batch):
            texts = [backend.render(p, 1) for p in prompts[s:s + batch]]
            inputs = processor(text=texts, audio=audios[s:s + batch], sampling_rate=16_000,
                               return_tensors="pt", padding=True).to(device)
            model(**inputs, logits_to_keep=1)

    with torch.inference_mode():
        run()
        return len(audios) / timed(run, device)


def harness_rate(backend, requests, decoding, device) -> float:
    backend.generate(requests[:4], decoding)  # warm-up
    return len(requests) / timed(lambda: backend.generate(requests, decoding), device)


def say(text: str, started: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {text}", flush=True)


def attempt(label: str, fn, *args) -> None:
    """``fn(*args)``, one part of the benchmark; a failure is printed and the run goes on (one
    device call has to yield every figure it can)."""
    try:
        fn(*args)
    except Exception as exc:
        say(f"{label}: failed: {type(exc).__name__}: {str(exc)[:300]}")


def choose_decoder(variants: str, backend, requests, sizes, device):
    """Time each ``decode-mode:attention`` variant stage by stage (greedy and beam-5); the
    backend with the fastest over both, for the rates that follow."""
    pairs = [tuple(p.split(":")) for p in variants.split(",")]
    total = {}
    for mode, attention in pairs:
        variant = backend.with_options(decode=mode, attention="matmul" if mode == "eager" else attention)
        for label, decoding, size in (("greedy", GREEDY, sizes[0]), ("beam-5", BEAM, sizes[1])):
            try:
                text, ms = breakdown(variant, requests[:size], decoding, device)
                total[mode, attention] = total.get((mode, attention), 0.0) + ms
                say(f"decode {mode} ({attention} attention): {label} {text}")
            except Exception as exc:  # keep the run's other figures if one variant fails
                total[mode, attention] = float("inf")
                say(f"decode {mode} ({attention}): {label} failed: {type(exc).__name__}: "
                    f"{str(exc)[:300]}")
    best = min(total, key=total.get)  # the fastest over greedy and beam together
    say(f"decode for the rates below (fastest above): {best[0]}, {best[1]} attention")
    return backend.with_options(decode=best[0], attention="matmul" if best[0] == "eager" else best[1])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config on the CPU")
    parser.add_argument("--n", type=int, default=384, help="clips for the harness's greedy path")
    parser.add_argument("--n-beam", type=int, default=144)
    parser.add_argument("--n-baseline", type=int, default=4)
    parser.add_argument("--batch", type=int, default=0, help="fixed batch size (0: from memory)")
    parser.add_argument("--breakdown",
                        default="graph:auto,graph:efficient,graph:cudnn,graph:matmul",
                        help="decode-mode:attention pairs timed stage by stage on one batch; "
                             "the fastest is used for the end-to-end rates")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the rates with torch.compile'd norms and MLP")
    parser.add_argument("--check-attention", default=None,
                        help="decode attention kernels the graph-vs-eager agreement is checked "
                             "with (default: the backend's)")
    parser.add_argument("--checks-only", action="store_true",
                        help="stop after the numerical checks, repeated with compiled blocks "
                             "and the last kernel of --check-attention (no rates)")
    parser.add_argument("--eager-rates", action="store_true",
                        help="also time the eager decode path end to end (slower run)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    if args.tiny:
        args.n, args.n_beam, args.n_baseline = min(args.n, 16), min(args.n_beam, 8), 2
        args.breakdown = "eager:auto,static:auto,static:matmul"
    model, processor = build(args.tiny, device)
    # eager blocks first; compiled (the GPU default) after, against the same baselines
    backend = Qwen2AudioBackend("bench", model, processor, "random",
                                FastPathOptions(batch_size=args.batch or None, compile_blocks=False,
                                                heard_clips_mib=0))  # each timed call hears afresh
    say_setup(args.tiny, model, processor, backend, device)
    audios = clips(max(args.n, args.n_beam))
    prompts = [bench_prompts()[0]] * len(audios)
    # clips of different lengths, so that padding (and so the kernels' shapes) differ
    varied = [a[: int(16_000 * s)] for a, s in zip(audios[:4], (6, 4, 5, 3))]
    ours, ref, ref_inputs = prefill_logits(backend, processor, model, varied, prompts[:4], device)
    say(f"numerics: harness prefill vs padded reference, max |diff| / max |logit| = "
        f"{relative(ours, ref):.2e}")
    say(f"noise floor: reference path, one clip alone vs in a batch of 4 lengths = "
        f"{noise_floor(backend, processor, model, varied, prompts[:4], device):.2e}")
    requests = [Request(a, p, audio_hash=str(i)) for i, (a, p) in enumerate(zip(audios, prompts))]
    for attention in (args.check_attention or backend.options.attention).split(","):
        agreement(backend.with_options(attention=attention), requests, device)
    if args.checks_only:  # the same checks with compiled blocks, the default on a GPU
        agreement(backend.with_options(attention=attention, compile_blocks=True), requests, device)
        return
    if device == "cuda":
        sizes = [backend.batch_size_for(requests, k, 40) for k in (1, 5)]
        say(f"batch sizes from free memory: greedy {sizes[0]}, beam-5 {sizes[1]} clips")
    else:
        sizes = [8, 4]
    backend = choose_decoder(args.breakdown, backend, requests, sizes, device)
    if backend.options.decode != "eager" and args.eager_rates:  # the eager path's rates too
        eager = backend.with_options(decode="eager", attention="matmul")
        attempt("eager decode", lambda: say(
            f"eager decode: greedy {harness_rate(eager, requests[: args.n], GREEDY, device):.2f} "
            f"utt/s, beam-5 {harness_rate(eager, requests[: args.n_beam], BEAM, device):.2f} utt/s"))
    bench = Rates(args, model, processor, backend, audios, prompts, requests, device)
    bench.all("eager blocks")
    if not args.no_compile:
        compiled(bench, sizes)
    attempt("numerics", lambda: say(f"numerics: {calibration(model, ref_inputs, ours, ref)}"))


def say_setup(tiny: bool, model, processor, backend, device: str) -> None:
    """The run's first line: the device, the versions, the model's size and the prompts' length."""
    import transformers

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    params = sum(p.numel() for p in model.parameters()) / 1e9
    prompt_tokens = [len(processor.tokenizer(backend.render(p, 150))["input_ids"])
                     for p in bench_prompts()]
    tokenizer = ("Qwen's" if processor_path(tiny) == QWEN_PROCESSOR else
                 "the tiny fixture's (Qwen's writes 5-7% fewer: bench/qwen_tokenizer.py)")
    say(f"device {name}; torch {torch.__version__}; transformers {transformers.__version__}; "
        f"{params:.2f}B parameters; 6 s clips; prompt {prompt_tokens[0]} tokens (readout "
        f"{prompt_tokens[1]}) incl. 150 audio, "
        f"tokenizer {tokenizer}; 40 new tokens pinned")


def agreement(backend, requests, device) -> None:
    """The graph-replayed decode against the same step run eagerly, each against itself, with
    the backend's decode attention kernel (bench/numerics.py)."""
    kernel = backend.options.attention
    compiled = ", compiled blocks" if backend.compiled else ""
    # on the CPU the graph's capture fails and it decodes eagerly: the check then covers the code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if device == "cpu" else "default")
        for label, decoding in (("greedy", GREEDY), ("beam-5", BEAM)):
            attempt(f"graph vs eager static step, {label}", lambda lab, dec: say(
                f"graph vs eager static step, {lab} ({kernel} attention{compiled}): "
                f"{graph_agreement(backend, requests[:16], dec)}"), label, decoding)
        attempt("first decode step", lambda: say(
            f"first decode step, greedy, 8 clips ({kernel} attention{compiled}): "
            f"{first_step_gap(backend, requests[:8], GREEDY)}"))


class Rates:
    """End-to-end utterances per second, each printed as soon as it is measured; the
    baselines are measured once and repeated on later rows."""

    def __init__(self, args, model, processor, backend, audios, prompts, requests, device):
        self.args, self.model, self.processor, self.backend = args, model, processor, backend
        self.audios, self.prompts, self.requests, self.device = audios, prompts, requests, device
        self.baselines: dict[str, float] = {}

    def all(self, title: str) -> None:
        args, nb = self.args, self.args.n_baseline
        for label, decoding, n, beams, target in (
                ("greedy", GREEDY, args.n, 1, 60), ("beam-5", BEAM, args.n_beam, 5, 25)):
            attempt(label, lambda lab, dec, k, b, goal: self.row(
                title, lab, lambda: baseline_generate(
                    self.model, self.processor, self.backend, self.audios[:nb], self.prompts[:nb],
                    self.device, b), harness_rate(self.backend, self.requests[:k], dec, self.device),
                goal), label, decoding, n, beams, target)
        readout_stages(self.backend, self.audios[: args.n], self.device, f" ({title})")
        attempt("readout", lambda: self.row(title, "readout", lambda: baseline_readout(
            self.model, self.processor, self.backend, self.audios[: min(args.n, 128)],
            self.prompts[: min(args.n, 128)], self.device, 64 if not args.tiny else 8),
            readout_rate(self.backend, self.audios[: args.n], self.device), 150))

    def row(self, title: str, mode: str, baseline, ours: float, target: float) -> None:
        if mode not in self.baselines:
            self.baselines[mode] = baseline()
        base = self.baselines[mode]
        verdict = ("tiny config: the targets are for the full model on a GPU" if self.args.tiny else
                   f"target >= {target} utt/s: {'met' if ours >= target else 'NOT met'}")
        say(f"{mode:8s} baseline {base:8.2f} utt/s | harness {ours:8.2f} utt/s | "
            f"x{ours / base:6.1f} | {title}; {verdict}")


def readout_requests(audios) -> list[Request]:
    prompt = bench_prompts()[1]
    return [Request(a, prompt, audio_hash=str(i)) for i, a in enumerate(audios)]


def readout_stages(backend, audios, device, label: str = "") -> None:
    """The readout's stages on one batch of the size ``label_logprobs`` picks: against the
    end-to-end rate, the gap is host time between the stages."""
    requests = readout_requests(audios)
    size = min(len(requests), backend.batch_size_for(requests, 1, backend.label_tree(LABELS).size))

    def show():
        text, ms = readout_breakdown(backend, requests[:size], LABELS, device)
        say(f"readout stages{label}: {text}; sum {1e3 / ms:.1f} utt/s")

    attempt("readout stages", show)


def readout_rate(backend, audios, device) -> float:
    requests = readout_requests(audios)
    backend.label_logprobs(requests[:4], LABELS)
    return len(requests) / timed(lambda: backend.label_logprobs(requests, LABELS), device)


def compiled(bench: Rates, sizes) -> None:
    """Stages and rates again with the backend's default on a GPU: the layers' elementwise work
    fused by torch.compile (the compilation, checked on a small prefill, timed apart)."""
    device = bench.device
    seconds, backend = timed_value(lambda: bench.backend.with_options(compile_blocks=True), device)
    bench.backend = backend
    say(f"compiled blocks: compilation and its check {seconds:.1f} s, "
        f"{'on' if backend.compiled else 'FAILED, eager'}")
    agreement(backend, bench.requests, device)  # what --checks-only checks, on the default
    mode = (backend.options.decode, backend.options.attention)
    for label, decoding, size in (
            ("greedy", GREEDY, sizes[0]), ("beam-5", BEAM, sizes[1])):
        attempt(f"compiled {label} stages", lambda lab, dec, k: say(
            f"decode {mode[0]} ({mode[1]} attention, compiled blocks): {lab} "
            f"{breakdown(backend, bench.requests[:k], dec, device)[0]}"), label, decoding, size)
    bench.all("compiled blocks (the default on a GPU)")
    bench.backend = backend.with_options(compile_blocks=False)  # the float32 calibration below
    # runs the model itself, eager


if __name__ == "__main__":
    main()
