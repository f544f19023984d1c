"""Audio Flamingo 2 through NVIDIA's own inference code (github NVIDIA/audio-flamingo).

That code is on no package registry: install its inference folder as the package
``audio_flamingo_2`` (its ``factory.create_model_and_transforms`` builds the model). This adapter
does what NVIDIA's ``inference.py`` does, on the harness's clips: the clip is peak-normalised,
quantised through int16 and cut into the CLAP windows of the config (10 s each, at most 12, zero
padding); the prompt is ``<audio>{prompt, lower-cased}<sep>``; the answer is what follows the
separator up to the first ``<|endofchunk|>`` or EOS, and α its tokens' (NVIDIA's script deletes
the mark and keeps anything after it; a trained model ends its answer there, and decoding stops
at EOS only, as there). Decoding goes through the Flamingo
``generate``, which hands beams and scores to transformers' ``generate`` of its language model, so
α is the raw sum of the chosen tokens' log-probabilities as for the other local backends.

Answers and label scores run in batches of clips (``batch_size``): prompts left-padded with
their attention mask, each clip's windows padded to the batch's most with a mask of zeros, for
beams the mask repeated as the Flamingo ``generate`` repeats the windows (it repeats a mask only
when the batch is one clip), for samples each clip's row repeated once per sample. Checked
against NVIDIA's own code on the CPU (``bench/af2_nvidia_check.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import types
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness import _json
from harness._regular import not_a_regular_file, read_regular
from harness.models._checkpoint_files import unreadable_files_named
from harness.models._context import check_fits, context_window
from harness.models._hf_common import (
    batched,
    chosen_logprobs,
    generate_kwargs,
    local_weights,
    pick_device,
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
    ModelNotLoaded,
    ModelUnavailable,
)

ENV_VAR, CONFIG_VAR, HUB_ID = "AUDIO_FLAMINGO_2_PATH", "AUDIO_FLAMINGO_2_CONFIG", "nvidia/audio-flamingo-2"
CHUNK_MARK = "<|endofchunk|>"


def window_count(samples: int, clap_config: dict, rate: int = 16_000) -> int:
    """How many CLAP windows NVIDIA's ``load_audio`` cuts a clip of ``samples`` into."""
    length = int(float(clap_config["window_length"]) * rate)
    hop = length - int(float(clap_config["window_overlap"]) * rate)
    most = int(clap_config["max_num_window"])
    samples = min(samples, most * hop + length - hop)
    return 1 if samples <= length else min(most, 1 + int(np.ceil((samples - length) / hop)))


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
    count = window_count(len(audio), clap_config, rate)
    full = np.zeros(count * hop + overlap, dtype=np.float64)
    full[: len(audio)] = audio
    quantised = (np.clip(full, -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0
    windows = np.stack([quantised[i * hop: i * hop + length] for i in range(count)])
    return windows.astype(np.float32), np.ones(count, dtype=np.float32)


class AudioFlamingo2Backend:
    """A built Flamingo model and its tokenizer behind :class:`~harness.models.ModelAPI`.

    Answers (greedy, beam, samples) and label scores run ``batch_size`` clips at a time
    (length-sorted, halved on out-of-memory, a failing batch asked again clip by clip); samples
    are a batch's rows, each clip's repeated once per sample (the Flamingo ``generate`` repeats
    the audio for beams only), drawn from the generator seeded at each call, so that, as on the
    other backends, a clip's samples depend on the clips batched with it.
    """

    def __init__(self, name: str, model, tokenizer, clap_config: dict, revision: str,
                 batch_size: int = 8):
        import torch

        self._torch = torch
        self.model, self.tokenizer, self.clap_config = model.eval(), tokenizer, clap_config
        self.batch_size = batch_size
        mask_optional(model.lang_encoder)
        first = next(model.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.info = ModelInfo(name, revision, str(self.dtype).removeprefix("torch."), str(self.device),
                              Capabilities(structured_output=False))

    def _inputs(self, chunk, suffix: Sequence[int] = (), room: int = 0):
        """A batch: :meth:`_audio`, then :meth:`_tokens`."""
        return (*self._audio(chunk), *self._tokens(chunk, suffix, room))

    def _audio(self, chunk):
        """The clips' CLAP windows, each padded to the batch's most, and their mask (the padding
        masked)."""
        torch = self._torch
        cut = [clap_windows(r.audio, self.clap_config) for r in chunk]
        audio = np.zeros((len(chunk), max(len(w) for w, _ in cut), cut[0][0].shape[1]), np.float32)
        mask = np.zeros(audio.shape[:2], np.float32)
        for i, (windows, ones) in enumerate(cut):
            audio[i, :len(windows)], mask[i, :len(ones)] = windows, ones
        return (torch.from_numpy(audio).to(self.device, self.dtype),
                torch.from_numpy(mask).to(self.device, self.dtype))

    def _tokens(self, chunk, suffix: Sequence[int] = (), room: int = 0):
        """The prompts' tokens (then ``suffix``) left-padded, and the attention mask; ValueError
        where a prompt and ``room`` new tokens would pass the LM's context (the audio is attended
        to across, not placed in the sequence)."""
        texts = [f"<audio>{r.prompt.lower().strip()}{self.tokenizer.sep_token}" for r in chunk]
        rows = [list(ids) + list(suffix) for ids in self.tokenizer(texts)["input_ids"]]
        longest = max(range(len(rows)), key=lambda i: len(rows[i]))
        check_fits(chunk[longest].prompt, len(rows[longest]), room,
                   context_window(getattr(self.model.lang_encoder, "config", None)))
        width = len(rows[longest])
        ids = [[self.tokenizer.pad_token_id] * (width - len(row)) + row for row in rows]
        attention = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
        return (self._torch.tensor(ids, device=self.device),
                self._torch.tensor(attention, device=self.device))

    def generate(self, requests, decoding: Decoding) -> list[Generation]:
        if decoding.constrained:
            raise ValueError("audio-flamingo-2 has no constrained decoding")
        torch, n = self._torch, decoding.num_candidates
        if decoding.mode == "sample":
            torch.manual_seed(decoding.seed)

        def run(chunk):
            inputs = self._inputs(chunk, room=decoding.max_new_tokens)
            if decoding.mode == "sample":  # a row per sample: Flamingo's generate repeats for beams only
                inputs = tuple(t.repeat_interleave(n, 0) for t in inputs)
            audio, mask, ids, attention = inputs
            if decoding.mode == "beam":  # the windows are repeated for the beams in there
                mask = mask.repeat_interleave(n, 0)
            result = self.model.generate(audio_x=audio, audio_x_mask=mask, lang_x=ids,
                                         attention_mask=attention,
                                         eos_token_id=self.tokenizer.eos_token_id,
                                         **_generate_kwargs(decoding))
            rows = self._candidates(result, ids.shape[1], decoding)
            each = len(rows) // len(chunk)
            return [Generation(tuple(sorted(rows[i * each:(i + 1) * each], key=lambda c: -c.logprob)))
                    for i in range(len(chunk))]

        with torch.inference_mode():
            return self._batched(requests, run, lambda _, reason: Generation(error=reason))

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
        """Σ log p(label, then ``<|endofchunk|>``) after the prompt: per label, one forward of a
        batch of clips."""
        torch = self._torch
        targets = [self.tokenizer(label + CHUNK_MARK, add_special_tokens=False)["input_ids"]
                   for label in labels]

        def run(chunk):
            total = np.zeros((len(chunk), len(labels)))
            audio, mask = self._audio(chunk)  # once for every label
            for k, target in enumerate(targets):
                ids, attention = self._tokens(chunk, target)
                logits = self.model(audio_x=audio, audio_x_mask=mask, lang_x=ids,
                                    attention_mask=attention).logits
                logp = torch.log_softmax(logits[:, -len(target) - 1:-1].float(), -1)
                picked = logp.gather(2, ids[:, -len(target):, None])[..., 0]
                total[:, k] = picked.sum(1).double().cpu().numpy()
            return [LabelScores(row) for row in total]

        with torch.inference_mode():
            return self._batched(requests, run, unscored_row(len(labels)))

    def _batched(self, requests, run, on_error) -> list:
        """:func:`~harness.models._hf_common.batched` over the clips of each window count apart:
        NVIDIA's CLAP encodes every window of a batch, the padding's too."""
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(window_count(len(r.audio), self.clap_config), []).append(i)
        out: list = [None] * len(requests)
        for indexes in groups.values():
            results = batched([requests[i] for i in indexes], run, self.batch_size, self._torch,
                              on_error=on_error)
            for i, result in zip(indexes, results):
                out[i] = result
        return out


def mask_optional(lang_encoder) -> None:
    """Let NVIDIA's language model be called without an attention mask. Its
    ``FlamingoLMMixin.forward(input_ids, attention_mask, **kwargs)`` (written for transformers
    4.46) requires the mask by position, and transformers 5 leaves an all-ones mask out of the
    model's inputs in ``generate``: every answer failed with a TypeError."""
    forward = lang_encoder.forward
    parameter = inspect.signature(forward).parameters.get("attention_mask")
    if parameter is None or parameter.default is not inspect.Parameter.empty:
        return

    def forward_mask_optional(input_ids=None, attention_mask=None, **kwargs):
        return forward(input_ids, attention_mask, **kwargs)

    lang_encoder.forward = forward_mask_optional


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


def audio_flamingo_2(path=None, config=None, device: str | None = None, dtype: str = "float32",
                     batch_size: int = 8):
    """``audio-flamingo-2``: ``$AUDIO_FLAMINGO_2_PATH`` (NVIDIA's checkpoint folder) or the HF cache.

    float32 by default, as NVIDIA's inference script runs it; ``batch_size`` clips a batch.
    """
    factory = nvidia_factory()
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
                                 weights_revision(weights), batch_size)


def nvidia_factory() -> types.ModuleType:
    """NVIDIA's ``audio_flamingo_2.factory``, imported without the package initialisers of its
    copy of laion_clap (:func:`_bare_laion_clap`).

    Raises:
        ModelUnavailable: NVIDIA's code is not installed.
        ModelNotLoaded: it is, and failed to import (the message names the error).
    """
    try:
        with _bare_laion_clap():
            return importlib.import_module("audio_flamingo_2.factory")
    except ImportError as exc:
        raise ModelUnavailable(
            "audio-flamingo-2 needs NVIDIA's audio-flamingo inference code (github NVIDIA/"
            "audio-flamingo, branch audio_flamingo_2, folder inference_HF_pretrained) installed "
            f"as the package audio_flamingo_2 ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001  (its code, any error: named, not a traceback)
        raise ModelNotLoaded(f"audio-flamingo-2: NVIDIA's inference code failed to import "
                             f"({type(exc).__name__}: {str(exc)[:300]})") from None


LAION_CLAP = "my_laion_clap.CLAP.src.laion_clap"  # NVIDIA's copy, imported by its factory


@contextlib.contextmanager
def _bare_laion_clap():
    """Make ``my_laion_clap...laion_clap`` and its ``clap_module`` bare packages while the factory
    imports, so that its HTSAT encoder loads without their ``__init__``: those load three text
    tokenizers from the Hugging Face hub (BERT, RoBERTa, BART) and a Git LFS data file, none of
    which the audio encoder uses; offline, the import failed or waited on the network. Where
    the folder is not found (another layout) or is imported already, nothing changes."""
    try:
        spec = importlib.util.find_spec(LAION_CLAP)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations or LAION_CLAP in sys.modules:
        yield
        return
    folder = Path(list(spec.submodule_search_locations)[0])
    for name, where in ((LAION_CLAP, folder), (f"{LAION_CLAP}.clap_module", folder / "clap_module")):
        package = types.ModuleType(name)
        package.__path__ = [str(where)]
        package.__spec__ = importlib.util.spec_from_loader(name, None, is_package=True)
        sys.modules[name] = package
    yield
