"""bench/qwen_tokenizer.py converts BPE ranks into a processor that splits text as the ranks do.

The real ranks come from a wheel on the package registry; here a small ranks file of the same
format stands in for them, so the conversion, its check and the processor it writes are tested
offline.
"""

import base64
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the hf extra is not installed")

from bench import qwen_tokenizer  # noqa: E402

MERGES = [b"th", b"he", b"the", b" t", b" the", b"in", b"ng", b"ing", b"at", b" at"]
TEXTS = ["the theme of the thing at that time", "Thing: 'thinking' at 1,234 the... café"]


def ranks_file(tmp_path, merges) -> Path:
    tokens = [bytes([b]) for b in range(256)] + merges
    path = tmp_path / "ranks.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in enumerate(tokens)))
    return path


def test_the_written_processor_splits_as_the_ranks_do(tmp_path):
    ranks = qwen_tokenizer.read_ranks(ranks_file(tmp_path, MERGES))
    qwen_tokenizer.write_processor(ranks, tmp_path / "processor", TEXTS)

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tmp_path / "processor")
    tokenizer = processor.tokenizer
    for text in TEXTS:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == \
            qwen_tokenizer.bpe_by_ranks(text, ranks)
    assert tokenizer(" the", add_special_tokens=False)["input_ids"] == [256 + MERGES.index(b" the")]
    first = len(ranks)
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>", "<|AUDIO|>"]) == \
        [first, first + 2, first + 3]
    assert tokenizer.pad_token_id == first and tokenizer.eos_token_id == first + 2
    chat = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "audio_url": "x"}, {"type": "text", "text": "hi"}]}],
        add_generation_prompt=True, tokenize=False)
    assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nhi<|im_end|>" in chat


def test_a_conversion_that_splits_otherwise_is_refused(tmp_path):
    ranks = qwen_tokenizer.read_ranks(ranks_file(tmp_path, MERGES))
    fewer = qwen_tokenizer.read_ranks(ranks_file(tmp_path, MERGES[:2]))
    tokenizer = qwen_tokenizer.build_tokenizer(fewer, chat_template=None)
    with pytest.raises(SystemExit, match="conversion differs"):
        qwen_tokenizer.check(tokenizer, ranks, TEXTS)
