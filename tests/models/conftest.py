import pytest


@pytest.fixture(scope="session")
def tiny():
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from harness.models import get_model

    return get_model("tiny-qwen2-audio")
