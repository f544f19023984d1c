
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness import embedded_path  # noqa: E402
from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, Request, get_model  # noqa: E402
from harness.models._constrained import JsonConstraint, token_strings  # noqa: E402
from harness.models.hf_qwen2_audio import Qwen2AudioBackend  # noqa: E402
from harness.parsing import parse_distribution  # noqa: E402
from harness.prompts import base_prompt  # noqa: E402

LABELS = ("Neutral state", "Happiness", "Anger", "Sadness")


def char_automaton(labels=LABELS):
    """Every printable character as its own token, plus EOS = the last id."""
    chars = [chr(c) for c in range(32, 127)]
    return JsonConstraint(labels, chars, len(chars) + 1, [len(chars)]), chars


def accepts(automaton, chars, text: str) -> bool:
    state = automaton.initial(1)
    for ch in text:
        if not automaton.masks[state[0]][chars.index(ch)]:
            return False
        state = automaton.advance(state, np.array([chars.index(ch)]))
    return automaton.is_complete(int(state[0]))


@pytest.mark.parametrize(("text", "ok"), [
    ('{"Neutral state": 0.5, "Happiness": 0.25, "Anger": 0, "Sadness": 1}', True),
    ('{"Neutral state": 1.0, "Happiness": 0, "Anger": 0, "Sadness": 0}', True),
    ('{"Neutral state": 0.5, "Happiness": 0.25, "Anger": 0}', False),  # incomplete
    ('{"Happiness": 0.5, "Neutral state": 0.5, "Anger": 0, "Sadness": 0}', False),  # order
    ('{"Neutral state": 2, "Happiness": 0, "Anger": 0, "Sadness": 0}', False),
    ('{"Neutral state": 0.555, "Happiness": 0, "Anger": 0, "Sadness": 0}', False),
    ('{"Neutral state": .5, "Happiness": 0, "Anger": 0, "Sadness": 0}', False),
])
def test_the_automaton_accepts_exactly_the_template(text, ok):
    automaton, chars = char_automaton()
    assert accepts(automaton, chars, text) is ok
    if ok:
        assert parse_distribution(text, LABELS).rule == "json_dict"


def test_the_final_state_allows_only_eos():
    automaton, chars = char_automaton(("A", "B"))
    state = automaton.initial(1)
    for ch in '{"A": 1, "B": 0}':
        state = automaton.advance(state, np.array([chars.index(ch)]))
    assert automaton.is_complete(int(state[0]))
    assert np.flatnonzero(automaton.masks[state[0]]).tolist() == [len(chars)]


def test_ids_beyond_the_models_vocabulary_are_never_allowed_and_a_dead_end_is_not_complete():
    chars = [chr(c) for c in range(32, 127)]
    tilde = chars.index("~")  # ids from len(chars) on are the tokenizer's, not the model's
    automaton = JsonConstraint(("A",), [*chars, "{"], len(chars), [len(chars), tilde])
    assert np.flatnonzero(automaton.masks[0]).tolist() == [chars.index("{")]
    assert not automaton.is_complete(0)
    state = automaton.initial(1)
    for ch in '{"A": 1}':
        state = automaton.advance(state, np.array([chars.index(ch)]))
    assert np.flatnonzero(automaton.masks[state[0]]).tolist() == [tilde]
    no_brace = ["" if c == "}" else c for c in chars]  # the answer can never be closed
    stuck = JsonConstraint(("A",), no_brace, len(chars), [tilde])
    state = stuck.initial(1)
    for ch in '{"A": 0.55':
        state = stuck.advance(state, np.array([chars.index(ch)]))
    assert not stuck.masks[state[0]].any() and not stuck.is_complete(int(state[0]))


@pytest.fixture(scope="module")
def random_model():
    from transformers import AutoProcessor

    from fixtures.tiny_architectures import random_qwen2_audio

    processor = AutoProcessor.from_pretrained(embedded_path("tiny_qwen2_audio"))
    audio = {"model_type": "qwen2_audio_encoder", "d_model": 64, "encoder_layers": 2,
             "encoder_attention_heads": 4, "encoder_ffn_dim": 128, "num_mel_bins": 128,
             "max_source_positions": 1500}
    text = {"model_type": "qwen2", "vocab_size": 2048, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
            "max_position_embeddings": 8192, "rope_theta": 10000.0}  # vocab 2048 > the tokenizer's
    model = random_qwen2_audio(processor, audio, text, torch.float32, "cpu")
    return Qwen2AudioBackend("random", model, processor, "random")


@pytest.mark.parametrize("decoding", [
    Decoding(constrained=True, json_labels=LABELS, max_new_tokens=160),
    Decoding(mode="beam", num_candidates=3, constrained=True, json_labels=LABELS, max_new_tokens=160),
    Decoding(mode="sample", num_candidates=2, temperature=1.0, constrained=True, json_labels=LABELS,
             max_new_tokens=160),
], ids=["greedy", "beam", "sample"])
def test_a_random_model_always_answers_parseable_json(random_model, decoding):
    dataset = load_dataset("iemocap")
    reqs = [Request(it.load_audio(), base_prompt("iemocap", it.transcript, LABELS), it.id)
            for it in list(dataset)[:3]]
    unconstrained = random_model.generate(reqs, Decoding(max_new_tokens=20))
    assert not any(parse_distribution(g.candidates[0].text, LABELS).rule for g in unconstrained)
    for g in random_model.generate(reqs, decoding):
        for c in g.candidates:
            assert parse_distribution(c.text, LABELS).rule == "json_dict", c.text
            assert c.text.startswith('{"Neutral state": ') and c.text.endswith("}")


def test_generic_backend_uses_prefix_allowed_tokens(tmp_path):
    from fixtures import tiny_architectures

    path = tiny_architectures.build_audio_flamingo_3(tmp_path)
    model = get_model("audio-flamingo-3", path=path, device="cpu", dtype="float32")
    dataset = load_dataset("crema_d")
    reqs = [Request(dataset[0].load_audio(), base_prompt("crema_d", "", dataset.labels))]
    decoding = Decoding(mode="beam", num_candidates=2, constrained=True,
                        json_labels=dataset.labels, max_new_tokens=120)
    for c in model.generate(reqs, decoding)[0].candidates:
        assert parse_distribution(c.text, dataset.labels).rule == "json_dict", c.text


def test_token_strings_blank_special_tokens():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_path("tiny_qwen2_audio"))
    strings = token_strings(tok)
    assert len(strings) == len(tok)
    assert all(strings[i] == "" for i in tok.all_special_ids)
