import pytest

from harness.data import load_dataset
from harness.parsing import parse_distribution
from harness.prompts import build_prompt, json_skeleton, templates_hash

IEMOCAP = ["Neutral state", "Happiness", "Anger", "Sadness"]


def test_base_prompt_iemocap_verbatim():
    prompt = build_prompt("base", "iemocap", "Excuse me.", IEMOCAP)
    assert prompt == (
        "Background: Two speakers are having a conversation.\n"
        "Target Utterance: Excuse me.\n"
        "Task: Predict the probability distribution of emotions for the target utterance from "
        "the following options: ['Neutral state', 'Happiness', 'Anger', 'Sadness']. Consider "
        "both the context and acoustic features.\n"
        "Output Constraints:\n"
        '1. Generate EXACTLY this JSON structure: {"Neutral state":float, "Happiness":float, '
        '"Anger":float, "Sadness":float} Before outputting, check if the format of your output '
        "is in accordance with the requirements I provided.\n"
        "2. Sum of probabilities must equal to 1.0.\n"
        "3. Do not include any explanations or text besides the dictionary."
    )


def test_cot_adds_the_instructions_verbatim_before_the_constraints():
    cot = build_prompt("cot", "iemocap", "Hi.", IEMOCAP)
    base = build_prompt("base", "iemocap", "Hi.", IEMOCAP)
    task_end = base.index("\nOutput Constraints:")
    assert cot == base[:task_end] + (
        "\nFirst, carefully listen to the tone, intonation, pauses, vocal energy, and other "
        "acoustic features. Second, examine the textual content, considering words, sentiment, "
        "and contextual cues. Identify all emotional cues, even subtle ones. For each emotion, "
        "evaluate if it is present. If multiple are present, estimate their relative strength "
        "and presence.") + base[task_end:]
    assert "First, carefully" not in build_prompt("base", "iemocap", "Hi.", IEMOCAP)


def test_crema_d_wording_and_class_order_per_corpus():
    crema = load_dataset("crema_d")
    item = crema[0]
    prompt = build_prompt("base", "crema_d", item.transcript, crema.labels)
    assert "emotions for the audio from the following options: ['Anger', 'Disgust', 'Fear', " \
           "'Happiness', 'Neutral', 'Sadness']" in prompt
    assert f"Target Utterance: {item.transcript}" in prompt
    msp = load_dataset("msp_podcast")
    assert "['Angry', 'Sad', 'Happy', 'Surprise', 'Fear', 'Disgust', 'Contempt', 'Neutral']" in \
        build_prompt("base", "msp_podcast", "", msp.labels)


def test_verifier_prompt_as_in_table_3():
    prompt = build_prompt("verifier", "iemocap", "Hi.", IEMOCAP, candidate='{"Anger": 1.0}')
    assert prompt.splitlines()[:2] == [
        "Background: You are evaluating a model's prediction for an emotion distribution task.",
        "User Prompt: Predict the probability distribution of emotions for the target utterance "
        "from the following options: ['Neutral state', 'Happiness', 'Anger', 'Sadness']. Consider "
        "both the context and acoustic features."]  # the task sentences only
    assert prompt.splitlines()[2:] == [
        'Model Output: {"Anger": 1.0}',
        "Task: Only scoring based on emotion content: how well does the distribution reflect the "
        "emotional content of the utterance and context?",
        "Scoring guide: 0.0\u20130.3: Clearly wrong or unrelated; 0.4\u20130.7: Partially "
        "reasonable or somewhat mismatched; 0.8\u20131.0: Good match to the expected emotional "
        "distribution. Reply ONLY with a number between 0.0 and 1.0."]  # en dashes, as in Table 3
    old = build_prompt("verifier", "iemocap", "Hi.", IEMOCAP, '{"Anger": 1.0}', prompts="harness-v0")
    assert "User Prompt: Background: Two speakers" in old


