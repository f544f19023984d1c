"""Audio Flamingo 2 through NVIDIA's own inference code (github NVIDIA/audio-flamingo).

That code is on no package registry: install its inference folder as the package
``audio_flamingo_2`` (its ``factory.create_model_and_transforms`` builds the model). This adapter
does what NVIDIA's ``inference.py`` does, on the harness's clips: the clip is peak-normalised,
quantised through int16 and cut into the CLAP windows of the config (10 s each, at most 12, zero
padding); the prompt is ``<audio>{prompt, lower-cased}<sep>``; the answer is what follows the
separator with ``<|endofchunk|>``, EOS and padding removed. Decoding goes through the Flamingo
``generate``, which hands beams and scores to transformers' ``generate`` of its language model, so
α is the raw sum of the chosen tokens' log-probabilities as for the other local backends.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness import _json
from harness._regular import not_a_regular_file, read_regular
from harness.models._checkpoint_files import unreadable_files_named
from harness.models._context import check_fits, context_window
from harness.models._hf_common import (
    chosen_logprobs,
    generate_kwargs,
    local_weights,
    pick_device,
    weights_revision,
)
from harness.models.api import (
    Candidate,
    Capabilities,
    Decoding,
    Generation,
    LabelScores,
    ModelInfo,
    ModelNotLoaded,
    ModelUnavailable,
)

ENV_VAR, CONFIG_VAR, HUB_ID = "AUDIO_FLAMINGO_2_PATH", "AUDIO_FLAMINGO_2_CONFIG", "nvidia/audio-flamingo-2"
CHUNK_MARK = "<|endofchunk|>"


def clap_windows(audio: np.ndarray, clap_config: dict, rate: int = 16_000):
    """(windows, window samples) float32 and a mask of ones, as NVIDIA's ``load_audio`` cuts them."""
    length = int(float(clap_config["window_length"]) * rate)
    overlap = int(float(clap_config["window_overlap"]) * rate)
    most = int(clap_config["max_num_window"])
    hop = length - overlap
    audio = np.asarray(audio, dtype=np.float64)[: most * hop + overlap]
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak
    count = 1 if len(audio) <= length else min(most, 1 + int(np.ceil((len(audio) - length) / hop)))
    full = np.zeros(count * hop + overlap, dtype=np.float64)
    full[: len(audio)] = audio
    quantised = (np.clip(full, -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0
    windows = np.stack([quantised[i * hop: i * hop + length] for i in range(count)])
    return windows.astype(np.float32), np.ones(count, dtype=np.float32)


class AudioFlamingo2Backend:
    """A built Flamingo model and its tokenizer behind :class:`~harness.models.ModelAPI`.

    One clip per call of the model: the Flamingo layers are conditioned on one clip's windows.
    Samples are drawn one ``generate`` at a time (the Flamingo ``generate`` repeats the audio for
    beams only), from one seeded generator.
    """

    def __init__(self, name: str, model, tokenizer, clap_config: dict, revision: str):
        import torch

        self._torch = torch
        self.model, self.tokenizer, self.clap_config = model.eval(), tokenizer, clap_config
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.info = ModelInfo(name, revision, str(self.dtype).removeprefix("torch."), str(self.device),
                              Capabilities(structured_output=False))

    def _inputs(self, request, room: int = 0):
        """The clip's CLAP windows, their mask and the prompt's tokens; ValueError where the
        prompt and ``room`` new tokens would pass the LM's context (the audio is attended to
        across, not placed in the sequence)."""
        torch = self._torch
        windows, mask = clap_windows(request.audio, self.clap_config)
        text = f"<audio>{request.prompt.lower().strip()}{self.tokenizer.sep_token}"
        ids = self.tokenizer(text, return_tensors="pt")["input_ids"]
        check_fits(request.prompt, ids.shape[1], room,
                   context_window(getattr(self.model.lang_encoder, "config", None)))
        ids = ids.to(self.device)
        audio = torch.from_numpy(windows)[None].to(self.device, self.dtype)
        return audio, torch.from_numpy(mask)[None].to(self.device, self.dtype), ids

    def generate(self, requests, decoding: Decoding) -> list[Generation]:
        if decoding.constrained:
            raise ValueError("audio-flamingo-2 has no constrained decoding")
        torch = self._torch
        if decoding.mode == "sample":
            torch.manual_seed(decoding.seed)
        out = []
        with torch.inference_mode():
            for r in requests:
                try:
                    out.append(self._generate_one(r, decoding))
                except (RuntimeError, ValueError) as exc:  # one bad clip never sinks the rest
                    out.append(Generation(error=f"{type(exc).__name__}: {exc}"))
        return out

    def _generate_one(self, request, decoding: Decoding) -> Generation:
        audio, mask, ids = self._inputs(request, decoding.max_new_tokens)
        runs = decoding.num_candidates if decoding.mode == "sample" else 1
        candidates = []
        for _ in range(runs):
            result = self.model.generate(audio_x=audio, audio_x_mask=mask, lang_x=ids,
                                         eos_token_id=self.tokenizer.eos_token_id,
                                         **_generate_kwargs(decoding))
            candidates += self._candidates(result, ids.shape[1], decoding)
        return Generation(tuple(sorted(candidates, key=lambda c: -c.logprob)))

    def _candidates(self, result, start: int, decoding: Decoding) -> list[Candidate]:
        torch = self._torch
        steps = chosen_logprobs(self.model.lang_encoder, result, decoding)
        stops = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids(CHUNK_MARK)}
        rows = []
        for i, sequence in enumerate(result.sequences[:, start:].tolist()):
            length = next((j + 1 for j, t in enumerate(sequence) if t in stops), len(sequence))
            scores = steps[i, :length].double()
            rows.append(Candidate(self._answer(sequence[:length]), length,
                                  float(scores.nan_to_num(neginf=-1e30).sum()),
                                  bool(torch.isfinite(scores).all())))
        return rows

    def _answer(self, tokens: Sequence[int]) -> str:
        text = self.tokenizer.decode(tokens).split(self.tokenizer.sep_token)[-1]
        for mark in (self.tokenizer.eos_token, self.tokenizer.pad_token, CHUNK_MARK):
            if mark:
                text = text.replace(mark, "")
        return text.strip()

    def label_logprobs(self, requests, labels: Sequence[str]) -> list[LabelScores]:
        """Σ log p(label, then ``<|endofchunk|>``) after the prompt: one forward per label."""
        rows = []
        with self._torch.inference_mode():
            for r in requests:
                try:
                    rows.append(LabelScores(self._label_scores(r, labels)))
                except (RuntimeError, ValueError) as exc:
                    rows.append(LabelScores.failed(len(labels), f"{type(exc).__name__}: {exc}"))
        return rows

    def _label_scores(self, request, labels: Sequence[str]) -> np.ndarray:
        torch = self._torch
        targets = [self.tokenizer(label + CHUNK_MARK, add_special_tokens=False,
                                  return_tensors="pt")["input_ids"].to(self.device)
                   for label in labels]
        audio, mask, ids = self._inputs(request, max(t.shape[1] for t in targets))
        scores = np.zeros(len(labels))
        for k, target in enumerate(targets):
            logits = self.model(audio_x=audio, audio_x_mask=mask,
                                lang_x=torch.cat([ids, target], 1)).logits
            logp = torch.log_softmax(logits[:, ids.shape[1] - 1:-1].float(), -1)
            scores[k] = float(logp.gather(2, target[..., None]).sum())
        return scores


def _generate_kwargs(decoding: Decoding) -> dict:
    """As for the other transformers backends, but samples come one ``generate`` at a time."""
    settings = generate_kwargs(decoding)
    if decoding.mode == "sample":
        settings["num_return_sequences"] = 1
    return settings


def load_state(model, weights: Path) -> None:
    """NVIDIA's checkpoint: ``safe_ckpt/metadata.json`` names the safetensors chunks to merge.

    Raises:
        ModelUnavailable: there is no ``safe_ckpt/metadata.json`` (not NVIDIA's folder).
        ModelNotLoaded: the metadata, or a chunk it names, cannot be read (a copy cut short, a
            chunk missing); the message names the file.
    """
    from safetensors.torch import load_file

    state = {}
    for chunk in _chunk_files(weights / "safe_ckpt" / "metadata.json"):
        with unreadable_files_named("audio-flamingo-2", chunk, "weights"):
            state.update(load_file(str(chunk)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        warnings.warn(f"audio-flamingo-2: {len(unexpected)} checkpoint tensors match no parameter "
                      f"(first: {unexpected[0]})", stacklevel=2)


def _chunk_files(metadata: Path) -> list[Path]:
    """The chunk files ``metadata`` (a JSON list of chunk names) names."""
    if not_a_regular_file(metadata) == "not found":
        raise ModelUnavailable(f"audio-flamingo-2: no {metadata}: not NVIDIA's checkpoint folder "
                               f"(set {ENV_VAR} to the folder holding safe_ckpt/)")
    try:
        chunks = _json.loads(read_regular(metadata))
    except (OSError, ValueError) as exc:
        raise ModelNotLoaded(f"audio-flamingo-2: cannot read {metadata} ({type(exc).__name__}: "
                             f"{exc}); copy it again") from None
    if not (isinstance(chunks, list) and chunks and all(isinstance(c, str) for c in chunks)):
        raise ModelNotLoaded(f"audio-flamingo-2: {metadata} is not a list of chunk names")
    return [metadata.parent / f"{chunk}.safetensors" for chunk in chunks]


def read_config(weights: Path, config: str | os.PathLike | None) -> dict:
    """The inference YAML (argument, ``$AUDIO_FLAMINGO_2_CONFIG`` or ``configs/inference.yaml`` in
    the checkpoint); a relative CLAP checkpoint path is taken from the checkpoint folder."""
    import yaml

    where = Path(config or os.environ.get(CONFIG_VAR) or weights / "configs" / "inference.yaml")
    if not_a_regular_file(where) == "not found":
        raise ModelUnavailable(f"audio-flamingo-2: no inference config at {where}; set {CONFIG_VAR} "
                               "to NVIDIA's inference_HF_pretrained/configs/inference.yaml")
    try:
        settings = yaml.safe_load(read_regular(where).decode())
        clap, model = dict(settings["clap_config"]), dict(settings["model_config"])
        checkpoint = Path(clap["checkpoint"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError,
            RecursionError) as exc:  # RecursionError: nested too deeply for YAML's reader
        raise ModelNotLoaded(f"audio-flamingo-2: the inference config {where} cannot be used "
                             f"({type(exc).__name__}: {str(exc)[:200]}): it needs clap_config "
                             "(with checkpoint) and model_config") from None
    if not checkpoint.is_absolute():
        clap["checkpoint"] = str(weights / checkpoint)
    return {**settings, "clap_config": clap, "model_config": model}


def audio_flamingo_2(path=None, config=None, device: str | None = None, dtype: str = "float32"):
    """``audio-flamingo-2``: ``$AUDIO_FLAMINGO_2_PATH`` (NVIDIA's checkpoint folder) or the HF cache.

    float32 by default, as NVIDIA's inference script runs it.
    """
    try:
        factory = importlib.import_module("audio_flamingo_2.factory")
    except ImportError:
        raise ModelUnavailable(
            "audio-flamingo-2 needs NVIDIA's audio-flamingo inference code (github NVIDIA/"
            "audio-flamingo, branch audio_flamingo_2) installed as the package audio_flamingo_2"
        ) from None
    import torch

    weights = local_weights("audio-flamingo-2", ENV_VAR, HUB_ID, path)
    settings = read_config(weights, config)
    model, tokenizer = factory.create_model_and_transforms(
        **settings["model_config"], clap_config=settings["clap_config"], use_local_files=True,
        gradient_checkpointing=False, freeze_lm_embeddings=True)
    load_state(model, weights)
    device = pick_device(device, "audio-flamingo-2")
    model = model.to(device, getattr(torch, dtype))
    return AudioFlamingo2Backend("audio-flamingo-2", model, tokenizer, settings["clap_config"],
                                 weights_revision(weights))
