"""A checkpoint's processor parts read alone: the tokenizer, the feature extractor and the chat
template, wherever the checkpoint keeps it."""

import contextlib
import json

import pytest

pytest.importorskip("transformers", reason="the hf extra is not installed")

from fixtures import tiny_architectures  # noqa: E402
from harness.models._audio_chat import AudioTextProcessor, audio_text_processor  # noqa: E402

CONVERSATION = [{"role": "user", "content": [{"type": "audio", "audio_url": "clip.wav"},
                                             {"type": "text", "text": "hi"}]}]


@pytest.fixture
def omni(tmp_path):
    return tiny_architectures.build_qwen2_5_omni_thinker(tmp_path / "omni")


def render(processor):
    return processor.apply_chat_template(CONVERSATION, add_generation_prompt=True, tokenize=False)


def test_the_parts_render_the_template_the_processor_would(omni):
    parts = audio_text_processor(omni, whole=False)
    assert type(parts.feature_extractor).__name__ == "WhisperFeatureExtractor"
    assert render(parts) == ("<|im_start|>user\n<|audio_bos|><|AUDIO|><|audio_eos|>hi<|im_end|>\n"
                             "<|im_start|>assistant\n")


def test_a_template_kept_as_older_processors_wrote_it_is_read(omni):
    expected = render(AudioTextProcessor.from_pretrained(omni))
    config = json.loads((omni / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (omni / "tokenizer_config.json").write_text(json.dumps(config))
    assert render(AudioTextProcessor.from_pretrained(omni)) == expected  # chat_template.jinja
    template = (omni / "chat_template.jinja").read_text()
    (omni / "chat_template.jinja").unlink()
    (omni / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    assert render(AudioTextProcessor.from_pretrained(omni)) == expected
    (omni / "chat_template.json").unlink()
    with pytest.raises(ValueError, match="no chat template"):
        AudioTextProcessor.from_pretrained(omni)


class _Tokenizer:
    """A vocabulary of 10 named tokens; any other name reads as the unknown token, 1."""

    def __init__(self, eos, names):
        self.eos_token_id, self.names = eos, names

    def convert_tokens_to_ids(self, token):
        return self.names.index(token) if token in self.names else 1

    def convert_ids_to_tokens(self, i):
        return self.names[i]


NAMES = ["<pad>", "<unk>", "a", "<|im_end|>", "b", "c", "d", "<eos>", "e", "f"]


@pytest.mark.parametrize(("eos", "config_eos", "expected"), [
    (7, [3, 9, 10, 5000, -1], [3, 7, 9]),  # ids past the vocabulary are dropped
    (7, 8, [3, 7, 8]),  # one id, not a list
    (None, None, [3]),  # neither names one: the chat's end of turn alone
    (0, [0], [0, 3]),  # id 0 is a token like any other
])
def test_the_end_tokens_are_the_eos_the_chats_end_of_turn_and_the_configs(eos, config_eos,
                                                                         expected):
    """``<|im_end|>`` is found by name; ``<|endoftext|>``, which this vocabulary lacks, reads as
    the unknown token and is not taken for an end."""
    from types import SimpleNamespace

    from harness.models._audio_chat import end_ids

    config = SimpleNamespace(eos_token_id=config_eos)
    assert end_ids(_Tokenizer(eos, NAMES), config, vocab=10) == expected
    assert end_ids(_Tokenizer(7, NAMES), object(), vocab=10) == [3, 7]  # a config without one


def test_the_parts_are_read_from_the_folder_alone(omni, monkeypatch):
    """Nothing is downloaded: each part is asked for with ``local_files_only``."""
    import transformers

    asked = []
    for name in ("AutoTokenizer", "AutoFeatureExtractor", "AutoProcessor"):
        cls = getattr(transformers, name)
        real = cls.from_pretrained.__func__

        def spy(klass, path, _real=real, _name=name, **kwargs):
            asked.append((_name, kwargs.get("local_files_only")))
            return _real(klass, path, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    audio_text_processor(omni, whole=False)
    assert asked == [("AutoTokenizer", True), ("AutoFeatureExtractor", True)]
    asked.clear()
    with contextlib.suppress(ImportError):  # in some transformers it needs torchvision
        audio_text_processor(omni, whole=True)
    assert asked[0] == ("AutoProcessor", True)


def test_no_requests_need_no_room(tiny):
    from harness.models.fast_path import MAX_SAMPLES

    assert tiny.chat.longest_prompt([], MAX_SAMPLES, chunked=False) == 0


@pytest.mark.parametrize(("pad", "expected"), [(5, 5), (0, 0), (None, 0)])
def test_the_padding_id_is_the_tokenizers_else_zero(pad, expected):
    from types import SimpleNamespace

    from harness.models._audio_chat import ChatText

    tokenizer = SimpleNamespace(pad_token_id=pad, convert_tokens_to_ids=lambda token: 9)
    processor = SimpleNamespace(
        tokenizer=tokenizer,
        apply_chat_template=lambda conversation, **_: "<s>user: <A> \x00PROMPT\x00 assistant:")
    chat = ChatText(processor, "cpu", audio_token="<A>")
    assert (chat.pad_id, chat.audio_id, chat.prefix) == (expected, 9, "<s>user: ")