def test_prompt_sets_are_named_versioned_and_recorded():
    from harness.prompts import PromptSet, get_prompt_set, prompts_record, register_prompt_set

    paper = get_prompt_set("paper")
    assert paper.not_in_paper == ("msp_podcast", "crema_d")
    crema = build_prompt("base", "crema_d", "It's eleven o'clock", ["A"])
    assert "Background: An actor reads a fixed sentence aloud.\n" in crema  # no hint at the answer
    assert "the emotion is in the delivery" in build_prompt("base", "crema_d", "", ["A"],
                                                            prompts="harness-v0")
    record = prompts_record()
    assert (record["set"], record["version"]) == ("paper", 1)
    assert len(record["templates"]) == 12 and record != prompts_record("harness-v0")
    assert prompts_record("harness-v0")["version"] == 0
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in record["templates"].values())
    mine = register_prompt_set(PromptSet("test-mine", 3, {"iemocap": paper.wording["iemocap"]}))
    try:
        assert prompts_record("test-mine")["templates"].keys() == {
            "base/iemocap", "cot/iemocap", "verifier/iemocap", "readout/iemocap"}
        with pytest.raises(ValueError, match="no prompt wording for corpus 'crema_d'"):
            build_prompt("base", "crema_d", "", ["A"], prompts=mine)
    finally:
        from harness.prompts import PROMPT_SETS

        PROMPT_SETS.pop("test-mine")
    with pytest.raises(ValueError, match="unknown prompt set 'papr'"):
        get_prompt_set("papr")


def test_a_built_in_set_cannot_be_replaced_and_a_sets_fields_are_checked():
    from harness.prompts import PROMPT_SETS, PromptSet, get_prompt_set, register_prompt_set

    paper = get_prompt_set("paper")
    with pytest.raises(ValueError, match="'paper' is a built-in prompt set; give yours another name"):
        register_prompt_set(PromptSet("paper", 2, {"iemocap": paper.wording["iemocap"]}))
    assert get_prompt_set("paper") is paper and register_prompt_set(paper) is paper
    with pytest.raises(ValueError, match="verifier_sees must be 'task' or 'base', not 'tasks'"):
        PromptSet("mine", 1, paper.wording, verifier_sees="tasks")
    with pytest.raises(ValueError, match="name must be a non-empty text"):
        PromptSet(" ", 1, paper.wording)
    again = register_prompt_set(PromptSet("test-again", 1, paper.wording))
    try:  # one's own set registered twice (a notebook's cell run again) takes the later
        assert register_prompt_set(PromptSet("test-again", 2, paper.wording)) != again
    finally:
        PROMPT_SETS.pop("test-again")


def test_the_json_skeleton_itself_is_not_a_valid_answer():
    # a model that echoes the template has not answered
    assert not parse_distribution(json_skeleton(IEMOCAP), IEMOCAP).valid


def test_errors_and_hash():
    with pytest.raises(ValueError, match="ravdess"):
        build_prompt("base", "ravdess", "", IEMOCAP)
    with pytest.raises(ValueError, match="kind"):
        build_prompt("zero-shot", "iemocap", "", IEMOCAP)
    assert len(templates_hash()) == 16 and templates_hash() == templates_hash()


@pytest.mark.parametrize("prompts", ["paper", "harness-v0"])
def test_an_utterances_verifier_prompts_are_each_candidates_own(prompts):
    from harness.prompts import verifier_prompt, verifier_prompts

    candidates = ['{"Anger": 1.0}', "", "Model Output: twice\n"]
    assert verifier_prompts("iemocap", "Hi.", IEMOCAP, candidates, prompts) == [
        verifier_prompt("iemocap", "Hi.", IEMOCAP, c, prompts) for c in candidates]
    lines = verifier_prompts("iemocap", "Hi.", IEMOCAP, candidates[:1], prompts)[0].splitlines()
    assert [line.split(":")[0] for line in lines[-3:]] == ["Model Output", "Task", "Scoring guide"]
