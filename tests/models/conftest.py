import pytest


@pytest.fixture(scope="session")
def tiny():
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from harness.models import get_model

    return get_model("tiny-qwen2-audio")


@pytest.fixture(scope="session")
def other_architectures(tmp_path_factory):
    """The tiny checkpoints of the other fast-path families, by model name (built here)."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from fixtures import tiny_architectures as build

    where = tmp_path_factory.mktemp("architectures")
    return {"audio-flamingo-3": build.build_audio_flamingo_3(where / "af3"),
            "qwen2.5-omni-7b": build.build_qwen2_5_omni_thinker(where / "omni"),
            "ultravox-v0.4": build.build_ultravox(where / "ultravox")}


@pytest.fixture(scope="module")
def af2_checkpoint(tmp_path_factory):
    """A stand-in Audio Flamingo 2 checkpoint in NVIDIA's layout (each test module its own)."""
    from tests.models.af2_stand_in import stand_in_checkpoint

    return stand_in_checkpoint(tmp_path_factory.mktemp("af2"))


@pytest.fixture(scope="module")
def af2(af2_checkpoint):
    """The adapter loaded on the stand-in of NVIDIA's package."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from tests.models.af2_stand_in import stand_in_model

    with stand_in_model(af2_checkpoint) as model:
        yield model


@pytest.fixture(scope="module")
def af2_requests():
    """Three IEMOCAP requests with their clips."""
    from tests.models.af2_stand_in import iemocap_requests

    return iemocap_requests(3)
