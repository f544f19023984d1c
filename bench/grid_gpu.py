"""The whole grid end to end on one GPU: Qwen2-Audio-7B's full architecture with random bf16
weights through ``harness.evaluate`` (the path every ``pytest evals`` cell takes: the streaming
runner, the generation cache, parsing, metrics, the record written), every strategy in the
grid's order on one shared cache, on a synthetic corpus in MSP-Podcast's layout.

    python -m bench.grid_gpu                       # on a GPU: 2,000 six-second clips
    python -m bench.grid_gpu --plan                # the model's plan first, as --plan on runs
    python -m bench.grid_gpu --tiny --items 12     # the tiny config on the CPU (the tests)
    python -m bench.grid_gpu --narrow --plan       # on the CPU: the full model's prompt tokens
    python -m bench.grid_gpu --plan --together     # the plan's decodings of a prompt in one loop
    python -m bench.grid_gpu --ab-together         # the plan alone: decodings apart, then together

With ``--plan`` the model's plan (harness.runner.plan: every strategy a chunk at a time, one
prefill per clip for the decodings that share a prompt) fills the cache first and is timed with
each strategy's share; the cells then run from the cache, and the projection counts both. With
``--together`` (``FastPathOptions.decode_together``) the decodings asked together decode in one
loop; the decode steps (one forward pass of the LM for a token of each sequence) are counted
either way.

For each strategy it prints the cell's GPU-seconds and utt/s, the backend's own rate for the
same model calls on the same clips (``generate``/``label_logprobs`` on requests already in
memory, the verifier's calls included; timed on the first ``--direct`` clips), their ratio, and
then the projected GPU time of the eight-strategy grid over the paper's 24,770 utterances.
Answers are capped at ``--new-tokens`` (40, as the backend benchmark pins them; random weights
seldom stop early), chain-of-thought included, and the tokens each cell generated are printed.
Targets (this project's issue 18, one H200): the grid over 24,770 utterances in <= 30
GPU-minutes, each strategy end to end at >= 90% of its backend rate.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from bench.stage_times import timed
from bench.synthetic_corpus import corpus_under
from bench.workload import build
from harness.models.api import Decoding
from harness.models.fast_path import FastPathOptions
from harness.models.hf_qwen2_audio import Qwen2AudioBackend

STRATEGIES = ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n")
PAPER_ITEMS = 24_770


def direct_seconds(backend, strategy, requests, dataset, config, device) -> float:
    """Seconds the backend takes for the model calls ``strategy`` makes on ``requests`` (audio
    in memory, no cache, no parsing): the backend's own rate for the strategy."""
    from harness.prompts import verifier_prompt

    labels = dataset.labels
    prompted = [replace(r, prompt=strategy.prompt(dataset.name, dataset[i].transcript, labels,
                                                  config.prompts))
                for i, r in enumerate(requests)]
    if strategy.name == "readout":
        return timed(lambda: backend.label_logprobs(prompted, labels), device)
    decoding = strategy.decoding(config, labels)
    seconds, generations = _timed_value(lambda: backend.generate(prompted, decoding), device)
    if strategy.needs_verifier:
        asks = [replace(r, prompt=verifier_prompt(dataset.name, dataset[i].transcript, labels,
                                                  c.text, config.prompts))
                for i, (r, g) in enumerate(zip(prompted, generations)) for c in g.candidates]
        seconds += timed(lambda: backend.generate(asks, Decoding(max_new_tokens=8,
                                                                 seed=config.seed)), device)
    return seconds


def _timed_value(fn, device):
    from bench.stage_times import timed_value

    return timed_value(fn, device)


