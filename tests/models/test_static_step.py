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


def test_unwritten_cache_slots_are_zero_so_the_masked_full_buffer_stays_finite():
    """The static step attends the whole preallocated buffer; stale memory there (NaN) used to
    survive the additive mask and poison the softmax, so the buffer must start zeroed."""
    from harness.models._hf_common import prefix_layer_class

    layer = prefix_layer_class()(reserve=6)
    k = torch.randn(2, 3, 4, 8)
    for _ in range(3):  # the first allocation, then a growth past the reserve
        layer.update(k, k.clone())
    assert layer.length == 12 and layer._k.shape[2] > 12
    assert torch.count_nonzero(layer._k[:, :, 12:]) == 0
    assert torch.count_nonzero(layer._v[:, :, 12:]) == 0
