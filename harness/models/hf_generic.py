"""Audio LMs through their own transformers processor and plain ``generate``.

The reference the fast path is checked against (Audio Flamingo 3 and Qwen2.5-Omni with
``plain_generate=True``), and a way to run any checkpoint a transformers processor serves: the
processor builds the batch, ``generate`` decodes with ``length_penalty=0`` and neutral penalties
set explicitly (checkpoints ship sampling defaults), and α is the raw sum of the chosen tokens'
log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.models._audio_chat import end_ids
from harness.models._checkpoint_files import unreadable_files_named
from harness.models._context import check_fits, context_window
from harness.models._hf_common import (
    batched,
    chosen_logprobs,
    generate_kwargs,
    load_weights,
    pick_device,
    resolve_dtype,
    unscored_row,
    weights_revision,
)
from harness.models.api import (
    Candidate,
    Capabilities,
    Decoding,
    Generation,
    LabelScores,
    ModelInfo,
)

PROMPT_SLOT = "\x00PROMPT\x00"


def turn_end(processor, tokenizer) -> str:
    """The token the chat template closes an assistant's turn with, which a label is scored
    before (as the fast path closes it with its end of turn): ``<|im_end|>`` for Qwen-style
    chats even where the tokenizer's EOS is ``<|endoftext|>``; the EOS where the template
    renders no assistant turn."""
    fallback = tokenizer.eos_token or ""
    for content in ([{"type": "text", "text": PROMPT_SLOT}], PROMPT_SLOT):
        chat = [{"role": "user", "content": [{"type": "text", "text": "?"}]},
                {"role": "assistant", "content": content}]
        try:
            text = processor.apply_chat_template(chat, tokenize=False)
        except Exception:  # noqa: BLE001 - a template may refuse either content form
            continue
        if isinstance(text, str) and PROMPT_SLOT in text:
            after = tokenizer(text.split(PROMPT_SLOT, 1)[1], add_special_tokens=False)["input_ids"]
            return tokenizer.convert_ids_to_tokens(after[0]) if after else fallback
    return fallback


class HFGenerateBackend:
    """A transformers audio LM driven through its processor and ``generate``."""

    def __init__(self, name: str, model, processor, revision: str, batch_size: int = 8):
        import torch

        self._torch = torch
        self.model, self.processor = model.eval(), processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"
        self.device = next(model.parameters()).device
        self.batch_size = batch_size
        # what ends an answer, as the fast path takes it: a generation config saved from the
        # model's config names none, and generate would run on past the end of the turn
        self.eos_ids = end_ids(self.tokenizer, model.generation_config,
                               model.get_output_embeddings().out_features)
        self._template = self._render_template()
        self.turn_end = turn_end(self.processor, self.tokenizer)
        caps = Capabilities(structured_output=True)
        self.info = ModelInfo(name, revision, str(next(model.parameters()).dtype).removeprefix(
            "torch."), str(self.device), caps, options=(("backend", "hf-generate/3"),))

    @classmethod
    def from_pretrained(cls, name: str, path, model_class: str, *, dtype: str = "auto",
                        device: str | None = None, batch_size: int = 8) -> HFGenerateBackend:
        import transformers
        from transformers import AutoProcessor

        device = pick_device(device, name)
        with unreadable_files_named(name, path, "processor files"):
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = load_weights(getattr(transformers, model_class), name, path,
                             dtype=resolve_dtype(dtype, device))
        return cls(name, model.to(device), processor, weights_revision(path), batch_size)

    def _render_template(self) -> str:
        content = [{"type": "audio", "audio": "clip.wav", "audio_url": "clip.wav", "path": "clip.wav"},
                   {"type": "text", "text": PROMPT_SLOT}]
        return self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                  add_generation_prompt=True, tokenize=False)

    def _inputs(self, chunk, suffixes: Sequence[str] | None = None, room: int = 0):
        """The processor's batch; ValueError where a prompt with ``room`` new tokens would pass
        the model's context (the batch is then asked again one request at a time)."""
        texts = [self._template.replace(PROMPT_SLOT, r.prompt) for r in chunk]
        if suffixes is not None:
            texts = [t + s for t, s in zip(texts, suffixes)]
        # padding for the text only: the audio keeps each processor's own padding (often 30 s)
        inputs = self.processor(text=texts, audio=[r.audio for r in chunk], sampling_rate=16_000,
                                return_tensors="pt", text_kwargs={"padding": True})
        mask = inputs.get("attention_mask")
        lengths = ([inputs["input_ids"].shape[1]] * len(chunk) if mask is None
                   else mask.sum(1).tolist())
        longest = int(np.argmax(lengths))
        check_fits(chunk[longest].prompt, int(lengths[longest]), room,
                   context_window(self.model.config))
        return self._on_device(inputs)

    def _on_device(self, inputs):
        """The processor's tensors on the model's device, its float ones (the audio features,
        float32 whatever the model) in the model's dtype: a 16-bit model given float32 features
        fails every request (Audio Flamingo 3's convolution: "Input type (float) and bias type
        (c10::BFloat16) should be the same"), as transformers' examples cast them."""
        dtype = next(self.model.parameters()).dtype
        inputs = inputs.to(self.device)
        for key, value in inputs.items():
            if self._torch.is_tensor(value) and value.is_floating_point():
                inputs[key] = value.to(dtype)
        return inputs

    def generate(self, requests, decoding: Decoding) -> list[Generation]:
        n = decoding.num_candidates

        def run(chunk):
            inputs = self._inputs(chunk, room=decoding.max_new_tokens)
            extra = {}
            if decoding.constrained:
                extra["prefix_allowed_tokens_fn"] = self._allowed_tokens(
                    decoding.json_labels, inputs["input_ids"].shape[1])
            out = self.model.generate(**inputs, **generate_kwargs(decoding), **extra,
                                      eos_token_id=self.eos_ids)
            start = inputs["input_ids"].shape[1]
            return self._generations(out, start, decoding, len(chunk), n)

        with self._torch.inference_mode():
            return batched(requests, run, self.batch_size, self._torch,
                           on_error=lambda _, reason: Generation(error=reason))

    def _allowed_tokens(self, labels, start: int):
        """``prefix_allowed_tokens_fn`` for the JSON answer template (beam-safe: per sequence)."""
        from harness.models._constrained import JsonConstraint, token_strings

        vocab = self.model.get_output_embeddings().out_features
        eos = self.eos_ids
        automaton = JsonConstraint(labels, token_strings(self.tokenizer), vocab, eos)
        allowed = [np.flatnonzero(m).tolist() for m in automaton.masks]

        def fn(batch_id, input_ids):
            state = automaton.initial(1)
            for token in input_ids[start:].tolist():
                state = automaton.advance(state, np.array([token]))
            return allowed[int(state[0])] or eos

        return fn

    def _generations(self, out, start: int, decoding: Decoding, clips: int, n: int):
        torch = self._torch
        new = out.sequences[:, start:]
        steps = chosen_logprobs(self.model, out, decoding)
        eos = set(self.eos_ids)
        rows = []
        for i in range(new.shape[0]):
            tokens = new[i].tolist()
            length = next((j + 1 for j, t in enumerate(tokens) if t in eos), len(tokens))
            scores = steps[i, :length].double()
            rows.append(Candidate(self.tokenizer.decode(tokens[:length], skip_special_tokens=True),
                                  length, float(scores.nan_to_num(neginf=-1e30).sum()),
                                  bool(torch.isfinite(scores).all())))
        return [Generation(tuple(sorted(rows[c * n:(c + 1) * n], key=lambda x: -x.logprob)))
                for c in range(clips)]

    def label_logprobs(self, requests, labels: Sequence[str]) -> list[LabelScores]:
        torch = self._torch
        end = self.turn_end
        label_len = [len(self.tokenizer(lab + end, add_special_tokens=False)["input_ids"])
                     for lab in labels]

        def run(chunk):
            total = np.zeros((len(chunk), len(labels)))
            for k, label in enumerate(labels):
                inputs = self._inputs(chunk, [label + end] * len(chunk))
                logits = self.model(**inputs).logits[:, -label_len[k] - 1:-1].float()
                target = inputs["input_ids"][:, -label_len[k]:]
                picked = torch.log_softmax(logits, -1).gather(2, target[..., None])[..., 0]
                total[:, k] = picked.sum(1).double().cpu().numpy()
            return [LabelScores(row) for row in total]

        with torch.inference_mode():
            return batched(requests, run, self.batch_size, torch,
                           on_error=unscored_row(len(labels)))
