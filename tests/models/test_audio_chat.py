"""A checkpoint's processor parts read alone: the tokenizer, the feature extractor and the chat
template, wherever the checkpoint keeps it."""

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
    template = (omni / "chat_template.jinja").read_text()
    (omni / "chat_template.jinja").unlink()
    config = json.loads((omni / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (omni / "tokenizer_config.json").write_text(json.dumps(config))
    (omni / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    assert render(AudioTextProcessor.from_pretrained(omni)) == expected
    (omni / "chat_template.json").unlink()
    with pytest.raises(ValueError, match="no chat template"):
        AudioTextProcessor.from_pretrained(omni)
