"""What the fast path (harness.models.fast_audio_lm) is told: the :class:`Architecture` of a
model family, fixed by its backend class, and the :class:`FastPathOptions` a user chooses, one
frozen, validated value given when a backend is built.

To measure or use another combination, build a backend with it
(``Qwen2AudioBackend.with_options(decode="static")``); a built backend's options never change.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from harness._values import named_flag, whole_number
from harness.models.api import Capabilities, ModelInfo

DECODE_MODES = ("graph", "static", "eager")
ATTENTION_KERNELS = ("auto", "math", "efficient", "cudnn", "matmul")
LONG_AUDIO = ("truncate", "chunk", "error")
MAX_SAMPLES = 30 * 16_000  # the encoder's audio window (Whisper's 30 s); see FastPathOptions.long_audio


@dataclass(frozen=True)
class FastPathOptions:
    """How a fast-path backend runs.

    Attributes:
        decode: ``"graph"``: static-shape decode steps on a cache grouped by clip, replayed from
            a CUDA graph; ``"static"``: the same steps run eagerly; ``"eager"``: ordinary steps
            on a repeated cache (fastest on a CPU). None: graph on a GPU, eager elsewhere.
        attention: The static step's attention kernel: ``"matmul"`` (two batched matrix
            products, float32 scores; the fastest on an H200 and the only one that reproduced
            bit for bit there), or one of PyTorch's SDPA kernels (``auto``, ``math``,
            ``efficient``, ``cudnn``). Only for ``graph`` and ``static``.
        compile_blocks: Fuse each layer's elementwise work with ``torch.compile`` (checked on a
            small prefill; eager with a warning where it fails). None: on a GPU only.
        long_audio: Clips over the 30 s window: ``"truncate"`` or ``"chunk"`` (both noted on
            the item), or ``"error"`` (the item fails with the reason).
        batch_size: Clips per batch; None: from free GPU memory (8 on a CPU).
        share_prompts: Requests of one batch that hear the same clip (a verifier's candidates
            of one item) have the clip and their prompts' common start prefilled once
            (harness.models._shared_prompt). Like the batch size, it changes no answer beyond
            the last bits of the arithmetic, so it is not part of a cache key.
        heard_clips_mib: Memory for the keys and values of clips heard lately, each up to its
            last audio token, so that the clip's other prompts (the grid asks each clip four:
            base, chain of thought, readout, the verifier) start from them instead of encoding
            and prefilling the audio again (harness.models._heard_clips). None: 20% of the GPU's
            memory (a run's chunk of 256 six-second clips takes 21 GB in Qwen2-Audio-7B), 512
            MiB on a CPU; 0: off. Not part of a cache key, as ``share_prompts``.
        decode_together: Several decodings of one prefill (``generate_many``: the grid's greedy,
            beam 5, beam 3 and sampling of the base prompt) decode in one loop, each step running
            a clip's sequences of all of them together, so the weights and each clip's prompt
            are read once a step for all of them, not once per decoding; batches then hold fewer
            clips (a clip's sequences of every decoding at once). Each decoding chooses its own
            tokens as alone: answers equal those decoded one after the other up to the last bits
            of the arithmetic (tested), so, as the batch size, not part of a cache key. Off
            until its gain is measured on a GPU.
    """

    decode: str | None = None
    attention: str = "matmul"
    compile_blocks: bool | None = None
    long_audio: str = "truncate"
    batch_size: int | None = None
    share_prompts: bool = True
    heard_clips_mib: int | None = None
    decode_together: bool = False

    def __post_init__(self) -> None:
        # "False" from the command line is text; compile_blocks=None leaves it to the device
        if self.compile_blocks is not None:
            object.__setattr__(self, "compile_blocks", named_flag("compile_blocks", self.compile_blocks))
        for flag in ("share_prompts", "decode_together"):
            object.__setattr__(self, flag, named_flag(flag, getattr(self, flag)))
        for name, value, allowed in (("decode", self.decode, DECODE_MODES),
                                     ("attention", self.attention, ATTENTION_KERNELS),
                                     ("long_audio", self.long_audio, LONG_AUDIO)):
            if value not in allowed and not (name == "decode" and value is None):
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        if self.decode == "eager" and self.attention != "matmul":
            raise ValueError(f"attention={self.attention!r} applies to the static decode step; "
                             "decode='eager' runs the model's own attention")
        if self.batch_size is not None:
            whole_number("batch_size", self.batch_size)
        if self.heard_clips_mib is not None:
            whole_number("heard_clips_mib", self.heard_clips_mib, least=0)

    def output_options(self) -> tuple[tuple[str, str], ...]:
        """The options that can change an answer (all but the batch size): cache keys, records."""
        return (("long_audio", self.long_audio), ("decode", str(self.decode)),
                ("attention", self.attention), ("compile_blocks", str(self.compile_blocks)))

    def heard_budget(self, device) -> int:
        """Bytes for clips heard lately on ``device`` (a torch device): ``heard_clips_mib``, else
        its default there."""
        if self.heard_clips_mib is not None:
            return self.heard_clips_mib << 20
        if device.type != "cuda":
            return 512 << 20
        import torch

        return int(0.2 * torch.cuda.get_device_properties(device).total_memory)

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> FastPathOptions:
        """The options from keyword arguments (what ``get_model(name, **options)`` passes on).

        Raises:
            ValueError: an unknown option (the message lists the known ones) or value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown fast-path option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)  # type: ignore[arg-type]

    def resolved(self, on_gpu: bool) -> FastPathOptions:
        """The defaults that depend on the device filled in."""
        decode = self.decode or ("graph" if on_gpu else "eager")
        compile_blocks = on_gpu if self.compile_blocks is None else self.compile_blocks
        return replace(self, decode=decode, compile_blocks=compile_blocks)


@dataclass(frozen=True)
class Architecture:
    """What one audio LM family needs of the fast path.

    Attributes:
        model_class: The transformers class its checkpoints load with (Ultravox: the name of
            the harness's own assembly, which its backend's from_pretrained builds).
        backend: The backend's name in cache keys and records (``"qwen2-audio"``).
        version: Bumped when a change here can change its outputs: old cached answers then miss.
        audio_token: The placeholder the chat template writes for an audio.
        windows_as_audios: A long clip's windows (``long_audio="chunk"``) are heard as
            successive audios of the turn, each with its own placeholder (Qwen2-Audio), or as one
            audio whose windows' tokens follow each other (Audio Flamingo 3's processor).
        encoder: ``"whisper"``: a Whisper-style tower and a projector, run here over the batch's
            real frames (:func:`~harness.models._audio_encoder.encode_audio`); ``"own"``: the
            model's own ``get_audio_features``, which reads each clip's real frames already
            (Qwen2.5-Omni's windowed encoder).
        whole_processor: Load the checkpoint's processor; False: its tokenizer, feature extractor
            and chat template alone (Qwen2.5-Omni's processor needs torchvision for its vision).
        end_of_turn: The token that closes the assistant's turn (after a label, in readout).
    """

    model_class: str
    backend: str
    version: int
    audio_token: str
    windows_as_audios: bool = True
    encoder: str = "whisper"
    whole_processor: bool = True
    end_of_turn: str = "<|im_end|>"


# The fast path's architectures, here rather than beside their backends' classes, so that a
# checkpoint's description (:func:`fast_path_info`) imports neither torch nor transformers.
QWEN2_AUDIO = Architecture(model_class="Qwen2AudioForConditionalGeneration",
                           backend="qwen2-audio", version=2, audio_token="<|AUDIO|>")
QWEN2_5_OMNI_THINKER = Architecture(model_class="Qwen2_5OmniThinkerForConditionalGeneration",
                                    backend="qwen2.5-omni-thinker", version=2,
                                    audio_token="<|AUDIO|>", encoder="own", whole_processor=False)
AUDIO_FLAMINGO_3 = Architecture(model_class="AudioFlamingo3ForConditionalGeneration",
                                backend="audio-flamingo-3", version=2, audio_token="<sound>",
                                windows_as_audios=False)
ULTRAVOX = Architecture(model_class="UltravoxModel", backend="ultravox", version=2,
                        audio_token="<|reserved_special_token_0|>", windows_as_audios=False,
                        end_of_turn="<|eot_id|>")


def fast_path_info(name: str, revision: str, architecture: Architecture, dtype: str = "auto",
                   device: str | None = None, attn_implementation: str = "sdpa",
                   **options: object) -> ModelInfo | None:
    """The :class:`ModelInfo` a fast-path backend built with these arguments will have (its
    ``from_pretrained``'s), without loading it: what a cell's cache keys need
    (harness.models.deferred). None where it cannot be told without loading (a dtype or device
    named otherwise than the backend names it).

    Raises:
        ValueError: an unknown fast-path option or value, as loading would.
    """
    from harness.models._hf_common import described_placement

    chosen = FastPathOptions.from_kwargs(**options)
    placement = described_placement(dtype, device)
    if placement is None or not isinstance(attn_implementation, str):
        return None
    dtype_name, device_name = placement
    resolved = chosen.resolved(device_name.startswith("cuda"))
    return ModelInfo(name, revision, dtype_name, device_name, Capabilities(structured_output=True),
                     options=(("backend", f"{architecture.backend}/{architecture.version}"),
                              *resolved.output_options()))
