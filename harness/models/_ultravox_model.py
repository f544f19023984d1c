"""Ultravox v0.3/v0.4 built from its published checkpoint without the checkpoint's own code.

A published Ultravox folder holds a config, the tokenizer and the weights it trained (the
projector); its Whisper encoder and its Llama come from the checkpoints its config names
(``audio_model_id``, ``text_model_id``), which its code loads at construction. That code needs
``peft`` and transformers 4's internals, and its processor takes one text at a time, so here
the parts are assembled from transformers' own ``WhisperEncoder`` and ``AutoModelForCausalLM``
and a projector written after the published definition:

- the encoder runs over each clip's own log-mel frames (Whisper's extractor with
  ``padding="longest"``, not 30 s), positions sliced to that length;
- the projector stacks every 8 encoder frames (zero-padded, one zero row more), then
  RMSNorm, linear, SwiGLU (``silu(second half) * first half``), linear, RMSNorm;
- the LM's prompt holds ``ceil(ceil(frames / 2) / 8)`` placeholders (what the processor counts
  from the samples, ``ceil(round(samples / 320) / 8)``), replaced by that many projector rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness import _json
from harness._regular import read_regular
from harness.models.api import ModelNotLoaded, ModelUnavailable

STACK_EPS = 1e-6  # the projector's RMSNorms


@dataclass(frozen=True)
class UltravoxLayout:
    """What an Ultravox config.json says about its parts, and where each part's local copy is
    (None: the checkpoint holds it)."""

    folder: Path
    text_folder: Path | None
    audio_folder: Path | None
    stack_factor: int
    hidden_size: int  # the projector's inner width (before SwiGLU halves it)
    projector_act: str
    audio_config: dict
    text_config: dict

    @classmethod
    def read(cls, folder: Path) -> UltravoxLayout:
        """The layout of the checkpoint in ``folder``, its parts' folders found (``$env``, the
        id itself where it is a folder, or the HF cache).

        Raises:
            ModelNotLoaded: its config.json is missing or cannot be read (a copy cut short): the
                checkpoint is damaged, said as the other local models say it.
            ModelUnavailable: a projector other than v0.3/v0.4's SwiGLU, or a part not found
                locally (naming the variable to set).
        """
        try:
            config = _json.loads(read_regular(folder / "config.json"))
            if not isinstance(config, dict):
                raise ValueError(f"a JSON {type(config).__name__}, not an object")
        except (OSError, ValueError) as exc:
            raise ModelNotLoaded(f"ultravox: {folder} has no readable config.json "
                                 f"({type(exc).__name__}: {exc}): not a whole checkpoint folder"
                                 ) from None
        act = config.get("projector_act", "swiglu")
        if act != "swiglu" or config.get("projector_ln_mid"):
            raise ModelUnavailable(f"{folder}: projector {act!r} (ln_mid "
                                   f"{config.get('projector_ln_mid')}) is not v0.3/v0.4's SwiGLU")
        return cls(folder, _part(config.get("text_model_id"), "ULTRAVOX_TEXT_MODEL_PATH"),
                   _part(config.get("audio_model_id"), "ULTRAVOX_AUDIO_MODEL_PATH"),
                   int(config.get("stack_factor", 8)), int(config.get("hidden_size", 4096)), act,
                   dict(config.get("audio_config") or {}), dict(config.get("text_config") or {}))

    def revision(self) -> str:
        """The checkpoint's revision, with its parts' where they come from other checkpoints."""
        from harness.models._hf_common import weights_revision

        return "+".join(weights_revision(f) for f in (self.folder, self.text_folder,
                                                      self.audio_folder) if f is not None)


def _part(model_id: str | None, env_var: str) -> Path | None:
    """The local folder of a part the config names by id (None where it names none)."""
    from harness.models._hf_common import local_weights

    if not model_id:
        return None
    return local_weights(f"ultravox's part {model_id}", env_var, model_id,
                         model_id if Path(model_id).is_dir() else None)


def checkpoint_tensors(folder: Path, prefix: str) -> dict:
    """The tensors of the safetensors checkpoint in ``folder`` whose names start with
    ``prefix``, the prefix removed (one file, or the shards its index names)."""
    from safetensors import safe_open

    from harness.models._checkpoint_files import unreadable_files_named

    index = folder / "model.safetensors.index.json"
    with unreadable_files_named("ultravox", folder, "weights"):
        files = sorted(set(json.loads(index.read_text())["weight_map"].values())) \
            if index.is_file() else [p.name for p in folder.glob("*.safetensors")]
    out = {}
    for name in files:
        with unreadable_files_named("ultravox", folder / name, "weights"), \
                safe_open(str(folder / name), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                if key.startswith(prefix):
                    out[key[len(prefix):]] = f.get_tensor(key)
    return out


def _projector_class():
    import torch
    from torch import nn
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    class StackedProjector(nn.Module):
        """Ultravox v0.3/v0.4's projector: 8 encoder frames stacked into one row, then
        RMSNorm, linear, SwiGLU, linear, RMSNorm."""

        def __init__(self, audio_width: int, stack: int, hidden: int, text_width: int):
            super().__init__()
            self.stack = stack
            self.ln_pre = LlamaRMSNorm(audio_width * stack, eps=STACK_EPS)
            self.linear_1 = nn.Linear(audio_width * stack, hidden, bias=False)
            self.linear_2 = nn.Linear(hidden // 2, text_width, bias=False)
            self.ln_post = LlamaRMSNorm(text_width, eps=STACK_EPS)

        def forward(self, frames):
            """(B, T, C) encoder frames to (B, ceil(T / 8) + 1, D) rows (the last one zero)."""
            b, t, c = frames.shape
            rows = -(-t // self.stack) + 1
            stacked = torch.nn.functional.pad(frames, (0, 0, 0, rows * self.stack - t))
            h = self.linear_1(self.ln_pre(stacked.reshape(b, rows, c * self.stack)))
            x, gate = h.chunk(2, dim=-1)
            return self.ln_post(self.linear_2(torch.nn.functional.silu(gate) * x))

    return StackedProjector


def _model_class():
    from torch import nn

    class UltravoxModel(nn.Module):
        """The three parts under the checkpoint's own names (``audio_tower``,
        ``multi_modal_projector``, ``language_model``: a causal LM)."""

        def __init__(self, audio_tower, projector, language_model):
            super().__init__()
            self.audio_tower, self.multi_modal_projector = audio_tower, projector
            self.language_model = language_model
            self.generation_config = language_model.generation_config

    return UltravoxModel


def load_ultravox(layout: UltravoxLayout, dtype, device, attn_implementation: str = "sdpa"):
    """The Ultravox of ``layout`` with every parameter from a checkpoint: the LM's and the
    encoder's from the parts its config names (or from itself, where it holds them), then the
    checkpoint's own tensors over them.

    Raises:
        ModelUnavailable: a part not found locally, or parameters no checkpoint holds.
        ModelNotLoaded: a file of the checkpoint or of a part cannot be read (a shard cut
            short), naming it.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig

    from harness.models._checkpoint_files import unreadable_files_named

    folder = layout.folder
    if layout.text_folder:
        with unreadable_files_named("ultravox", layout.text_folder, "language model's weights"):
            lm = AutoModelForCausalLM.from_pretrained(layout.text_folder, dtype=dtype,
                                                      local_files_only=True,
                                                      attn_implementation=attn_implementation,
                                                      trust_remote_code=False)
    else:
        with torch.device("meta"):
            lm = AutoModelForCausalLM.from_config(LlamaConfig(**layout.text_config), dtype=dtype,
                                                  attn_implementation=attn_implementation)
    tower = _audio_tower(layout, dtype)
    with torch.device("meta"):
        projector = _projector_class()(tower.config.d_model, layout.stack_factor,
                                       layout.hidden_size, lm.config.hidden_size)
    model = _model_class()(tower, projector, lm)
    _load_state(model, checkpoint_tensors(folder, ""), folder)
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model.to(device).eval()


