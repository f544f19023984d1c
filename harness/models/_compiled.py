"""The parts of a decoder that ``torch.compile`` fuses, and how to put the eager ones back.

Eager PyTorch runs each elementwise operation as its own pass over memory: RMSNorm's float32
upcast, SwiGLU's activation, the rotary embedding's slices, products and sums, the audio
encoder's GELU and residual sums. In a prefill of tens of thousands of tokens those passes cost
a share of the time next to the matrix products (bench/profile_decode.py's prefill profile on an
H200: about a third). Compiled with dynamic shapes, each part is one graph shared by every layer.
Attention kernels and the KV cache stay eager.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
import weakref

LAYER_PARTS = ("input_layernorm", "post_attention_layernorm", "mlp")
ROTARY = "apply_rotary_pos_emb"  # the module-level function transformers' attention calls
_EAGER_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # compiled -> eager
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # weights -> CompiledParts


class CompiledParts:
    """Attributes replaced by their compiled selves, each remembered with what it replaced."""

    def __init__(self, torch) -> None:
        self.torch = torch
        self.replaced: list[tuple[object, str, object]] = []  # (owner, attribute, eager value)
        self.encoder_layers: list | None = None  # compiled audio-encoder layers, called in order

    def __bool__(self) -> bool:
        return bool(self.replaced or self.encoder_layers)

    def replace(self, owner, name: str) -> None:
        eager = getattr(owner, name)
        if eager in _EAGER_OF:
            return  # compiled already (another backend of the same architecture did it)
        compiled = self.torch.compile(eager, dynamic=True)
        _EAGER_OF[compiled] = eager
        setattr(owner, name, compiled)
        self.replaced.append((owner, name, eager))

    def restore(self) -> None:
        for owner, name, eager in reversed(self.replaced):
            setattr(owner, name, eager)
        self.replaced.clear()
        self.encoder_layers = None


def compile_decoder(layers, encoder_layers, torch) -> CompiledParts:
    """Compile each decoder layer's norms and MLP, the rotary embedding of the layers' attention
    module (a module-level function: every model of that architecture in the process uses the
    compiled one until :meth:`CompiledParts.restore`), and each audio-encoder layer whole (kept
    in ``encoder_layers`` for the caller's own loop: the model's module tree is not touched)."""
    parts = CompiledParts(torch)
    for layer in layers:
        for name in LAYER_PARTS:
            parts.replace(layer, name)
    if layers:
        module = sys.modules[type(layers[0].self_attn).__module__]
        if hasattr(module, ROTARY):
            parts.replace(module, ROTARY)
    parts.encoder_layers = [torch.compile(layer, dynamic=True) for layer in encoder_layers] or None
    return parts


def eager_stance(torch) -> contextlib.AbstractContextManager:
    """Within it, compiled parts run their eager code and compile nothing (a call of a shape the
    run meets once); where this torch has no stances (before 2.6), nothing changes."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


def compiled_or_eager(parts: CompiledParts, check) -> CompiledParts | None:
    """``parts`` when ``check()`` (a small forward through them) runs; otherwise None, the eager
    modules back and a warning saying why (no compiler toolchain, an unsupported torch)."""
    try:
        check()
    except Exception as exc:  # compilation is an optimisation: never a reason to fail a run
        parts.restore()
        warnings.warn(f"torch.compile is unavailable here, running eager: {type(exc).__name__}: "
                      f"{str(exc)[:200]}", stacklevel=3)
        return None
    return parts


def compiled_parts(model) -> CompiledParts | None:
    """What compiling replaced in these weights (None: they run eager)."""
    return _COMPILED.get(model)


def settle_compilation(backend) -> None:
    """Make a fast-path backend's weights run compiled or eager, as its ``compile_blocks``
    option says. Compiled layers belong to the weights, so the backend built last decides for
    every backend on them. Compiling fuses the elementwise work of the LM's layers and, where the
    harness runs the audio encoder's layers itself, of those (:func:`compile_decoder`), checked
    by ``backend._compile_check()`` (where it fails, a warning and the eager modules). On by
    default on a GPU, where it paid on an H200 (bench/results/)."""
    parts = _COMPILED.get(backend.model)
    if backend.options.compile_blocks and parts is None:
        own = backend.ARCHITECTURE.encoder == "own"  # the model's encoder runs as it calls it
        parts = compile_decoder(backend.lm.layers, () if own else backend.audio_tower.layers,
                                backend._torch)
        _COMPILED[backend.model] = parts  # the check's prefill runs through them
        if compiled_or_eager(parts, backend._compile_check) is None:
            del _COMPILED[backend.model]
    elif not backend.options.compile_blocks and parts is not None:
        parts.restore()  # this backend wants none
        del _COMPILED[backend.model]
