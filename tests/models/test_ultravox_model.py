"""Ultravox assembled from its checkpoint's parts (harness.models._ultravox_model): what its
config.json may say, the projector's rows, and what a checkpoint's tensors may hold."""

import json
import re
import shutil

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from fixtures import tiny_architectures  # noqa: E402
from harness.models import ModelUnavailable  # noqa: E402
from harness.models._ultravox_model import (  # noqa: E402
    UltravoxLayout,
    _projector_class,
    load_ultravox,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_architectures.build_ultravox(tmp_path_factory.mktemp("ultravox"))


def _config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    return folder


def _copy(weights, tmp_path):
    return shutil.copytree(weights, tmp_path / "ultravox")


def test_a_config_without_the_projectors_sizes_takes_ultravoxs_defaults(tmp_path):
    """UltravoxConfig's defaults (stack 8 frames, 4096 wide, SwiGLU): a config saved with only
    what differs from them leaves them out."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "ultravox"}))
    layout = UltravoxLayout.read(tmp_path)
    assert (layout.stack_factor, layout.hidden_size, layout.projector_act) == (8, 4096, "swiglu")
    assert layout.text_folder is None and layout.audio_folder is None


@pytest.mark.parametrize(("changes", "said"), [
    ({"projector_act": "gelu"}, "projector 'gelu' (ln_mid None)"),
    ({"projector_ln_mid": True}, "projector 'swiglu' (ln_mid True)"),
])
def test_a_projector_other_than_v0_3_and_v0_4s_is_refused(tmp_path, changes, said):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "ultravox", **changes}))
    with pytest.raises(ModelUnavailable,
                       match=re.escape(f"{tmp_path}: {said} is not v0.3/v0.4's SwiGLU")):
        UltravoxLayout.read(tmp_path)


@pytest.mark.parametrize(("frames", "rows"), [(16, 3), (17, 4), (1, 2)])
def test_the_projector_gives_a_row_per_8_frames_begun_and_a_zero_row_more(frames, rows):
    torch.manual_seed(0)
    projector = _projector_class()(6, 8, 10, 4)
    out = projector(torch.randn(2, frames, 6))
    assert out.shape == (2, rows, 4)
    assert torch.equal(out[:, -1], torch.zeros(2, 4)) and bool(out[:, :-1].abs().sum(-1).all())


def _rewrite_tensors(folder, change):
    from safetensors.torch import load_file, save_file

    tensors = change(load_file(str(folder / "model.safetensors")))
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_a_checkpoints_tensor_of_another_shape_is_refused_naming_the_folder(tmp_path, weights):
    folder = _copy(weights, tmp_path)
    _rewrite_tensors(folder, lambda t: {k: (v[:-1] if k.endswith("ln_post.weight") else v)
                                        for k, v in t.items()})
    said = re.escape(f"ultravox: the tensors in {folder} do not fit its parts: ")
    with pytest.raises(ModelUnavailable, match=f"(?s){said}.*size mismatch for "
                                               "multi_modal_projector.ln_post.weight"):
        load_ultravox(UltravoxLayout.read(folder), torch.float32, "cpu")


def test_a_checkpoints_tensor_with_no_place_in_the_model_is_refused(tmp_path, weights):
    folder = _copy(weights, tmp_path)
    _rewrite_tensors(folder, lambda t: {**t, "multi_modal_projector.bias": torch.zeros(3)})
    with pytest.raises(ModelUnavailable, match=re.escape(
            f"{folder} holds tensors it has no place for (e.g. multi_modal_projector.bias)")):
        load_ultravox(UltravoxLayout.read(folder), torch.float32, "cpu")


def test_the_checkpoints_generation_config_is_its_models(tmp_path, weights):
    folder = _copy(weights, tmp_path)
    (folder / "generation_config.json").write_text(json.dumps({"max_length": 77,
                                                               "temperature": 0.42}))
    model = load_ultravox(UltravoxLayout.read(folder), torch.float32, "cpu")
    assert (model.generation_config.max_length, model.generation_config.temperature) == (77, 0.42)


def test_the_code_a_part_ships_is_never_run(tmp_path, weights):
    """A Llama folder whose config maps its classes to code beside it (as remote-code
    checkpoints do) loads as transformers' own Llama; the code is not imported."""
    llama = shutil.copytree(weights.parent / "llama", tmp_path / "llama")
    marker = tmp_path / "ran"
    (llama / "modeling_marker.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise SystemExit('checkpoint code ran')\n")
    _config(llama, auto_map={"AutoModelForCausalLM": "modeling_marker.MarkerForCausalLM"})
    folder = _config(_copy(weights, tmp_path), text_model_id=str(llama))
    model = load_ultravox(UltravoxLayout.read(folder), torch.float32, "cpu")
    assert type(model.language_model).__name__ == "LlamaForCausalLM" and not marker.exists()


def test_the_projector_computes_the_published_definition():
    """Written out from fixie-ai's UltravoxProjector, in float64: every 8 frames stacked,
    RMSNorm (eps 1e-6), linear, SwiGLU (``silu(second half) * first half``), linear, RMSNorm.
    The tiny checkpoints are written by the projector itself, so only this holds its formula."""
    torch.manual_seed(0)
    projector = _projector_class()(6, 8, 10, 4).double()
    for norm in (projector.ln_pre, projector.ln_post):
        torch.nn.init.uniform_(norm.weight, 0.5, 1.5)
    frames = torch.randn(2, 16, 6, dtype=torch.float64)

    def rms_norm(x, weight):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight

    stacked = torch.cat([frames, frames.new_zeros(2, 8, 6)], 1).reshape(2, 3, 48)
    h = rms_norm(stacked, projector.ln_pre.weight) @ projector.linear_1.weight.T
    swiglu = torch.nn.functional.silu(h[..., 5:]) * h[..., :5]
    expected = rms_norm(swiglu @ projector.linear_2.weight.T, projector.ln_post.weight)
    with torch.no_grad():
        assert torch.allclose(projector(frames), expected, atol=1e-12)
