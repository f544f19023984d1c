"""The Audio Flamingo 2 adapter's batches, and what NVIDIA's code demands of it, on the stand-in
of NVIDIA's package (tests/models/fake_af2, which makes the same demands): batched answers and
label scores equal to one clip at a time; the language model's mask optional; laion_clap's
package initialisers skipped; a failing import named."""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models import Decoding, ModelNotLoaded, Request, get_model  # noqa: E402
from tests.models.af2_stand_in import FAKE, forget_nvidias_modules  # noqa: E402


def _of_several_lengths(af2_requests):
    """The requests' clips and longer ones: one, two and three 1-second windows of the test's
    config, and prompts of very different lengths, so that the grouping by window count shows
    and that a pad token attended to would change the answers."""
    out = []
    for i, r in enumerate(af2_requests * 2):
        audio = np.resize(r.audio, [8_000, 20_000, 40_000, 12_000, 30_000, 16_000][i])
        longer = r.prompt + " Listen closely." * (40 * i)  # rows padded by up to 200 tokens
        out.append(Request(audio.astype(np.float32), longer, f"{r.name}-{i}"))
    return out


@pytest.mark.parametrize("decoding", [Decoding(max_new_tokens=6),
                                      Decoding(mode="beam", num_candidates=3, max_new_tokens=6)],
                         ids=["greedy", "beam"])
def test_batched_answers_equal_those_of_one_clip_at_a_time(af2, af2_requests, decoding):
    """Left-padded prompts with their mask, the beams' mask repeated (the fake's generate, as
    NVIDIA's, repeats only the windows), and the clips of a batch hearing only their own audio."""
    requests = _of_several_lengths(af2_requests)
    af2.factory.CALLS.clear()
    try:
        af2.batch_size = 1
        one = af2.generate(requests, decoding)
        af2.batch_size = 8
        many = af2.generate(requests, decoding)
    finally:
        af2.batch_size = 8
    batches = af2.factory.CALLS[len(requests):]
    assert sorted(len(call["lang_x"]) for call in batches) == [1, 2, 3]  # one per window count
    for a, b in zip(one, many):  # beams whose α tie within float noise: in either order
        assert a.error is None and b.error is None
        a, b = (sorted(g.candidates, key=lambda c: (c.text, c.logprob)) for g in (a, b))
        assert [(c.text, c.n_tokens) for c in a] == [(c.text, c.n_tokens) for c in b]
        np.testing.assert_allclose([c.logprob for c in a], [c.logprob for c in b], atol=1e-4)
    assert len({a.candidates[0].text for a in one}) > 1  # each clip its own answer


def test_each_clips_samples_come_from_its_own_rows_of_the_batch(af2, af2_requests):
    """Samples are a batch's rows, each clip's repeated once per sample: at a temperature near
    zero every sample of a clip is that clip's greedy answer (a row read as another clip's would
    show), and each clip gets its three."""
    requests = _of_several_lengths(af2_requests)
    greedy = af2.generate(requests, Decoding(max_new_tokens=6))
    af2.factory.CALLS.clear()
    cold = af2.generate(requests, Decoding(mode="sample", num_candidates=3, max_new_tokens=6,
                                           temperature=1e-6, top_p=1.0))
    assert len(af2.factory.CALLS) == 3  # one generate per batch (a batch per window count)
    for one, samples in zip(greedy, cold):
        assert samples.error is None and len(samples.candidates) == 3
        assert {c.text for c in samples.candidates} == {one.candidates[0].text}
    assert len({g.candidates[0].text for g in greedy}) > 1  # clips that answer differently


def test_batched_label_scores_equal_those_of_one_clip_at_a_time(af2, af2_requests):
    requests, labels = _of_several_lengths(af2_requests), ["Anger", "Sadness", "Neutral state"]
    try:
        af2.batch_size = 1
        one = np.stack([row.logprobs for row in af2.label_logprobs(requests, labels)])
        af2.batch_size = 8
        many = np.stack([row.logprobs for row in af2.label_logprobs(requests, labels)])
    finally:
        af2.batch_size = 8
    assert np.isfinite(one).all()
    np.testing.assert_allclose(many, one, atol=1e-4)


def test_nvidias_lm_wants_its_mask_by_position_and_gets_none_from_generate(af2):
    """transformers 5 leaves an all-ones mask out of ``generate``'s model inputs: the adapter
    makes the mask optional on NVIDIA's LM (the fake's takes it by position, as NVIDIA's)."""
    from harness.models.af2_native import mask_optional

    ids = torch.tensor([[1, 2, 3]])
    assert af2.model.lang_encoder(ids).logits.shape[:2] == (1, 3)  # no mask given: no TypeError

    class LM:
        def forward(self, input_ids, attention_mask=None):
            return "as it was"

    lm = LM()
    before = lm.forward
    mask_optional(lm)
    assert lm.forward == before  # a forward whose mask is optional already is left alone


def test_nvidias_laion_clap_initialisers_are_not_run(af2_checkpoint, monkeypatch):
    """The factory imports HTSAT without the package initialisers of NVIDIA's laion_clap copy
    (the fake's raise, as the real ones load hub tokenizers and an LFS file)."""
    from harness.models.af2_native import LAION_CLAP

    monkeypatch.syspath_prepend(str(FAKE))
    forget_nvidias_modules()  # imported afresh, as in a new process
    try:
        get_model("audio-flamingo-2", path=af2_checkpoint, device="cpu")
        assert sys.modules[f"{LAION_CLAP}.clap_module.htsat"].CREATED  # the factory called it
        assert not hasattr(sys.modules[LAION_CLAP], "CLAP_Module")  # a bare package
    finally:
        forget_nvidias_modules()


def test_nvidias_code_that_fails_to_import_is_named(tmp_path, monkeypatch):
    package = tmp_path / "audio_flamingo_2"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "factory.py").write_text("raise OSError('no internet to fetch roberta-base')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    forget_nvidias_modules()  # the stand-in, imported by another test: this package instead
    try:
        with pytest.raises(ModelNotLoaded, match="NVIDIA's inference code failed to import "
                                                 r"\(OSError: no internet to fetch roberta-base\)"):
            get_model("audio-flamingo-2", path=tmp_path, device="cpu")
    finally:
        forget_nvidias_modules()