def run(args: argparse.Namespace) -> None:
    from harness.cache import GenerationCache

    backend, dataset, config, work, device = _setup(args)
    if args.ab_together:
        return ab_together(backend, dataset, config, work, device)
    sample = [r for chunk in _direct_requests(dataset[: args.direct]) for r in chunk]
    cache = GenerationCache(work / "generations.sqlite")
    counts = GridCounts(PrefillTokens(backend), DecodeSteps(backend))
    total = _plan(backend, dataset, config, cache, device) if args.plan else 0.0
    counts.take()
    total += _cells(backend, dataset, config, cache, work, device, sample, counts)
    _summary(backend, len(dataset), counts, total, device, args)


def _setup(args: argparse.Namespace):
    """The corpus, the model (warmed up) and its backend, the strategies' config, the work
    folder and the device."""
    from harness.data import load_dataset
    from harness.runner.evaluate import evaluate
    from harness.strategies import StrategyConfig

    small = args.tiny or args.narrow
    device = "cpu" if small or not torch.cuda.is_available() else "cuda"
    work = Path(args.work or tempfile.mkdtemp(prefix="grid-gpu-"))
    dataset = load_dataset("msp_podcast", corpus_under(work, args.items))
    model, processor = build(args.tiny, device, args.narrow)
    options = FastPathOptions(compile_blocks=False if small else None,
                              share_prompts=not args.no_shared_prompts,
                              heard_clips_mib=0 if args.no_heard_clips else None,
                              decode_together=args.together)
    built, backend = _timed_value(lambda: Qwen2AudioBackend(
        "qwen2-audio-7b-random", model, processor, "random", options), device)
    config = StrategyConfig(max_new_tokens=args.new_tokens, cot_max_new_tokens=args.new_tokens)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    warm = timed(lambda: evaluate(backend, dataset[:4], "base", config=config, n_resamples=10),
                 device)  # the decode step's compilation and graphs
    print(f"device {name}; {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters; "
          f"{len(dataset)} clips of 6 s (MSP-Podcast layout); answers <= {args.new_tokens} tokens; "
          f"the verifier is the model itself; the backend built in {built:.1f} s (its compiled "
          f"parts' compilation and check included), warmed up on 4 clips in {warm:.1f} s",
          flush=True)
    return backend, dataset, config, work, device


class GridCounts:
    """The grid's prompt tokens (padded and real) and decode steps (and their sequences), summed
    over what :meth:`take` is asked to count; what :meth:`drop` is asked is not the grid's."""

    def __init__(self, prefilled: PrefillTokens, steps: DecodeSteps) -> None:
        self.prefilled, self.steps = prefilled, steps
        self.tokens = self.real = self.stepped = self.sequences = 0

    def take(self) -> int:
        """Count what ran since the last call; returns its prompt tokens."""
        tokens = self.prefilled.taken()
        stepped, sequences = self.steps.taken()
        self.tokens += tokens
        self.real += self.prefilled.real_taken()
        self.stepped += stepped
        self.sequences += sequences
        return tokens

    def drop(self) -> None:
        self.prefilled.taken(), self.prefilled.real_taken(), self.steps.taken()


def _cells(backend, dataset, config, cache, work: Path, device, sample, counts: GridCounts
           ) -> float:
    """Each strategy's cell through ``evaluate`` on ``cache``, its record written, beside the
    backend's own rate on ``sample`` (none: not measured); a row each; returns their seconds
    projected to the paper's utterances."""
    from harness.record import write_record
    from harness.runner.evaluate import evaluate
    from harness.strategies import get_strategy

    print(f"{'strategy':9} {'seconds':>8} {'utt/s':>8} {'backend utt/s':>14} {'ratio':>6} "
          f"{'tokens/item':>11} {'prefilled/item':>14}", flush=True)
    total = 0.0
    for name in STRATEGIES:
        seconds, record = _timed_value(lambda s=name: evaluate(
            backend, dataset, s, verifier=backend, config=config, cache=cache), device)
        cell_prefill = counts.take()
        write_record(record, work / "run")
        direct = (len(sample) / direct_seconds(backend, get_strategy(name), sample, dataset,
                                               config, device)
                  if sample else float("nan"))  # --direct 0: the grid alone, sooner
        counts.drop()  # the direct calls' are not the grid's
        rate = len(dataset) / seconds
        total += seconds * PAPER_ITEMS / len(dataset)
        print(f"{name:9} {seconds:8.1f} {rate:8.2f} {direct:14.2f} {rate / direct:6.2f} "
              f"{record.metrics.tokens / len(dataset):11.1f} {cell_prefill / len(dataset):14.1f}",
              flush=True)
    print("w-bon and w-alm-v take bon's and alm-v's candidates from the cache, as in the grid: "
          "their ratio is not a rate ratio; prefilled/item: prompt tokens the LM ran per item "
          "(the chat template's shared start, run once, not counted)")
    return total


