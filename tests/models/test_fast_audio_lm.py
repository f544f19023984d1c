"""What the fast path's backend (harness.models.fast_audio_lm) decides for itself, apart from
what it computes: the device it loads on, what it says it can do, the cache room a decoding
needs, and how many clips a GPU batch holds."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

import harness.models.fast_audio_lm as fast_audio_lm  # noqa: E402
from harness import embedded_path  # noqa: E402
from harness.models import Decoding, Request  # noqa: E402
from harness.models.hf_qwen2_audio import Qwen2AudioBackend  # noqa: E402
from tests.helpers import requests_for  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a GPU here")
def test_without_a_device_it_picks_one_and_says_when_listed_gpus_go_unused(monkeypatch):
    monkeypatch.setenv("HARNESS_GPUS", "0")
    with pytest.warns(UserWarning, match=r"^tiny runs on the CPU: GPUs are listed \(0\), but torch"):
        backend = Qwen2AudioBackend.from_pretrained("tiny", embedded_path("tiny_qwen2_audio"))
    assert backend.device.type == "cpu"
    assert backend.info.device == "cpu" and backend.info.dtype == "float32"


def test_it_offers_structured_output_and_names_its_backend(tiny):
    """A constrained decoding is run as asked (a strategy drops the constraint for a model
    without it)."""
    assert tiny.info.capabilities.structured_output is True
    assert tiny.info.options[0] == ("backend", f"{tiny.ARCHITECTURE.backend}/"
                                               f"{tiny.ARCHITECTURE.version}")


@pytest.mark.parametrize(("decode", "room"), [("eager", 40), ("static", 200)])
def test_the_cache_room_past_the_prompt_is_per_clip_for_the_static_step(tiny, decode, room):
    """The static step's grouped cache holds new tokens for each of a clip's five beams; the
    eager decode repeats the prompt per beam, each with room for its own."""
    decoding = Decoding(mode="beam", num_candidates=5, max_new_tokens=40)
    assert tiny.with_options(decode=decode).decode_reserve(decoding) == room


def test_on_a_gpu_the_batch_follows_free_memory_and_a_clip_heard_whole_is_longer(tiny, monkeypatch):
    """Heard in 30 s pieces (``long_audio="chunk"``), a 2-minute clip is four windows of audio
    tokens, so fewer clips fit in the same memory than when it is cut to its first window."""
    monkeypatch.setattr(fast_audio_lm, "free_gpu_bytes", lambda device: 2**27)
    requests = [Request(np.zeros(16_000 * 120, np.float32), "Which emotion?", "long")]
    sizes = {}
    for long_audio in ("truncate", "chunk"):
        backend = tiny.with_options(long_audio=long_audio)
        backend.device = torch.device("cuda")  # its memory is what free_gpu_bytes says
        sizes[long_audio] = backend.batch_size_for(requests, 5, 96)
    assert 1 < sizes["chunk"] < sizes["truncate"] < 256
    assert tiny.batch_size_for(requests, 5, 96) == 8  # on the CPU
    assert tiny.with_options(batch_size=3).batch_size_for(requests, 5, 96) == 3


def test_the_prefill_by_stages_is_the_prefill_and_its_shared_prefix_is_the_templates_head(tiny):
    """What ``bench/stage_times.py`` times stage by stage (features, encoder, then the LM over
    the texts, one audio a clip when no pieces are given) computes what ``prefill`` does; the
    prefix every clip shares is the chat template's text before the audio."""
    _, reqs = requests_for("crema_d", 2)
    audios, prompts = [r.audio for r in reqs], [r.prompt for r in reqs]
    with torch.inference_mode():
        whole = tiny.with_options(share_prompts=False).prefill(audios, prompts)
        audio, lens = tiny.encode_audio(*tiny.features(audios))
        staged = tiny.prefill_text(audio, lens, prompts)
    torch.testing.assert_close(staged.logits, whole.logits)
    assert torch.equal(staged.attention_mask, whole.attention_mask)
    prefix = tiny.tokenizer(tiny.chat.prefix, add_special_tokens=False)["input_ids"]
    assert tiny.prefix_length == len(prefix) > 0


def test_its_parts_are_the_nested_towers_and_the_decoder_itself(tiny):
    """Transformers nests the towers and the decoder in ``model.model``; the decoder run is the
    language model, not the whole multimodal model (which also forwards embeddings)."""
    inner = tiny.model.model
    assert tiny.parts(tiny.model) == (inner, inner.audio_tower, inner.multi_modal_projector,
                                      inner.language_model, tiny.model.lm_head)
    assert tiny.lm is inner.language_model


@pytest.mark.parametrize(("decode", "graphs"), [("static", False), ("graph", True)])
def test_the_static_step_is_replayed_from_a_cuda_graph_only_where_asked(tiny, decode, graphs):
    backend = tiny.with_options(decode=decode)
    assert backend.decode_step().graphs is graphs
    with backend.pooled_decoding():
        step = backend.decode_step()
        assert step.graphs is graphs and backend.decode_step() is step  # one for every batch
    eager = tiny.with_options(decode="eager")
    assert eager.decode_step() == eager.step
