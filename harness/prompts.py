"""Prompt templates: base, chain-of-thought and verifier, per corpus.

The wording is the reference setup's, kept verbatim so results compare with published numbers;
only the background sentence and, for CREMA-D, "for the audio" change between corpora.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

PROMPT_KINDS = ("base", "cot", "verifier", "readout")


@dataclass(frozen=True)
class CorpusWording:
    """What differs between corpora in the prompts."""

    background: str
    target: str  # what the distribution is predicted "for"


WORDING = {
    "iemocap": CorpusWording("Two speakers are having a conversation.", "the target utterance"),
    "msp_podcast": CorpusWording("A speaker is talking in a podcast.", "the target utterance"),
    "crema_d": CorpusWording(
        "An actor reads a fixed sentence aloud; the emotion is in the delivery.", "the audio"
    ),
}

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


def _wording(corpus: str) -> CorpusWording:
    if corpus not in WORDING:
        raise ValueError(f"no prompt wording for corpus {corpus!r}; known: {sorted(WORDING)}")
    return WORDING[corpus]


def json_skeleton(labels: Sequence[str]) -> str:
    """``{"Neutral state":float, "Happiness":float, ...}`` for the corpus's classes."""
    return "{" + ", ".join(f'"{label}":float' for label in labels) + "}"


def base_prompt(corpus: str, transcript: str, labels: Sequence[str], cot: bool = False) -> str:
    """The base (or, with ``cot=True``, chain-of-thought) prompt for one utterance."""
    wording = _wording(corpus)
    options = "[" + ", ".join(f"'{label}'" for label in labels) + "]"
    parts = [
        f"Background: {wording.background}",
        f"Target Utterance: {transcript}",
        f"Task: Predict the probability distribution of emotions for {wording.target} from the "
        f"following options: {options}. Consider both the context and acoustic features.",
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


def cot_prompt(corpus: str, transcript: str, labels: Sequence[str]) -> str:
    """The chain-of-thought prompt: the base prompt with the listening instructions added."""
    return base_prompt(corpus, transcript, labels, cot=True)


def verifier_prompt(corpus: str, transcript: str, labels: Sequence[str], candidate: str) -> str:
    """The prompt a verifier ALM answers (with the same audio) to score one candidate 0–1."""
    return "\n".join(
        [
            f"Background: {VERIFIER_BACKGROUND}",
            f"User Prompt: {base_prompt(corpus, transcript, labels)}",
            f"Model Output: {candidate}",
            f"Task: {VERIFIER_TASK}",
            f"Scoring guide: {VERIFIER_GUIDE}",
        ]
    )


def readout_prompt(corpus: str, transcript: str, labels: Sequence[str]) -> str:
    """A one-label question for the ``readout`` strategy, which scores each label's likelihood."""
    wording = _wording(corpus)
    options = "[" + ", ".join(f"'{label}'" for label in labels) + "]"
    return "\n".join([
        f"Background: {wording.background}",
        f"Target Utterance: {transcript}",
        f"Task: Which of the following emotions best describes {wording.target}: {options}? "
        "Answer with the emotion only.",
    ])


def build_prompt(kind: str, corpus: str, transcript: str, labels: Sequence[str],
                 candidate: str = "") -> str:
    """Dispatch on ``kind`` (``"base"``, ``"cot"``, ``"verifier"`` or ``"readout"``)."""
    if kind == "base":
        return base_prompt(corpus, transcript, labels)
    if kind == "cot":
        return cot_prompt(corpus, transcript, labels)
    if kind == "verifier":
        return verifier_prompt(corpus, transcript, labels, candidate)
    if kind == "readout":
        return readout_prompt(corpus, transcript, labels)
    raise ValueError(f"unknown prompt kind {kind!r}; choose from {PROMPT_KINDS}")


def templates_hash() -> str:
    """A short hash of every template's wording, which reports record (changes on any edit)."""
    sample = [build_prompt(k, c, "<transcript>", ["<A>", "<B>"], "<candidate>")
              for k in PROMPT_KINDS for c in sorted(WORDING)]
    return hashlib.sha256("\n\n".join(sample).encode()).hexdigest()[:16]