def _summary(backend, items: int, counts: GridCounts, total: float, device, args) -> None:
    print(f"LM prefill over the whole grid: {counts.tokens / items:.1f} tokens per item"
          + (" (the plan's included)" if args.plan else "")
          + f"; {counts.real / items:.1f} of them real, the rest padding", flush=True)
    print(f"decode steps over the whole grid: {counts.stepped / items:.2f} per item, "
          f"{counts.sequences / max(counts.stepped, 1):.1f} sequences a step on average (a step "
          "reads the weights once)" + ("; the plan's decodings of a prompt in one loop"
                                       if args.together else ""), flush=True)
    print(f"batches halved after running out of memory: {backend.batch_sizes.halvings} (each "
          "kind of batch starts at the size that fitted after its first)", flush=True)
    heard = backend.heard
    if heard is not None:
        print(f"clips' audio taken from those heard before: {heard.hits} of "
              f"{heard.hits + heard.misses} prefills of a clip (store: {heard.budget >> 20} MiB, "
              f"{len(heard)} clips, {heard.held >> 20} MiB held at the end)", flush=True)
    print(f"projected: the eight strategies over {PAPER_ITEMS:,} utterances in "
          f"{total / 60:.1f} {'GPU-' if device == 'cuda' else 'CPU-'}minutes (target on one "
          "H200: <= 30 GPU-minutes)", flush=True)


class PrefillTokens:
    """Counts the prompt tokens ``backend`` runs through its LM (every ``prefill_after``): the
    padded width of each batch, which is the work done, and the real tokens among them."""

    def __init__(self, backend) -> None:
        self.count = self.real = 0
        run = backend.prefill_after

        def counted(prefix, seen, embeds, own, *args, **kwargs):
            self.count += embeds.shape[0] * embeds.shape[1]
            self.real += int(own.sum())
            return run(prefix, seen, embeds, own, *args, **kwargs)

        backend.prefill_after = counted

    def taken(self) -> int:
        """The tokens counted since the last call."""
        count, self.count = self.count, 0
        return count

    def real_taken(self) -> int:
        """The real (not padding) tokens counted since the last call."""
        real, self.real = self.real, 0
        return real


class DecodeSteps:
    """Counts the decode steps ``backend`` runs (each a forward pass of the LM for one new token
    of each sequence of a batch) and the sequences they ran."""

    def __init__(self, backend) -> None:
        self.steps = self.sequences = 0
        make = backend.decode_step

        def counting_step():
            step = make()

            def counted(tokens, *args):
                self.steps += 1
                self.sequences += tokens.shape[0]
                return step(tokens, *args)

            return counted

        backend.decode_step = counting_step

    def taken(self) -> tuple[int, int]:
        """(steps, sequences) counted since the last call."""
        counted = self.steps, self.sequences
        self.steps = self.sequences = 0
        return counted


