import pytest

pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


@pytest.fixture(scope="session")
def tiny():
    from harness.models import get_model

    return get_model("tiny-qwen2-audio")
