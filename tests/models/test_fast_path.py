"""The fast path's options on their own (no model, no torch): each refused value named, the
device's defaults filled in only where left open, and what reaches a cache key."""

import dataclasses

import pytest

from harness.models.fast_path import (
    ATTENTION_KERNELS,
    DECODE_MODES,
    LONG_AUDIO,
    MAX_SAMPLES,
    Architecture,
    FastPathOptions,
)


def test_the_defaults_leave_the_decode_and_compiling_to_the_device():
    options = FastPathOptions()
    assert dataclasses.asdict(options) == {
        "decode": None, "attention": "matmul", "compile_blocks": None, "long_audio": "truncate",
        "batch_size": None, "share_prompts": True, "heard_clips_mib": None,
        "decode_together": False}
    assert options.resolved(on_gpu=True) == FastPathOptions(decode="graph", compile_blocks=True)
    assert options.resolved(on_gpu=False) == FastPathOptions(decode="eager", compile_blocks=False)
    chosen = FastPathOptions(decode="static", compile_blocks=False)
    assert chosen.resolved(on_gpu=True) == chosen and chosen.resolved(on_gpu=False) == chosen
    assert MAX_SAMPLES == 480_000  # Whisper's 30 s at 16 kHz


def test_flags_given_as_text_on_the_command_line_are_read_as_flags():
    """``--model-arg tiny-qwen2-audio.compile_blocks=False`` arrives as the text "False": it
    means off (a non-empty text would otherwise be true), and None still leaves it to the
    device."""
    options = FastPathOptions(compile_blocks="False", share_prompts="false")  # type: ignore[arg-type]
    assert options.compile_blocks is False and options.share_prompts is False
    assert FastPathOptions(decode_together="true").decode_together is True  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decode_together must be true or false"):
        FastPathOptions(decode_together="sometimes")  # type: ignore[arg-type]
    assert FastPathOptions(compile_blocks="true").compile_blocks is True  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compile_blocks"):
        FastPathOptions(compile_blocks="maybe")  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "allowed"), [("decode", DECODE_MODES),
                                               ("attention", ATTENTION_KERNELS),
                                               ("long_audio", LONG_AUDIO)])
def test_each_choice_takes_its_values_and_names_the_others(name, allowed):
    for value in allowed:
        extra = {"decode": "static"} if name == "attention" else {}
        assert getattr(FastPathOptions(**{name: value, **extra}), name) == value
    with pytest.raises(ValueError) as refused:
        FastPathOptions(**{name: "other"})
    assert str(refused.value) == f"{name} must be one of {allowed}, not 'other'"


def test_a_kernel_applies_only_to_the_static_step():
    with pytest.raises(ValueError, match=r"^attention='math' applies to the static decode step; "
                                         r"decode='eager' runs the model's own attention$"):
        FastPathOptions(decode="eager", attention="math")
    assert FastPathOptions(decode="eager").attention == "matmul"
    assert FastPathOptions(attention="math").attention == "math"  # the device decides the decode


@pytest.mark.parametrize("size", [0, -1, 2.0, True, "8"])
def test_a_batch_size_is_a_whole_number_of_at_least_one(size):
    with pytest.raises(ValueError, match=f"^batch_size must be a whole number of at least 1, not "
                                         f"{size!r}$".replace("(", r"\(").replace(")", r"\)")):
        FastPathOptions(batch_size=size)
    assert FastPathOptions(batch_size=1).batch_size == 1


@pytest.mark.parametrize("mib", [-1, 2.5, False, "64"])
def test_a_budget_for_heard_clips_is_a_whole_number_of_mib_zero_for_none(mib):
    with pytest.raises(ValueError, match="^heard_clips_mib must be a whole number of at least 0"):
        FastPathOptions(heard_clips_mib=mib)


def test_the_budget_for_heard_clips_is_512_mib_on_a_cpu_unless_given():
    class Cpu:
        type = "cpu"

    assert FastPathOptions().heard_budget(Cpu()) == 512 << 20
    assert FastPathOptions(heard_clips_mib=0).heard_budget(Cpu()) == 0
    assert FastPathOptions(heard_clips_mib=3).heard_budget(Cpu()) == 3 << 20


def test_what_can_change_an_answer_is_keyed_and_the_batch_and_sharing_are_not():
    options = FastPathOptions(decode="static", attention="cudnn", compile_blocks=True,
                              long_audio="chunk", batch_size=4, share_prompts=False,
                              heard_clips_mib=0, decode_together=True)
    assert options.output_options() == (("long_audio", "chunk"), ("decode", "static"),
                                        ("attention", "cudnn"), ("compile_blocks", "True"))
    assert FastPathOptions().output_options() == (("long_audio", "truncate"), ("decode", "None"),
                                                  ("attention", "matmul"),
                                                  ("compile_blocks", "None"))


def test_options_from_keywords_name_the_unknown_ones_and_the_known():
    assert FastPathOptions.from_kwargs(decode="static", batch_size=2) == FastPathOptions(
        decode="static", batch_size=2)
    with pytest.raises(ValueError) as refused:
        FastPathOptions.from_kwargs(cache_mode="cat", decode="static", zeta=1)
    assert str(refused.value) == (
        "unknown fast-path option(s) ['cache_mode', 'zeta']; known: ['attention', 'batch_size', "
        "'compile_blocks', 'decode', 'decode_together', 'heard_clips_mib', 'long_audio', 'share_prompts']")


def test_an_architecture_s_defaults_are_qwen2_audio_s_and_it_is_frozen():
    family = Architecture("Qwen2AudioForConditionalGeneration", "qwen2-audio", 1, "<|AUDIO|>")
    assert (family.windows_as_audios, family.encoder, family.whole_processor,
            family.end_of_turn) == (True, "whisper", True, "<|im_end|>")
    with pytest.raises(dataclasses.FrozenInstanceError):
        family.version = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        FastPathOptions().decode = "graph"  # type: ignore[misc]