def _audio_tower(layout: UltravoxLayout, dtype):
    """The Whisper encoder, from ``audio_model_id``'s checkpoint (its ``model.encoder.``
    tensors) where the config names one, else left to the Ultravox checkpoint."""
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if layout.audio_folder:
        config = WhisperConfig.from_pretrained(layout.audio_folder, local_files_only=True)
        tensors = checkpoint_tensors(layout.audio_folder, "model.encoder.")
    else:
        config, tensors = WhisperConfig(**layout.audio_config), {}
    with torch.device("meta"):
        tower = WhisperEncoder(config)
    if tensors:
        tower.load_state_dict({k: v.to(dtype) for k, v in tensors.items()}, strict=False,
                              assign=True)
    return tower


def _load_state(model, tensors: dict, folder: Path) -> None:
    """The checkpoint's tensors into ``model`` (assigned, so meta parameters become real);
    refuses names the model has not, and parameters left on the meta device."""
    dtype = model.language_model.dtype
    try:
        unknown = model.load_state_dict({k: v.to(dtype) for k, v in tensors.items()},
                                        strict=False, assign=True).unexpected_keys
    except RuntimeError as exc:  # a tensor of another shape than its parameter
        raise ModelUnavailable(f"ultravox: the tensors in {folder} do not fit its parts: "
                               f"{str(exc)[:500]}") from exc
    if unknown:
        raise ModelUnavailable(f"ultravox: {folder} holds tensors it has no place for "
                               f"(e.g. {', '.join(sorted(unknown)[:3])})")
    unset = [n for n, p in model.named_parameters() if p.is_meta]
    if unset:
        raise ModelUnavailable(f"ultravox: no checkpoint holds {len(unset)} of its parameters "
                               f"(e.g. {', '.join(unset[:3])}), which would start at random")
    _rebuild_meta_buffers(model)


def _rebuild_meta_buffers(model) -> None:
    """Buffers that are computed, not stored (the LM's rotary frequencies), rebuilt where the
    module was built on the meta device."""
    inner = model.language_model.model
    if any(b.is_meta for b in inner.rotary_emb.buffers()):
        inner.rotary_emb = type(inner.rotary_emb)(inner.config)