def ab_together(backend, dataset, config, work: Path, device) -> None:
    """The model's plan alone over the same clips twice in one process, the decodings of a
    prompt one after the other and then in one loop (``decode_together``), each on a cache of
    its own and a backend that has heard nothing yet: seconds, decode steps and the projection
    of each, and their ratio."""
    from harness.cache import GenerationCache

    def plan(together: bool, clips, name: str) -> float:
        cache = GenerationCache(work / f"generations-{name}.sqlite")
        variant = backend.with_options(decode_together=together)  # it has heard nothing yet
        steps.append(DecodeSteps(variant))
        projected = _plan(variant, clips, config, cache, device)
        cache.close()
        return projected

    steps: list[DecodeSteps] = []
    print("warm-up: each variant's plan over the first 8 clips (first calls of each kind of "
          "batch), not counted", flush=True)
    for together in (False, True):
        plan(together, dataset[:8], f"warm-up-{together}")
    seconds = {}
    for together in (False, True):
        label = "together" if together else "apart"
        print(f"the plan, decodings {label}:", flush=True)
        projected = plan(together, dataset, label)
        seconds[label] = projected * len(dataset) / PAPER_ITEMS
        stepped, sequences = steps[-1].taken()
        print(f"  decode steps {stepped / len(dataset):.2f} per item, "
              f"{sequences / max(stepped, 1):.1f} sequences a step; the plan projected to "
              f"{PAPER_ITEMS:,} utterances: {projected / 60:.1f} minutes", flush=True)
    print(f"together / apart: {seconds['together'] / seconds['apart']:.3f} of the plan's time "
          "(the cells, from the cache, are the same either way)", flush=True)


def _plan(backend, dataset, config, cache, device) -> float:
    """The model's plan over the corpus, timed; prints each strategy's share and returns the
    plan's seconds projected to the paper's utterances."""
    from bench.stage_times import timed_value
    from harness.runner.plan import run_plan

    seconds, report = timed_value(lambda: run_plan(backend, dataset, STRATEGIES, config=config,
                                                   cache=cache, verifier=backend), device)
    shares = ", ".join(f"{name} {report.seconds.get(name, 0.0):.1f}" for name in STRATEGIES)
    print(f"plan: {seconds:.1f} s for every strategy's model calls ({len(dataset) / seconds:.2f} "
          f"utt/s of the whole grid); seconds per strategy: {shares}"
          + (f"; left out: {report.left_out}" if report.left_out else ""), flush=True)
    return seconds * PAPER_ITEMS / len(dataset)


def _direct_requests(dataset):
    """The first clips as requests with their audio in memory (the prompt is set per strategy)."""
    from harness.models.api import Request

    yield [Request(item.load_audio(), "", item.id) for item in dataset]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny config on the CPU")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--direct", type=int, default=256,
                        help="clips for the backend's own rate (0: not measured)")
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--work", type=Path, help="where the corpus, cache and records go")
    parser.add_argument("--no-shared-prompts", action="store_true",
                        help="each verifier request prefilled whole (FastPathOptions.share_prompts)")
    parser.add_argument("--no-heard-clips", action="store_true",
                        help="keep nothing of a clip between prompts (FastPathOptions.heard_clips_mib=0)")
    parser.add_argument("--narrow", action="store_true",
                        help="on the CPU: the tiny widths with the full vocabulary and Qwen's "
                             "tokenizer, so the prompt tokens an item are the full model's")
    parser.add_argument("--together", action="store_true",
                        help="decode the decodings asked together in one loop "
                             "(FastPathOptions.decode_together)")
    parser.add_argument("--ab-together", action="store_true",
                        help="only the plan, twice: decodings apart, then together")
    parser.add_argument("--plan", action="store_true",
                        help="fill the cache with the model's plan first (pytest evals --plan on)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.items, args.direct, args.new_tokens = min(args.items, 12), min(args.direct, 6), 8
    elif args.narrow:  # the full model's 40 tokens, a CPU's number of clips
        args.items, args.direct = min(args.items, 48), min(args.direct, 6)
    run(args)


if __name__ == "__main__":
    main()
