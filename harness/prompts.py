"""Prompt templates: base, chain-of-thought, verifier and readout, per corpus, in named sets.

A :class:`PromptSet` holds what differs between corpora (the background sentence, what the
distribution is predicted "for") and how the verifier is shown the task. The default set,
``paper``, is the paper's wording verbatim (Tables 1-3) where the paper prints it: IEMOCAP's
background, CREMA-D's one change ("for the audio"), and the verifier's user prompt as the task
sentences alone. The paper prints no background for MSP-Podcast or CREMA-D: ``paper`` gives each a
neutral sentence that states the setting without hinting at the answer, listed in
``not_in_paper``. ``harness-v0`` is the wording the harness used before (its CREMA-D background
said the emotion is in the delivery; its verifier saw the whole base prompt). Every cell records
the set's name, version and a hash of each rendered template; :func:`register_prompt_set` adds a
user's own set, recorded the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PROMPT_KINDS = ("base", "cot", "verifier", "readout")


@dataclass(frozen=True)
class CorpusWording:
    """What differs between corpora in the prompts."""

    background: str
    target: str  # what the distribution is predicted "for"


@dataclass(frozen=True)
class PromptSet:
    """A named, versioned wording of every prompt.

    Attributes:
        wording: Per corpus, the background and what the distribution is predicted for.
        verifier_sees: ``"task"``: the verifier's user prompt is the base prompt's task
            sentences (the paper's Table 3); ``"base"``: the whole base prompt.
        not_in_paper: Corpora whose wording the paper does not print (chosen here, neutral).
    """

    name: str
    version: int
    wording: Mapping[str, CorpusWording]
    verifier_sees: str = "task"
    not_in_paper: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a prompt set's name must be a non-empty text, not {self.name!r}")
        if self.verifier_sees not in ("task", "base"):  # any other text read as "base"
            raise ValueError(f"prompt set {self.name!r}: verifier_sees must be 'task' or 'base', "
                             f"not {self.verifier_sees!r}")


PROMPT_SETS: dict[str, PromptSet] = {}
BUILT_IN_SETS = ("paper", "harness-v0")


def register_prompt_set(prompt_set: PromptSet) -> PromptSet:
    """Make ``prompt_set`` selectable by its name (``StrategyConfig(prompts=name)``); a set of
    one's own may be registered again (a notebook's cell run twice), a built-in one is kept.

    Raises:
        ValueError: the name is a built-in set's (``paper``, ``harness-v0``), whose records
            and snapshots say which words they were made with.
    """
    name = prompt_set.name
    if name in BUILT_IN_SETS and name in PROMPT_SETS and PROMPT_SETS[name] != prompt_set:
        raise ValueError(f"{name!r} is a built-in prompt set; give yours another name")
    PROMPT_SETS[name] = prompt_set
    return prompt_set


def get_prompt_set(prompts: str | PromptSet = "paper") -> PromptSet:
    """The set named ``prompts`` (or ``prompts`` itself).

    Raises:
        ValueError: no set has that name.
    """
    if isinstance(prompts, PromptSet):
        return prompts
    if prompts not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {prompts!r}; choose from {sorted(PROMPT_SETS)}")
    return PROMPT_SETS[prompts]


PAPER = register_prompt_set(PromptSet("paper", 1, {
    "iemocap": CorpusWording("Two speakers are having a conversation.", "the target utterance"),
    # not printed in the paper: neutral sentences that state the setting, no hint at the answer
    "msp_podcast": CorpusWording("A speaker is talking in a podcast.", "the target utterance"),
    "crema_d": CorpusWording("An actor reads a fixed sentence aloud.", "the audio"),
}, verifier_sees="task", not_in_paper=("msp_podcast", "crema_d")))
register_prompt_set(PromptSet("harness-v0", 0, {
    **PAPER.wording,
    "crema_d": CorpusWording(
        "An actor reads a fixed sentence aloud; the emotion is in the delivery.", "the audio"),
}, verifier_sees="base", not_in_paper=("msp_podcast", "crema_d")))

COT_INSTRUCTIONS = (
    "First, carefully listen to the tone, intonation, pauses, vocal energy, and other acoustic "
    "features. Second, examine the textual content, considering words, sentiment, and contextual "
    "cues. Identify all emotional cues, even subtle ones. For each emotion, evaluate if it is "
    "present. If multiple are present, estimate their relative strength and presence."
)
VERIFIER_BACKGROUND = "You are evaluating a model's prediction for an emotion distribution task."
VERIFIER_TASK = (
    "Only scoring based on emotion content: how well does the distribution reflect the emotional "
    "content of the utterance and context?"
)
VERIFIER_GUIDE = (
    "0.0–0.3: Clearly wrong or unrelated; 0.4–0.7: Partially reasonable or somewhat mismatched; "
    "0.8–1.0: Good match to the expected emotional distribution. "
    "Reply ONLY with a number between 0.0 and 1.0."
)


ADDED_WORDING: dict[str, CorpusWording] = {}  # corpora of one's own, in every set


def add_wording(corpus: str, wording: CorpusWording) -> None:
    """Give a corpus that no prompt set words (one's own: :func:`harness.data.register_corpus`)
    its wording in every set; a set's own wording of a corpus comes first."""
    ADDED_WORDING[corpus] = wording


def corpus_wording(corpus: str, prompts: str | PromptSet = "paper") -> CorpusWording:
    """How the set ``prompts`` words ``corpus`` (a corpus of one's own: its added wording).

    Raises:
        ValueError: the set has no wording for the corpus, and none was added for it.
    """
    wording = get_prompt_set(prompts).wording
    if corpus in wording:
        return wording[corpus]
    if corpus in ADDED_WORDING:
        return ADDED_WORDING[corpus]
    raise ValueError(f"no prompt wording for corpus {corpus!r}; known: "
                     f"{sorted({*wording, *ADDED_WORDING})}")


def task_sentences(corpus: str, labels: Sequence[str], prompts: str | PromptSet = "paper") -> str:
    """The base prompt's task: what to predict, over which options."""
    options = "[" + ", ".join(f"'{label}'" for label in labels) + "]"
    return (f"Predict the probability distribution of emotions for "
            f"{corpus_wording(corpus, prompts).target} from the following options: {options}. "
            "Consider both the context and acoustic features.")


def json_skeleton(labels: Sequence[str]) -> str:
    """``{"Neutral state":float, "Happiness":float, ...}`` for the corpus's classes."""
    return "{" + ", ".join(f'"{label}":float' for label in labels) + "}"


def base_prompt(corpus: str, transcript: str, labels: Sequence[str], cot: bool = False,
                prompts: str | PromptSet = "paper") -> str:
    """The base (or, with ``cot=True``, chain-of-thought) prompt for one utterance."""
    wording = corpus_wording(corpus, prompts)
    parts = [
        f"Background: {wording.background}",
        f"Target Utterance: {transcript}",
        f"Task: {task_sentences(corpus, labels, prompts)}",
    ]
    if cot:
        parts.append(COT_INSTRUCTIONS)
    parts.append(
        "Output Constraints:\n"
        f"1. Generate EXACTLY this JSON structure: {json_skeleton(labels)} Before outputting, "
        "check if the format of your output is in accordance with the requirements I provided.\n"
        "2. Sum of probabilities must equal to 1.0.\n"
        "3. Do not include any explanations or text besides the dictionary."
    )
    return "\n".join(parts)


def cot_prompt(corpus: str, transcript: str, labels: Sequence[str],
               prompts: str | PromptSet = "paper") -> str:
    """The chain-of-thought prompt: the base prompt with the listening instructions added."""
    return base_prompt(corpus, transcript, labels, cot=True, prompts=prompts)


def verifier_prompt(corpus: str, transcript: str, labels: Sequence[str], candidate: str,
                    prompts: str | PromptSet = "paper") -> str:
    """The prompt a verifier ALM answers (with the same audio) to score one candidate 0–1: the
    paper's Table 3 (background, the user prompt, the model output, the task, the scoring
    guide); the user prompt is the task sentences under ``verifier_sees="task"``."""
    return verifier_prompts(corpus, transcript, labels, [candidate], prompts)[0]


def verifier_prompts(corpus: str, transcript: str, labels: Sequence[str],
                     candidates: Sequence[str], prompts: str | PromptSet = "paper") -> list[str]:
    """:func:`verifier_prompt` for each of one utterance's candidates (what they share built
    once)."""
    chosen = get_prompt_set(prompts)
    user = (task_sentences(corpus, labels, chosen) if chosen.verifier_sees == "task"
            else base_prompt(corpus, transcript, labels, prompts=chosen))
    head = f"Background: {VERIFIER_BACKGROUND}\nUser Prompt: {user}\nModel Output: "
    tail = f"\nTask: {VERIFIER_TASK}\nScoring guide: {VERIFIER_GUIDE}"
    return [head + candidate + tail for candidate in candidates]


def readout_prompt(corpus: str, transcript: str, labels: Sequence[str],
                   prompts: str | PromptSet = "paper") -> str:
    """A one-label question for the ``readout`` strategy, which scores each label's likelihood."""
    wording = corpus_wording(corpus, prompts)
    options = "[" + ", ".join(f"'{label}'" for label in labels) + "]"
    return "\n".join([
        f"Background: {wording.background}",
        f"Target Utterance: {transcript}",
        f"Task: Which of the following emotions best describes {wording.target}: {options}? "
        "Answer with the emotion only.",
    ])


def build_prompt(kind: str, corpus: str, transcript: str, labels: Sequence[str],
                 candidate: str = "", prompts: str | PromptSet = "paper") -> str:
    """Dispatch on ``kind`` (``"base"``, ``"cot"``, ``"verifier"`` or ``"readout"``)."""
    if kind == "base":
        return base_prompt(corpus, transcript, labels, prompts=prompts)
    if kind == "cot":
        return cot_prompt(corpus, transcript, labels, prompts)
    if kind == "verifier":
        return verifier_prompt(corpus, transcript, labels, candidate, prompts)
    if kind == "readout":
        return readout_prompt(corpus, transcript, labels, prompts)
    raise ValueError(f"unknown prompt kind {kind!r}; choose from {PROMPT_KINDS}")


def templates_hash(prompts: str | PromptSet = "paper") -> str:
    """A short hash of every template of the set (changes on any edit of its wording)."""
    return hashlib.sha256("".join(template_hashes(prompts).values()).encode()).hexdigest()[:16]


def template_hashes(prompts: str | PromptSet = "paper", corpus: str | None = None
                    ) -> dict[str, str]:
    """``{"<kind>/<corpus>": hash}`` of each template of the set, rendered with placeholders
    (and of ``corpus``'s, where the set does not word it but :func:`add_wording` did)."""
    chosen = get_prompt_set(prompts)
    return {f"{k}/{c}": hashlib.sha256(build_prompt(k, c, "<transcript>", ["<A>", "<B>"],
                                                    "<candidate>", chosen).encode()).hexdigest()[:16]
            for k in PROMPT_KINDS for c in _corpora(chosen, corpus)}


def _corpora(chosen: PromptSet, corpus: str | None) -> list[str]:
    added = [corpus] if corpus in ADDED_WORDING and corpus not in chosen.wording else []
    return sorted({*chosen.wording, *added})


def prompts_record(prompts: str | PromptSet = "paper", corpus: str | None = None
                   ) -> dict[str, object]:
    """What a cell on ``corpus`` records about its prompts: the set, its version, each
    template's hash; a corpus of one's own is listed as not in the paper."""
    chosen = get_prompt_set(prompts)
    not_in_paper = [*chosen.not_in_paper, *(c for c in _corpora(chosen, corpus)
                                            if c not in chosen.wording)]
    return {"set": chosen.name, "version": chosen.version, "not_in_paper": not_in_paper,
            "templates": template_hashes(chosen, corpus)}
