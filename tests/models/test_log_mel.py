"""Log-mel features of a batch, each clip's as Whisper's extractor gives it alone."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models._log_mel import log_mel_each  # noqa: E402

LENGTHS = [(96_000, 0.1), (16_210, 0.3), (300, 0.01), (48_001, 1.0), (401, 0.2)]


@pytest.mark.parametrize("mels", [80, 128])
def test_each_clip_as_the_extractor_gives_it_alone(mels):
    extractor = transformers.WhisperFeatureExtractor(feature_size=mels)
    rng = np.random.default_rng(0)
    audios = [rng.standard_normal(n).astype(np.float32) * scale for n, scale in LENGTHS]
    features, frames = log_mel_each(extractor, audios)
    assert frames.tolist() == [n // 160 for n, _ in LENGTHS]
    assert features.shape == (len(audios), mels, 600)
    for audio, row, n in zip(audios, features, frames.tolist()):
        alone = extractor(audio, sampling_rate=16_000, padding="longest",
                          return_tensors="np")["input_features"][0]
        np.testing.assert_allclose(row[:, :n].numpy(), alone, atol=1e-6, rtol=0)
        assert not row[:, n:].any()  # nothing past the clip's own frames


def test_a_dithering_extractor_is_called_clip_by_clip():
    extractor = transformers.WhisperFeatureExtractor(feature_size=80, dither=1.0)
    audios = [np.zeros(16_000, np.float32), np.zeros(8_000, np.float32)]
    features, frames = log_mel_each(extractor, audios)
    assert frames.tolist() == [100, 50] and features.shape == (2, 80, 100)
    assert features[1, :, :50].std() > 0 and not features[1, :, 50:].any()  # dithered, padded
    alone, frames = log_mel_each(extractor, audios[1:])  # a batch of one clip
    assert frames.tolist() == [50] and alone.shape == (1, 80, 50) and alone.std() > 0


class _Uncalled(transformers.WhisperFeatureExtractor):
    def __call__(self, *args, **kwargs):
        raise AssertionError("the extractor was called: the clip-by-clip path ran")


@pytest.mark.parametrize("has_dither", [True, False], ids=["dither-0", "no-dither-attribute"])
def test_a_batch_is_computed_here_not_by_the_extractor(has_dither):
    from harness.models._log_mel import log_mel_batch, log_mel_each

    extractor = _Uncalled(feature_size=80)
    if not has_dither:  # an extractor of an older transformers has no dither setting
        del extractor.dither
    audios = [np.linspace(-0.5, 0.5, n, dtype=np.float32) for n in (16_000, 4_000)]
    ours, frames = log_mel_batch(extractor, audios, 30 * 16_000)
    reference = transformers.WhisperFeatureExtractor(feature_size=80)(
        audios, sampling_rate=16_000, padding="max_length", max_length=16_000 + 1_600,
        truncation=True, return_tensors="pt")["input_features"]
    assert frames.tolist() == [100, 25]
    assert torch.equal(ours, reference)
    each, frames = log_mel_each(extractor, audios)
    assert frames.tolist() == [100, 25] and each.shape == (2, 80, 100)
