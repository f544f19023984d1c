"""Each built-in checkpoint's description is the info its model has once loaded: the cache
keys a cell uses before loading it are the ones it would use after."""

import sys

import pytest

from harness.models import registry
from harness.models.registry import describe_model, get_model

OPTIONS = [{}, {"decode": "static", "attention": "math", "long_audio": "chunk",
                "compile_blocks": False, "batch_size": 3, "dtype": "auto", "device": "cpu"}]


@pytest.mark.parametrize("options", OPTIONS, ids=["defaults", "chosen"])
@pytest.mark.parametrize("name", ["tiny-qwen2-audio", "audio-flamingo-3", "qwen2.5-omni-7b",
                                  "ultravox-v0.4"])
def test_a_description_is_the_loaded_model_s_info(name, options, other_architectures):
    config = dict(options, **({"path": other_architectures[name]}
                              if name in other_architectures else {}))
    assert describe_model(name, **config) == get_model(name, **config).info


def test_the_tiny_model_is_described_without_torch_or_transformers(tmp_path):
    import subprocess

    code = ("import sys; from harness.models.registry import describe_model; "
            "info = describe_model('tiny-qwen2-audio'); "
            "print(info.name, info.dtype, info.device, 'torch' in sys.modules, "
            "'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["tiny-qwen2-audio", "float32", "cpu", "False", "False"]


def test_what_cannot_be_told_without_loading_is_not_described(monkeypatch, other_architectures):
    assert describe_model("tiny-qwen2-audio", dtype="half") is None  # torch's other name
    assert describe_model("tiny-qwen2-audio", device="mps") is None
    assert describe_model("audio-flamingo-3", path=other_architectures["audio-flamingo-3"],
                          plain_generate=True) is None
    for name in ("gpt-4o", "uniform"):
        assert describe_model(name) is None
    with pytest.raises(ValueError, match="unknown fast-path option"):
        describe_model("tiny-qwen2-audio", beams_together=True)


def test_a_checkpoint_like_a_built_in_is_described_under_its_own_name(monkeypatch):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from harness._embedded import embedded_path

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    registry.register_checkpoint("my-tiny", "tiny-qwen2-audio", ("MY_TINY_PATH", "me/my-tiny"))
    monkeypatch.setenv("MY_TINY_PATH", str(embedded_path("tiny_qwen2_audio")))
    info = describe_model("my-tiny")
    assert info.name == "my-tiny" and info == get_model("my-tiny").info
