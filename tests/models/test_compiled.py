"""What compiling replaces and how it is put back (harness.models._compiled), with a stand-in for
``torch.compile``: the real one is checked on the tiny model (test_hf_qwen2_audio.py)."""

import sys
import types

import pytest

from harness.models._compiled import CompiledParts, compile_decoder, eager_stance


class FakeTorch:
    """``compile`` wraps a callable in a marked function and counts the calls."""

    def __init__(self):
        self.compiled = []

    def compile(self, fn, dynamic):
        assert dynamic

        def compiled(*args, **kwargs):
            return fn(*args, **kwargs)

        self.compiled.append(fn)
        return compiled


def layer(k):
    return types.SimpleNamespace(input_layernorm=lambda x: x + k, post_attention_layernorm=abs,
                                 mlp=lambda x: x * k, self_attn=Attention())


module = types.ModuleType("fake_modeling")
module.apply_rotary_pos_emb = lambda q, k: (q, k)
Attention = type("Attention", (), {"__module__": "fake_modeling"})
sys.modules["fake_modeling"] = module


def test_each_layers_parts_and_the_rotary_function_are_compiled_then_put_back():
    layers = [layer(2), layer(3)]
    eager = [(one.input_layernorm, one.post_attention_layernorm, one.mlp) for one in layers]
    rotary = module.apply_rotary_pos_emb
    torch = FakeTorch()
    parts = compile_decoder(layers, ["enc0", "enc1"], torch)
    assert parts and len(torch.compiled) == 2 * 3 + 1 + 2
    assert all(getattr(one, name) is not e for one, es in zip(layers, eager) for name, e in
               zip(("input_layernorm", "post_attention_layernorm", "mlp"), es))
    assert module.apply_rotary_pos_emb is not rotary and layers[1].mlp(5) == 15
    assert len(parts.encoder_layers) == 2
    parts.restore()
    assert [(one.input_layernorm, one.post_attention_layernorm, one.mlp) for one in layers] == eager
    assert module.apply_rotary_pos_emb is rotary
    assert not parts and parts.replaced == [] and parts.encoder_layers is None


def test_what_another_backend_compiled_already_is_not_compiled_again():
    owner = types.SimpleNamespace(mlp=abs)
    torch = FakeTorch()
    first, second = CompiledParts(torch), CompiledParts(torch)
    first.replace(owner, "mlp")
    compiled = owner.mlp
    second.replace(owner, "mlp")
    assert owner.mlp is compiled and torch.compiled == [abs] and not second
    first.restore()
    assert owner.mlp is abs


def test_parts_are_true_when_anything_was_compiled():
    parts = CompiledParts(FakeTorch())
    assert not parts
    parts.encoder_layers = ["enc"]
    assert parts
    parts.encoder_layers = None
    parts.replace(types.SimpleNamespace(mlp=abs), "mlp")
    assert parts


def test_no_layers_compile_nothing_and_no_encoder_layers_leave_none():
    torch = FakeTorch()
    parts = compile_decoder([], (), torch)
    assert not parts and parts.encoder_layers is None and torch.compiled == []


def test_a_decoder_of_one_layer_is_compiled_with_its_rotary_function():
    rotary = module.apply_rotary_pos_emb
    torch = FakeTorch()
    parts = compile_decoder([layer(4)], (), torch)
    assert len(torch.compiled) == 3 + 1 and module.apply_rotary_pos_emb is not rotary
    parts.restore()
    assert module.apply_rotary_pos_emb is rotary


def test_the_eager_stance_is_asked_of_torch_where_it_has_stances_and_is_nothing_before():
    asked = []
    with_stances = types.SimpleNamespace(compiler=types.SimpleNamespace(
        set_stance=lambda stance: asked.append(stance) or _Entered(asked)))
    with eager_stance(with_stances):
        assert asked == ["force_eager", "entered"]
    assert asked == ["force_eager", "entered", "left"]
    with eager_stance(types.SimpleNamespace(compiler=types.SimpleNamespace())):  # torch 2.4, 2.5
        pass


class _Entered:
    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("entered")

    def __exit__(self, *exc):
        self.log.append("left")


def test_within_the_eager_stance_a_compiled_function_compiles_nothing():
    torch = pytest.importorskip("torch", reason="the hf extra is not installed")
    graphs = []

    def counting(graph, inputs):  # a backend that only counts what it is given
        graphs.append(graph)
        return graph.forward

    twice = torch.compile(lambda x: x * 2, backend=counting, dynamic=True)
    with eager_stance(torch):
        assert twice(torch.ones(1)).tolist() == [2.0]
    assert graphs == []
    assert twice(torch.ones(3)).tolist() == [2.0] * 3 and len(graphs) == 1
