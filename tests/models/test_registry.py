"""The model registry: names, kinds and GPU needs, and a user's own model."""

import pytest

from harness.baselines import ChanceBaseline
from harness.models import get_model, model_entry, model_kind, model_names, register
from harness.models.registry import _ENTRIES


def test_kinds_and_gpu_needs_come_from_the_registry():
    assert model_kind("tiny-qwen2-audio") == "local" and not model_entry("tiny-qwen2-audio").gpu
    assert model_kind("qwen2-audio-7b") == "local" and model_entry("qwen2-audio-7b").gpu
    assert model_kind("gpt-4o") == model_kind("openai-compatible:org/model") == "api"
    assert model_kind("uniform") == model_kind("label-prior") == "chance"
    assert isinstance(get_model("uniform"), ChanceBaseline)
    assert "openai-compatible:<model>" in model_names()


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'qwen2-audoi-7b'; registered: "):
        model_kind("qwen2-audoi-7b")
    with pytest.raises(ValueError, match="unknown model 'openai-compatible:'"):
        get_model("openai-compatible:")


def test_a_users_model_registers_with_its_kind():
    @register("test-echo", kind="api")
    def echo(**config):
        return ("echo", config)

    try:
        assert model_kind("test-echo") == "api" and not model_entry("test-echo").gpu
        assert get_model("test-echo", seed=3) == ("echo", {"seed": 3})
    finally:
        _ENTRIES.pop("test-echo")
