"""Audio LMs built as Qwen2-Audio is (an audio encoder, a projector, a decoder LM whose prompt
embeds the encoded audio at placeholder tokens) on the harness's own fast path.

One class, :class:`FastAudioLM`, serves every such architecture; what differs between them (the
transformers class, the audio placeholder, how a long clip's windows are heard, whose code runs
the encoder) is an :class:`Architecture` value on a small subclass (``hf_qwen2_audio``,
``hf_audio_flamingo_3``, ``hf_qwen2_5_omni``). What differs from calling ``generate`` on the
processor's output:

- the audio encoder runs over the batch's longest clip, not the 30 s window the processor pads to
  (padded frames are masked in the reference path too, so the outputs agree; a test checks it);
- clips are sorted by length and batched with left padding; the prompt, audio included, is
  prefilled once per clip and beams or samples share that cache; several decodings share it too
  (:meth:`FastAudioLM.generate_many`), and so do requests hearing the same clip with prompts
  that start alike, up to where they part (harness.models._shared_prompt);
- the batch size follows free GPU memory, and an out-of-memory error halves it and retries.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar, TypeVar

import numpy as np

from harness.models._audio_chat import ChatText, audio_text_processor, end_ids
from harness.models._audio_encoder import encode_audio, encode_with_own_encoder
from harness.models._batch_sizes import LearnedBatchSizes
from harness.models._checkpoint_files import unreadable_files_named
from harness.models._compiled import CompiledParts, compiled_parts, eager_stance, settle_compilation
from harness.models._decode import Prefilled, decode_searches, new_search
from harness.models._heard_clips import HeardClips
from harness.models._hf_common import (
    cache_kwarg,
    clips_per_batch,
    flat_positions,
    free_gpu_bytes,
    load_weights,
    pick_device,
    resolve_dtype,
    to_device,
    weights_revision,
)
from harness.models._kv_cache import KVPool
from harness.models._kv_layers import new_cache
from harness.models._log_mel import log_mel_batch
from harness.models._long_audio import chunks
from harness.models._readout import LabelTree, label_logprobs, score_labels
from harness.models._shared_prefill import generate_many
from harness.models._shared_prompt import prefill_in_stages
from harness.models.api import (
    Candidate,
    Capabilities,
    Decoding,
    Generation,
    LabelScores,
    ModelInfo,
)
from harness.models.fast_path import MAX_SAMPLES, Architecture, FastPathOptions

_Backend = TypeVar("_Backend", bound="FastAudioLM")


class FastAudioLM:
    """An audio LM checkpoint behind :class:`~harness.models.ModelAPI`, on the fast path; a
    subclass names its :class:`Architecture`."""

    ARCHITECTURE: ClassVar[Architecture]
    CHAT: ClassVar[type[ChatText]] = ChatText  # how its chat template is rendered around a prompt

    def __init__(self, name: str, model, processor, revision: str,
                 options: FastPathOptions | None = None):
        import torch

        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.inner, self.audio_tower, self.projector, self.lm, self.lm_head = self.parts(model)
        self.embed = self.lm.get_input_embeddings()
        self.cache_kw = cache_kwarg(self.lm)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.options = (options or FastPathOptions()).resolved(self.device.type == "cuda")
        self._constraints: dict = {}
        self._pool: KVPool | None = None  # during generate with a static step: reused KV buffers
        self._static_step = None
        self.batch_sizes = LearnedBatchSizes()  # shares of the estimate that fitted, per kind
        budget = self.options.heard_budget(self.device)
        self.heard = HeardClips(budget) if budget else None  # clips' audio, prefilled lately
        arch = self.ARCHITECTURE
        self.chat = self.CHAT(processor, self.device, arch.audio_token)
        self.audio_id, self.pad_id = self.chat.audio_id, self.chat.pad_id
        self.eos_ids = end_ids(self.tokenizer, model.generation_config, self.lm_head.out_features)
        self._prefix: list | None = None  # its keys and values, computed at the first prefill
        self.info = ModelInfo(name, revision, str(self.dtype).removeprefix("torch."),
                              str(self.device), Capabilities(structured_output=True),
                              options=(("backend", f"{arch.backend}/{arch.version}"),
                                       *self.options.output_options()))
        self._torch = torch
        settle_compilation(self)

    @staticmethod
    def parts(model) -> tuple:
        """The loaded model's (the module holding the audio tower, audio tower, projector,
        decoder, LM head). Transformers nests the towers and the decoder in ``model.model``
        (``language_model``); releases up to 5.17 at least left Qwen2.5-Omni's thinker flat, its
        audio tower on the model itself and its decoder as ``model.model``."""
        inner = getattr(model, "model", model)
        if not hasattr(inner, "audio_tower") and hasattr(model, "audio_tower"):  # the flat layout
            return (model, model.audio_tower, getattr(model, "multi_modal_projector", None), inner,
                    model.lm_head)
        return (inner, inner.audio_tower, getattr(inner, "multi_modal_projector", None),
                inner.language_model, model.lm_head)

    @property
    def _compiled(self) -> CompiledParts | None:
        """What compiling replaced in these weights (None: eager)."""
        return compiled_parts(self.model) if self.options.compile_blocks else None

    @property
    def compiled(self) -> bool:
        """Whether the layers run compiled (``compile_blocks`` asked for and the check passed)."""
        return self._compiled is not None

    def with_options(self: _Backend, **changes: object) -> _Backend:
        """A backend on the same weights with some :class:`FastPathOptions` changed.

        Compiled layers belong to the weights, so the backend built last decides whether they
        run compiled: use one backend at a time.
        """
        options = replace(self.options, **changes)  # type: ignore[arg-type]
        return type(self)(self.info.name, self.model, self.processor, self.info.revision, options)

    @classmethod
    def from_pretrained(cls: type[_Backend], name: str, path: str | os.PathLike, dtype: str = "auto",
                        device: str | None = None, attn_implementation: str = "sdpa",
                        **options: object) -> _Backend:
        """Load weights from a local folder (nothing is downloaded); ``options`` are
        :class:`FastPathOptions` fields (``long_audio="chunk"``, ``batch_size=16``, ...)."""
        import transformers

        device = pick_device(device, name)
        torch_dtype = resolve_dtype(dtype, device)
        with unreadable_files_named(name, path, "processor files"):
            processor = audio_text_processor(path, cls.ARCHITECTURE.whole_processor)
        model = load_weights(getattr(transformers, cls.ARCHITECTURE.model_class), name, path,
                             dtype=torch_dtype, attn_implementation=attn_implementation)
        model = model.to(device)
        return cls(name, model, processor, weights_revision(str(path)),
                   FastPathOptions.from_kwargs(**options))

    # --- prompt and prefill -------------------------------------------------------------

    def render(self, prompt: str, n_audio_tokens: int | Sequence[int]) -> str:
        """The chat text for one clip, each audio placeholder expanded as the processor does
        (a list of counts: the clip's chunks, heard as successive audios)."""
        return self.chat.render(prompt, n_audio_tokens)

    def encode_audio(self, features, frames):
        """Encoder over the longest clip's frames only (:func:`~harness.models._audio_encoder.
        encode_audio`); returns (B, T, H) and valid lengths."""
        if self.ARCHITECTURE.encoder == "own":
            return encode_with_own_encoder(self.inner, features, frames, self.device, self.dtype)
        layers = (self._compiled and self._compiled.encoder_layers) or self.audio_tower.layers
        return encode_audio(self.audio_tower, self.projector, layers, features, frames,
                            self.device, self.dtype)

    def features(self, audios: Sequence[np.ndarray]):
        """Log-mel features of a batch and the real frame counts (see
        :func:`~harness.models._log_mel.log_mel_batch`)."""
        return log_mel_batch(self.processor.feature_extractor, audios, MAX_SAMPLES, self.device)

    def prefill(self, audios: Sequence[np.ndarray], prompts: Sequence[str], reserve: int = 0,
                keys: Sequence[str] | None = None) -> Prefilled:
        """Encode the clips (each clip's chunks with ``long_audio="chunk"``), build the prompts,
        run the prompt through the LM once; ``keys``, the clips' content hashes: what was heard
        of a clip lately is not heard again (harness.models._shared_prompt)."""
        staged = prefill_in_stages(self, audios, prompts, reserve, keys)
        if staged is not None:
            return staged
        audio, out_lens, pieces = self.encode_clips(audios)
        return self.prefill_text(audio, out_lens, prompts, reserve, pieces)

    def encode_clips(self, audios: Sequence[np.ndarray]):
        """The clips encoded (each clip's chunks with ``long_audio="chunk"``): (rows, T, H), the
        tokens of each row, and the rows (chunks) of each clip."""
        pieces = [chunks(a, MAX_SAMPLES) if self.options.long_audio == "chunk" else [a] for a in audios]
        features, frames = self.features([c for p in pieces for c in p])
        audio, out_lens = self.encode_audio(features, frames)
        return audio, out_lens, [len(p) for p in pieces]

    def prefill_text(self, audio, out_lens, prompts: Sequence[str], reserve: int = 0,
                     pieces: Sequence[int] | None = None) -> Prefilled:
        """The LM prefill over the prompts with the encoded audio scattered in.

        ``audio`` holds one row per chunk, ``pieces`` the number of chunks of each clip (one
        each by default). The chat template's text before the audio (the system turn,
        "Audio 1:") is the same for every clip: its keys and values are computed once and copied
        into each batch's cache, and only what follows runs through the LM. Each clip's padding
        sits between that prefix and its own tokens, masked, so its positions stay contiguous.
        """
        audios, counts = self._placeholders(pieces or [1] * len(prompts), out_lens.tolist())
        texts = self.chat.after_prefix(prompts, audios)
        return self.prefill_rows(audio, out_lens, self.chat.rows(texts), texts, audios, counts,
                                 reserve)

    def prefill_rows(self, audio, out_lens, rows, texts, audios, counts, reserve: int = 0,
                     pooled: bool = True) -> Prefilled:
        """:meth:`prefill_text` from the texts' token rows (``audios`` placeholders in each,
        ``counts`` audio tokens per placeholder); ``pooled=False``: a cache of its own, not the
        pool's buffers (a transient one, read by another prefill)."""
        torch = self._torch
        with torch.inference_mode():
            ids, own, slots = self.chat.token_ids(texts, audios, counts, rows)
            embeds = self.embed(ids)
            frames = audio.flatten(0, 1).index_select(0, to_device(
                flat_positions(out_lens.numpy(), audio.shape[1]), self.device))
            embeds.view(-1, embeds.shape[-1]).index_copy_(0, to_device(slots, self.device),
                                                          frames.to(self.dtype))
            prefix = [(k.expand(len(texts), -1, -1, -1), v.expand(len(texts), -1, -1, -1))
                      for k, v in self._prefix_cache()]
            seen = own.new_ones(len(texts), prefix[0][0].shape[2])
            return self.prefill_after(prefix, seen, embeds, own, reserve, pooled)

    def prefill_after(self, prefix, seen, embeds, own, reserve: int = 0, pooled: bool = True
                      ) -> Prefilled:
        """Run ``embeds`` (B, n, H), ``own`` their mask, through the LM after keys and values
        already computed: ``prefix`` one (keys, values) per layer with a row per sequence,
        ``seen`` (B, width) its mask; the cache holds both and ``reserve`` tokens' room."""
        torch = self._torch
        width = seen.shape[1]
        mask = torch.cat([seen, own], dim=1)
        position = (mask.cumsum(-1) - 1).clamp(min=0)
        mode = "grouped" if self._static_decoding() else "prealloc"
        cache = new_cache(self.lm.config, reserve + embeds.shape[1], mode,
                          self._pool if pooled else None)
        for layer, (k, v) in zip(cache.layers, prefix):
            layer.update(k, v)
            layer.reserve = reserve
        hidden = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position[:, width:],
                         use_cache=True, **{self.cache_kw: cache}).last_hidden_state
        return Prefilled(self.lm_head(hidden[:, -1]), cache, mask, position[:, -1] + 1)

    def _placeholders(self, pieces: Sequence[int], counts: list[int]
                      ) -> tuple[Sequence[int], list[int]]:
        """Audios per clip and audio tokens per audio for the chat text: each chunk an audio of
        its own, or (``windows_as_audios`` off) one audio per clip holding all its chunks."""
        if self.ARCHITECTURE.windows_as_audios:
            return pieces, counts
        ends = np.cumsum(pieces)
        return [1] * len(pieces), [sum(counts[e - p:e]) for p, e in zip(pieces, ends)]

    @property
    def prefix_length(self) -> int:
        """Tokens of the chat template before the audio, prefilled once and shared by every clip."""
        return int(self._prefix_cache()[0][0].shape[2])

    def _prefix_cache(self) -> list:
        """Keys and values, per layer, of the template's text before the audio (a batch of one),
        computed once by the eager modules (compiled ones would compile for that size alone)."""
        if self._prefix is None:
            from transformers import DynamicCache

            ids = self.tokenizer(self.chat.prefix, return_tensors="pt",  # the template has any BOS
                                 add_special_tokens=False)["input_ids"].to(self.device)
            cache = DynamicCache()
            with eager_stance(self._torch):
                self.lm(input_ids=ids, use_cache=True, **{self.cache_kw: cache})
            self._prefix = [(layer.keys, layer.values)  # type: ignore[union-attr]
                            for layer in cache.layers]
        return self._prefix

    def _static_decoding(self) -> bool:
        return self.options.decode != "eager"

    def decode_reserve(self, decoding: Decoding) -> int:
        """Cache room to reserve past the prompt: the static step's grouped cache holds a slot of
        new tokens for each of a clip's sequences; the ordinary one repeats the prompt with room
        for one."""
        per_clip = decoding.num_candidates if self._static_decoding() else 1
        return decoding.max_new_tokens * per_clip

    def decode_step(self):
        """The step function for one batch's decode, per ``options.decode``.

        Inside :meth:`pooled_decoding` (as in :meth:`generate`) the static step and its CUDA
        graph live from batch to batch; outside, each call gets a fresh one.
        """
        if not self._static_decoding():
            return self.step
        graphs = self.options.decode == "graph"
        if self._pool is None:  # outside pooled_decoding: a fresh step per batch
            return self.static_step(graphs)
        if self._static_step is None:
            self._static_step = self.static_step(graphs)
        return self._static_step.begin()

    def static_step(self, graphs: bool):
        """A fresh static decode step (``graphs``: replayed from a CUDA graph) for a cache
        prefilled with :meth:`decode_reserve` room."""
        from harness.models._static_step import StaticStep

        return StaticStep(self, graphs)

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

    def _compile_check(self) -> None:
        """A prefill of two short clips of different lengths (not one: a dimension of size one is
        compiled as a constant), in inference mode as every call runs (with gradients on, the
        encoder's layers were compiled for training too): harness.models._compiled's check."""
        with self._torch.inference_mode():
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
        return self.generate_many(requests, [decoding])[0]

    def generate_many(self, requests, decodings: Sequence[Decoding]) -> list[list[Generation]]:
        """Each decoding's generations (one list per decoding), every clip's prompt prefilled
        once for all of them (:func:`~harness.models._shared_prefill.generate_many`)."""
        return generate_many(self, requests, decodings)

    def constraint(self, labels: Sequence[str]):
        """The JSON-template automaton for ``labels`` (built once per label set)."""
        from harness.models._constrained import JsonConstraint, token_strings

        key = tuple(labels)
        if key not in self._constraints:
            self._constraints[key] = JsonConstraint(key, token_strings(self.tokenizer),
                                                    self.lm_head.out_features, self.eos_ids)
        return self._constraints[key]

    def decode(self, state: Prefilled, decoding: Decoding, step=None, generator=None,
               constraint=None) -> list:
        """Decode a prefilled batch with ``step`` (default: :meth:`decode_step`): beam search or
        sampling per ``decoding``; one list of decoded candidates per clip."""
        clips, vocab = state.logits.shape
        search = new_search(decoding, clips, vocab, self.eos_ids, self.pad_id, state.logits.device,
                            generator, constraint)
        return decode_searches(step or self.decode_step(), state, [search])[0]

    def _to_generation(self, decoded) -> Generation:
        texts = self.tokenizer.batch_decode([list(d.tokens) for d in decoded], skip_special_tokens=True)
        return Generation(tuple(Candidate(t, len(d.tokens), d.logprob, d.finite)
                                for t, d in zip(texts, decoded)))

    def label_tree(self, labels: Sequence[str]) -> LabelTree:
        """The labels' tokens, each closed by the end of the turn, laid out for one forward."""
        return LabelTree.of(self.tokenizer, labels, self.ARCHITECTURE.end_of_turn, self.device)

    def score_label_tree(self, state: Prefilled, tree: LabelTree):
        """(clips, labels) summed log-probabilities of each label after each prefilled prompt,
        in one forward pass (:func:`~harness.models._readout.score_labels`)."""
        return score_labels(self, state, tree)

    def label_logprobs(self, requests, labels: Sequence[str]) -> list[LabelScores]:
        return label_logprobs(self, requests, labels)

    def batch_size_for(self, requests, sequences_per_clip: int, new_tokens: int) -> int:
        """Clips per batch from free GPU memory (see :func:`clips_per_batch`; 8 on the CPU),
        scaled down where a batch of this kind ran out of memory before (``batch_sizes``)."""
        estimate = self.options.batch_size or 8
        if not self.options.batch_size and self.device.type == "cuda":
            prompt = self.chat.longest_prompt(requests, MAX_SAMPLES,
                                              self.options.long_audio == "chunk")
            estimate = clips_per_batch(free_gpu_bytes(self.device), self.lm.config, prompt,
                                       new_tokens, sequences_per_clip, self.lm_head.out_features,
                                       shared_prompt=self._static_decoding())
        return self.batch_sizes.size((sequences_per_clip, new_tokens), estimate)
