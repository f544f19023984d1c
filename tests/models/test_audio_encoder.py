"""The audio encoder's layers over a batch's real frames."""

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")

from harness.models._audio_encoder import encoder_layers  # noqa: E402


class _Layer:
    """Adds one and records the mask it was given; answers as a tuple (transformers' encoder
    layers of some versions) or a tensor."""

    def __init__(self, as_tuple):
        self.as_tuple, self.masks = as_tuple, []

    def __call__(self, h, mask):
        self.masks.append(mask)
        return (h + 1, None) if self.as_tuple else h + 1


@pytest.mark.parametrize("as_tuple", [True, False], ids=["tuple", "tensor"])
def test_each_layer_reads_the_last_ones_hidden_states(as_tuple):
    layers = [_Layer(as_tuple), _Layer(as_tuple)]
    h = torch.zeros(2, 3, 4)
    out = encoder_layers(layers, h, torch.tensor([3, 3]), "cpu", torch.float32)
    assert torch.equal(out, torch.full((2, 3, 4), 2.0))


def test_frames_past_a_rows_length_are_masked_and_full_rows_need_no_mask():
    layer = _Layer(False)
    encoder_layers([layer], torch.zeros(2, 3, 4), torch.tensor([3, 3]), "cpu", torch.float32)
    assert layer.masks == [None]  # every row full: attention runs unmasked
    encoder_layers([layer], torch.zeros(2, 3, 4), torch.tensor([3, 1]), "cpu", torch.bfloat16)
    mask = layer.masks[1]
    assert mask.shape == (2, 1, 1, 3) and mask.dtype == torch.bfloat16
    lowest = torch.finfo(torch.bfloat16).min
    assert mask[0].flatten().tolist() == [0, 0, 0]
    assert mask[1].flatten().tolist() == [0, lowest, lowest]
