"""An audio LM's chat text around a prompt, and its token ids with the audio placeholders
expanded in id space (the processor's output, without re-tokenizing the expanded text)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.models._hf_common import AUDIO_TOKEN, expand_placeholders, to_device
from harness.models._long_audio import piece_count

PROMPT_SLOT = "\x00PROMPT\x00"


class ChatText:
    """The chat template rendered once per audio count, with the prompt put in its slot."""

    def __init__(self, processor, device, audio_token: str = AUDIO_TOKEN) -> None:
        self.processor, self.tokenizer, self.device = processor, processor.tokenizer, device
        self.audio_token = audio_token
        self.audio_id = self.tokenizer.convert_tokens_to_ids(audio_token)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._templates: dict[int, str] = {}
        template = self.template()
        self.prefix = template[: template.index(audio_token)]  # the same for every clip

    def template(self, audios: int = 1) -> str:
        """The chat text around a prompt heard with ``audios`` audios (chunks of one clip)."""
        if audios not in self._templates:
            content = [{"type": "audio", "audio_url": f"clip{i}.wav"} for i in range(audios)]
            conversation = [{"role": "user", "content": [
                *content, {"type": "text", "text": PROMPT_SLOT}]}]
            self._templates[audios] = self.processor.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False)
        return self._templates[audios]

    def render(self, prompt: str, n_audio_tokens: int | Sequence[int]) -> str:
        """The chat text for one clip, each audio placeholder expanded as the processor does
        (a list of counts: the clip's chunks, heard as successive audios)."""
        counts = [n_audio_tokens] if isinstance(n_audio_tokens, int) else list(n_audio_tokens)
        parts = self.template(len(counts)).split(self.audio_token)
        text = parts[0] + "".join(self.audio_token * n + rest for n, rest in zip(counts, parts[1:]))
        return text.replace(PROMPT_SLOT, prompt)

    def after_prefix(self, prompts: Sequence[str], pieces: Sequence[int]) -> list[str]:
        """Each clip's chat text past the shared prefix, one placeholder per audio."""
        return [self.render(p, [1] * k)[len(self.prefix):] for p, k in zip(prompts, pieces)]

    def rows(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, one placeholder per audio."""
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def token_ids(self, texts: Sequence[str], pieces: Sequence[int], counts: Sequence[int],
                  rows: Sequence[Sequence[int]]):
        """Left-padded token ids and mask of ``texts`` from their ``rows`` (:meth:`rows`) on the
        device, each written with one audio placeholder per audio (see
        :func:`~harness.models._hf_common.expand_placeholders`), and the flat positions of the
        audio tokens, read on the host (so that placing the encoded audio there waits for
        nothing)."""
        ids, mask = expand_placeholders(rows, texts, pieces, counts, self.audio_id, self.pad_id)
        return (to_device(ids, self.device), to_device(mask, self.device),
                np.flatnonzero(ids == self.audio_id))

    def longest_prompt(self, requests: Sequence, window: int, chunked: bool) -> int:
        """An upper bound on the requests' prompt length in tokens: the longest clip's and the
        longest prompt's (see :meth:`prompt_tokens`)."""
        if not requests:
            return 0
        samples = max(len(r.audio) for r in requests)
        longest = max((r.prompt for r in requests), key=len)
        return self.prompt_tokens(longest, samples, window, chunked)

    def prompt_tokens(self, prompt: str, samples: int, window: int, chunked: bool,
                      limit: int | None = None) -> int:
        """An upper bound on the tokens of ``prompt`` heard with a clip of ``samples``: its
        audio's (25 a second, what a Whisper encoder pooled in two gives, and 2 per audio;
        ``chunked``: in pieces of ``window`` samples, else its first window) plus its chat
        text's. With ``limit``, the text is not tokenized where its UTF-8 bytes (2 more than a
        byte-level tokenizer's tokens can be) already keep the total within it: that bound
        is returned instead."""
        pieces = piece_count(samples, window) if chunked else 1
        audio = min(samples, pieces * window) // 640 + 2 * pieces
        text = self.render(prompt, [0] * pieces)
        quick = audio + len(text.encode("utf-8", "surrogatepass")) + 2
        if limit is not None and quick <= limit:
            return quick
        return audio + len(self.tokenizer(text)["input_ids"])


def end_ids(tokenizer, generation_config, vocab: int) -> list[int]:
    """The tokens that end an answer: the tokenizer's end-of-sequence token, the chat's end of
    turn and end of text, and those the checkpoint's generation config names (what ``generate``
    stops at), each only where the vocabulary really has it."""
    named = [tokenizer.eos_token_id]
    for token in ("<|im_end|>", "<|endoftext|>"):
        found = tokenizer.convert_tokens_to_ids(token)
        if isinstance(found, int) and tokenizer.convert_ids_to_tokens(found) == token:
            named.append(found)
    named.extend(np.atleast_1d(getattr(generation_config, "eos_token_id", None) or []).tolist())
    return sorted({i for i in named if isinstance(i, int) and 0 <= i < vocab})


class AudioTextProcessor:
    """What the fast path reads of a processor: its tokenizer, its feature extractor and its
    chat template; for a checkpoint whose whole processor it does not build (Qwen2.5-Omni's
    image and video parts need torchvision, which an audio benchmark never uses)."""

    def __init__(self, tokenizer, feature_extractor) -> None:
        self.tokenizer, self.feature_extractor = tokenizer, feature_extractor

    def apply_chat_template(self, conversation, **kwargs):
        return self.tokenizer.apply_chat_template(conversation, **kwargs)

    @classmethod
    def from_pretrained(cls, path) -> AudioTextProcessor:
        """The parts from a local checkpoint folder; the chat template is the tokenizer's, else
        the processor's own file (``chat_template.jinja``, or ``chat_template.json`` as older
        processors wrote it).

        Raises:
            ValueError: the folder holds no chat template.
        """
        import json
        from pathlib import Path

        from transformers import AutoFeatureExtractor, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not tokenizer.chat_template:
            jinja, old = Path(path) / "chat_template.jinja", Path(path) / "chat_template.json"
            if jinja.is_file():
                tokenizer.chat_template = jinja.read_text()
            elif old.is_file():
                tokenizer.chat_template = json.loads(old.read_text())["chat_template"]
            else:
                raise ValueError(f"{path}: no chat template (the tokenizer's, chat_template.jinja "
                                 "or chat_template.json)")
        return cls(tokenizer, AutoFeatureExtractor.from_pretrained(path, local_files_only=True))


def audio_text_processor(path, whole: bool):
    """The checkpoint's processor (``whole``), else its :class:`AudioTextProcessor`; nothing is
    downloaded either way."""
    if not whole:
        return AudioTextProcessor.from_pretrained(path)
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(path, local_files_only=True)
