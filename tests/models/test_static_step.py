import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, Request  # noqa: E402
from harness.prompts import base_prompt  # noqa: E402


@pytest.mark.parametrize("decoding", [
    Decoding(max_new_tokens=40),
    Decoding(mode="beam", num_candidates=4, max_new_tokens=40),
    Decoding(mode="sample", num_candidates=2, max_new_tokens=30, temperature=0.5, seed=4),
], ids=["greedy", "beam", "sample"])
def test_static_shape_step_decodes_like_the_ordinary_step(tiny, decoding):
    """The step a CUDA graph replays (full buffer, 4D mask, device-side write index), run eagerly."""
    dataset = load_dataset("msp_podcast")
    reqs = [Request(it.load_audio(), base_prompt("msp_podcast", it.transcript, dataset.labels))
            for it in list(dataset)[:4]]
    outputs = {}
    for mode in ("eager", "static"):
        tiny.decode_mode = mode
        outputs[mode] = tiny.generate(reqs, decoding)
    tiny.decode_mode = "eager"
    for a, b in zip(outputs["eager"], outputs["static"]):
        assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
        assert [c.logprob for c in a.candidates] == pytest.approx([c.logprob for c in b.candidates],
                                                                 abs=1e-4)
