"""Qwen2-Audio through transformers, on the harness's own fast path.

What differs from calling ``generate`` on the processor's output (DESIGN.md §12):

- the audio encoder runs over the batch's longest clip, not the 30 s window the processor pads to
  (padded frames are masked in the reference path too, so the outputs agree; a test checks it);
- clips are sorted by length and batched with left padding; the prompt, audio included, is
  prefilled once per clip and beams or samples share that cache;
- the batch size follows free GPU memory, and an out-of-memory error halves it and retries.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import numpy as np

from harness._embedded import embedded_path
from harness.models._audio_encoder import encode_audio
from harness.models._compiled import CompiledParts, compile_decoder, compiled_or_eager
from harness.models._decode import Prefilled, beam_search, sample
from harness.models._hf_common import (
    AUDIO_TOKEN,
    batched,
    cache_kwarg,
    clips_per_batch,
    expand_placeholders,
    flat_positions,
    free_gpu_bytes,
    hf_cache_snapshot,
    resolve_dtype,
    to_device,
    unscored_row,
    weights_revision,
)
from harness.models._kv_cache import KVPool, new_cache
from harness.models._log_mel import log_mel_batch
from harness.models._long_audio import check_policy, chunks, piece_count, run_fitting
from harness.models._readout import LabelTree, score_labels
from harness.models.api import (
    Candidate,
    Capabilities,
    Decoding,
    Generation,
    LabelScores,
    ModelInfo,
    ModelUnavailable,
)

MAX_SAMPLES = 30 * 16_000  # Qwen2-Audio's audio window; longer clips are truncated with a warning
HUB_ID = "Qwen/Qwen2-Audio-7B-Instruct"
ENV_VAR = "QWEN2_AUDIO_7B_PATH"


class Qwen2AudioBackend:
    """A Qwen2-Audio checkpoint behind :class:`~harness.models.ModelAPI`."""

    def __init__(self, name: str, model, processor, revision: str, batch_size: int | None = None,
                 long_audio: str = "truncate", compile_blocks: bool | None = None):
        import torch

        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        inner = getattr(model, "model", model)
        self.audio_tower, self.projector = inner.audio_tower, inner.multi_modal_projector
        self.lm, self.lm_head = inner.language_model, model.lm_head
        self.embed = self.lm.get_input_embeddings()
        self.cache_kw = cache_kwarg(self.lm)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.batch_size = batch_size
        self._constraints: dict = {}
        # clips over 30 s: "truncate" or "chunk" (each with a warning), or "error" (per item)
        self.long_audio = check_policy(long_audio)
        # in-place writes into a preallocated buffer: faster than concatenation on an H200
        # (bench/profile_decode.py); the static decode step lays it out grouped by clip
        self.cache_mode = "prealloc"
        # "graph": static-shape steps on a grouped cache (_static_step), replayed from a CUDA
        # graph; "static": the same, eager; "eager": ordinary steps on a repeated cache (fastest
        # on the CPU, where attending the whole static buffer is wasted work)
        self.decode_mode = "graph" if self.device.type == "cuda" else "eager"
        # the static step's attention (_static_step.ATTENTION_KERNELS): on an H200 the fastest, and
        # deterministic where cuDNN's ("auto") was not (bench/results/h200_decode_determinism.log)
        self.decode_attention = "matmul"
        self._pool: KVPool | None = None  # during generate with a static step: reused KV buffers
        self._static_step = None
        self._compiled: CompiledParts | None = None  # what compile_blocks replaced, to put back
        self.audio_id = self.tokenizer.convert_tokens_to_ids(AUDIO_TOKEN)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.eos_ids = sorted({i for i in (self.tokenizer.eos_token_id,
                                           self.tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                           self.tokenizer.convert_tokens_to_ids("<|endoftext|>"))
                               if isinstance(i, int) and 0 <= i < self.lm_head.out_features})
        self._templates: dict[int, str] = {}
        self._template = self._render_template()
        self._prefix_text = self._template[: self._template.index(AUDIO_TOKEN)]
        self._prefix: list | None = None  # its keys and values, computed at the first prefill
        self.info = ModelInfo(name, revision, str(self.dtype).removeprefix("torch."),
                              str(self.device), Capabilities(structured_output=True))
        self._torch = torch
        if self.device.type == "cuda" if compile_blocks is None else compile_blocks:
            self.compile_blocks()

    @classmethod
    def from_pretrained(cls, name: str, path: str | os.PathLike, dtype: str = "auto",
                        device: str | None = None, batch_size: int | None = None,
                        attn_implementation: str = "sdpa", long_audio: str = "truncate",
                        compile_blocks: bool | None = None) -> Qwen2AudioBackend:
        """Load weights from a local folder (nothing is downloaded)."""
        import torch
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = resolve_dtype(dtype, device)
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = Qwen2AudioForConditionalGeneration.from_pretrained(
            path, dtype=torch_dtype, local_files_only=True, attn_implementation=attn_implementation
        ).to(device)
        return cls(name, model, processor, weights_revision(path), batch_size, long_audio,
                   compile_blocks)

    # --- prompt and prefill -------------------------------------------------------------

    def _render_template(self, audios: int = 1) -> str:
        """The chat text around a prompt heard with ``audios`` audios (chunks of one clip)."""
        if audios not in self._templates:
            content = [{"type": "audio", "audio_url": f"clip{i}.wav"} for i in range(audios)]
            conversation = [{"role": "user", "content": [
                *content, {"type": "text", "text": "\x00PROMPT\x00"}]}]
            self._templates[audios] = self.processor.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False)
        return self._templates[audios]

    def render(self, prompt: str, n_audio_tokens: int | Sequence[int]) -> str:
        """The chat text for one clip, each audio placeholder expanded as the processor does
        (a list of counts: the clip's chunks, heard as successive audios)."""
        counts = [n_audio_tokens] if isinstance(n_audio_tokens, int) else list(n_audio_tokens)
        parts = self._render_template(len(counts)).split(AUDIO_TOKEN)
        text = parts[0] + "".join(AUDIO_TOKEN * n + rest for n, rest in zip(counts, parts[1:]))
        return text.replace("\x00PROMPT\x00", prompt)

    def encode_audio(self, features, frames):
        """Encoder over the longest clip's frames only (:func:`~harness.models._audio_encoder.
        encode_audio`); returns (B, T, H) and valid lengths."""
        layers = (self._compiled and self._compiled.encoder_layers) or self.audio_tower.layers
        return encode_audio(self.audio_tower, self.projector, layers, features, frames,
                            self.device, self.dtype)

    def features(self, audios: Sequence[np.ndarray]):
        """Log-mel features of a batch and the real frame counts (see
        :func:`~harness.models._log_mel.log_mel_batch`)."""
        return log_mel_batch(self.processor.feature_extractor, audios, MAX_SAMPLES, self.device)

    def prefill(self, audios: Sequence[np.ndarray], prompts: Sequence[str], reserve: int = 0
                ) -> Prefilled:
        """Encode the clips (each clip's chunks with ``long_audio="chunk"``), build the prompts,
        run the prompt through the LM once."""
        pieces = [chunks(a, MAX_SAMPLES) if self.long_audio == "chunk" else [a] for a in audios]
        features, frames = self.features([c for p in pieces for c in p])
        audio, out_lens = self.encode_audio(features, frames)
        return self.prefill_text(audio, out_lens, prompts, reserve, [len(p) for p in pieces])

    def prefill_text(self, audio, out_lens, prompts: Sequence[str], reserve: int = 0,
                     pieces: Sequence[int] | None = None) -> Prefilled:
        """The LM prefill over the prompts with the encoded audio scattered in.

        ``audio`` holds one row per chunk, ``pieces`` the number of chunks of each clip (one
        each by default). The chat template's text before the audio (the system turn,
        "Audio 1:") is the same for every clip: its keys and values are computed once and copied
        into each batch's cache, and only what follows runs through the LM. Each clip's padding
        sits between that prefix and its own tokens, masked, so its positions stay contiguous.
        """
        torch = self._torch
        with torch.inference_mode():
            prefix = self._prefix_cache()
            width = prefix[0][0].shape[2]
            pieces = pieces or [1] * len(prompts)
            texts = [self.render(p, [1] * k)[len(self._prefix_text):] for p, k in zip(prompts, pieces)]
            ids, own, slots = self._token_ids(texts, pieces, out_lens.tolist())
            embeds = self.embed(ids)
            frames = audio.flatten(0, 1).index_select(0, to_device(
                flat_positions(out_lens.numpy(), audio.shape[1]), self.device))
            embeds.view(-1, embeds.shape[-1]).index_copy_(0, to_device(slots, self.device),
                                                          frames.to(self.dtype))
            mask = torch.cat([own.new_ones(len(texts), width), own], dim=1)
            position = (mask.cumsum(-1) - 1).clamp(min=0)
            mode = "grouped" if self._static_decoding() else self.cache_mode
            cache = new_cache(self.lm.config, reserve + ids.shape[1], mode, self._pool)
            for layer, (k, v) in zip(cache.layers, prefix):
                layer.update(k.expand(len(texts), -1, -1, -1), v.expand(len(texts), -1, -1, -1))
                layer.reserve = reserve
            hidden = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position[:, width:],
                             use_cache=True, **{self.cache_kw: cache}).last_hidden_state
            return Prefilled(self.lm_head(hidden[:, -1]), cache, mask, position[:, -1] + 1)

    def _token_ids(self, texts: Sequence[str], pieces: Sequence[int], counts: Sequence[int]):
        """Left-padded token ids and mask of ``texts`` on the device, each written with one audio
        placeholder per audio (see :func:`~harness.models._hf_common.expand_placeholders`), and
        the flat positions of the audio tokens, read on the host (so that placing the encoded
        audio there waits for nothing)."""
        rows = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        ids, mask = expand_placeholders(rows, texts, pieces, counts, self.audio_id, self.pad_id)
        return (to_device(ids, self.device), to_device(mask, self.device),
                np.flatnonzero(ids == self.audio_id))

    def _prefix_cache(self) -> list:
        """Keys and values, per layer, of the template's text before the audio (batch of one)."""
        if self._prefix is None:
            from transformers import DynamicCache

            ids = self.tokenizer(self._prefix_text, return_tensors="pt")["input_ids"].to(self.device)
            cache = DynamicCache()
            self.lm(input_ids=ids, use_cache=True, **{self.cache_kw: cache})
            self._prefix = [(layer.keys, layer.values) for layer in cache.layers]
        return self._prefix

    def _static_decoding(self) -> bool:
        return self.decode_mode != "eager" and self.cache_mode == "prealloc"

    def decode_reserve(self, decoding: Decoding) -> int:
        """Cache room to reserve past the prompt: the static step's grouped cache holds a slot of
        new tokens for each of a clip's sequences; the ordinary one repeats the prompt with room
        for one."""
        per_clip = decoding.num_candidates if self._static_decoding() else 1
        return decoding.max_new_tokens * per_clip

    def decode_step(self):
        """The step function for one batch's decode, per :attr:`decode_mode`.

        Inside :meth:`pooled_decoding` (as in :meth:`generate`) the static step and its CUDA
        graph live from batch to batch; outside, each call gets a fresh one.
        """
        if not self._static_decoding():
            return self.step
        from harness.models._static_step import StaticStep

        graphs = self.decode_mode == "graph"
        if self._pool is None:  # outside pooled_decoding: a fresh step per batch
            return StaticStep(self, graphs)
        if self._static_step is None:
            self._static_step = StaticStep(self, graphs)
        return self._static_step.begin()

    @contextlib.contextmanager
    def pooled_decoding(self):
        """Within: one KV pool and one static step (with its graph) serve every batch; after,
        both are dropped so their memory is free for whatever runs next."""
        self._pool = KVPool() if self._static_decoding() else None
        try:
            yield
        finally:
            self._release_decoder()
            self._pool = None

    def _release_decoder(self) -> None:
        """Drop the pooled KV buffers and the graph (after a call, or before an OOM retry)."""
        self._static_step = None
        if self._pool is not None:
            self._pool.clear()

    def compile_blocks(self, enabled: bool = True) -> None:
        """Fuse the elementwise work of the LM's and the audio encoder's layers with
        ``torch.compile`` (:func:`~harness.models._compiled.compile_decoder`), checked on a
        two-clip prefill (where compilation fails, a warning and the eager modules);
        ``enabled=False`` restores the eager ones. On by default on a GPU, where it paid on an
        H200 (bench/results/)."""
        if self._compiled:
            self._compiled.restore()
        self._compiled = None
        if enabled:
            parts = compile_decoder(self.lm.layers, self.audio_tower.layers, self._torch)
            self._compiled = compiled_or_eager(parts, self._compile_check)

    def _compile_check(self) -> None:
        """A prefill of two short clips of different lengths through the compiled parts (not one:
        a dimension of size one would be compiled as a constant)."""
        self.prefill([np.zeros(16_000, np.float32), np.zeros(12_000, np.float32)], ["a", "b"])

    def step(self, tokens, mask, position, cache):
        """Logits for the next token of every sequence (one decode step)."""
        return self.extend(tokens[:, None], mask, position[:, None], cache)[:, -1]

    def extend(self, tokens, mask, positions, cache):
        """Logits at every position of ``tokens`` (S, m) appended to the cache."""
        hidden = self.lm(inputs_embeds=self.embed(tokens), attention_mask=mask,
                         position_ids=positions, use_cache=True,
                         **{self.cache_kw: cache}).last_hidden_state
        return self.lm_head(hidden)

    # --- ModelAPI ----------------------------------------------------------------------

    def generate(self, requests, decoding: Decoding) -> list[Generation]:
        n = decoding.num_candidates
        constraint = self.constraint(decoding.json_labels) if decoding.constrained else None
        generator = None
        if decoding.mode == "sample":
            generator = self._torch.Generator(self.device).manual_seed(decoding.seed)

        def run(chunk):
            try:
                state = self.prefill([r.audio for r in chunk], [r.prompt for r in chunk],
                                     reserve=self.decode_reserve(decoding))
                step = self.decode_step()
                if decoding.mode == "beam":
                    decoded = beam_search(step, state, n, decoding, self.eos_ids, self.pad_id,
                                          constraint)
                else:
                    decoded = sample(step, state, n, decoding, self.eos_ids, self.pad_id,
                                     generator, constraint)
            except self._torch.cuda.OutOfMemoryError:
                self._release_decoder()  # the smaller retry must not find the big buffers held
                raise
            finally:
                if self._static_step is not None:
                    self._static_step.end()
            return [self._to_generation(d) for d in decoded]

        with self.pooled_decoding():
            return self._over_fitting_clips(
                requests, lambda fit: batched(fit, run, self._batch_size(fit, n, decoding.max_new_tokens),
                                              self._torch, on_error=lambda _, r: Generation(error=r)),
                lambda _, reason: Generation(error=reason))

    def _over_fitting_clips(self, requests, run_all, refuse) -> list:
        """Clips over the 30 s window per :attr:`long_audio` (harness.models._long_audio)."""
        with self._torch.inference_mode():
            return run_fitting(requests, MAX_SAMPLES, self.long_audio, run_all, refuse)

    def constraint(self, labels: Sequence[str]):
        """The JSON-template automaton for ``labels`` (built once per label set)."""
        from harness.models._constrained import JsonConstraint, token_strings

        key = tuple(labels)
        if key not in self._constraints:
            self._constraints[key] = JsonConstraint(key, token_strings(self.tokenizer),
                                                    self.lm_head.out_features, self.eos_ids)
        return self._constraints[key]

    def _to_generation(self, decoded) -> Generation:
        texts = self.tokenizer.batch_decode([list(d.tokens) for d in decoded], skip_special_tokens=True)
        return Generation(tuple(Candidate(t, len(d.tokens), d.logprob, d.finite)
                                for t, d in zip(texts, decoded)))

    def label_tree(self, labels: Sequence[str]) -> LabelTree:
        """The labels' tokens, each closed by the end of the turn, laid out for one forward."""
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return LabelTree([self.tokenizer(label, add_special_tokens=False)["input_ids"] + [end]
                          for label in labels], self.device)

    def label_logprobs(self, requests, labels: Sequence[str]) -> list[LabelScores]:
        torch = self._torch
        tree = self.label_tree(labels)
        unscored = unscored_row(len(labels))

        def run(chunk):
            state = self.prefill([r.audio for r in chunk], [r.prompt for r in chunk],
                                 reserve=tree.size)
            scores = score_labels(self, state, tree)
            # read once the next batch is queued
            return lambda: [LabelScores(row) for row in scores.cpu().numpy()]

        return self._over_fitting_clips(
            requests, lambda fit: batched(fit, run, self._batch_size(fit, 1, tree.size), torch,
                                          on_error=unscored),
            unscored)

    def _batch_size(self, requests, sequences_per_clip: int, new_tokens: int) -> int:
        """Clips per batch from free GPU memory (see :func:`clips_per_batch`); 8 on the CPU."""
        if self.batch_size:
            return self.batch_size
        if self.device.type != "cuda":
            return 8
        return clips_per_batch(free_gpu_bytes(self.device), self.lm.config,
                               self._prompt_tokens(requests), new_tokens, sequences_per_clip,
                               self.lm_head.out_features, shared_prompt=self._static_decoding())

    def _prompt_tokens(self, requests) -> int:
        """An upper bound on the prompt length: the longest clip's audio tokens (25 per second)
        plus the longest prompt's text tokens."""
        if not requests:
            return 0
        samples = max(len(r.audio) for r in requests)
        pieces = piece_count(samples, MAX_SAMPLES) if self.long_audio == "chunk" else 1
        samples = min(samples, pieces * MAX_SAMPLES)
        longest = max((r.prompt for r in requests), key=len)
        text = self.render(longest, [0] * pieces)
        return samples // 640 + 2 * pieces + len(self.tokenizer(text)["input_ids"])


def qwen2_audio_7b(path: str | None = None, **options) -> Qwen2AudioBackend:
    """``qwen2-audio-7b``: ``$QWEN2_AUDIO_7B_PATH`` or the local Hugging Face cache."""
    path = path or os.environ.get(ENV_VAR) or hf_cache_snapshot(HUB_ID)
    if not path:
        raise ModelUnavailable(f"qwen2-audio-7b: no local weights; set {ENV_VAR} to a copy of "
                               f"{HUB_ID} or put it in the Hugging Face cache")
    return Qwen2AudioBackend.from_pretrained("qwen2-audio-7b", path, **options)


def tiny_qwen2_audio(path: str | None = None, **options) -> Qwen2AudioBackend:
    """``tiny-qwen2-audio``: the embedded default model shipped inside the package
    (``harness/embedded/tiny_qwen2_audio``)."""
    options.setdefault("device", "cpu")
    options.setdefault("dtype", "float32")
    path = path or embedded_path("tiny_qwen2_audio")
    return Qwen2AudioBackend.from_pretrained("tiny-qwen2-audio", path, **options)
