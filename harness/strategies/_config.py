"""The strategies' knobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StrategyConfig:
    """Knobs of the strategies; the defaults are the reference setup's.

    Attributes:
        beams: B for ``bon``/``w-bon``.
        verifier_beams: B for ``alm-v``/``w-alm-v``.
        tau: The Dirichlet mixture's temperature.
        verifier_weighting: ``"softmax"`` (Eq. 3) or ``"linear"`` for ``w-alm-v``.
        samples: N for ``sample-n``, at ``temperature``.
        max_new_tokens: The answer budget (``cot_max_new_tokens`` for chain-of-thought).
        constrained: Decode within the JSON answer template (every answer parses).
        seed: The seed of every decoding.
    """

    beams: int = 5
    verifier_beams: int = 3
    tau: float = 1.0
    verifier_weighting: str = "softmax"
    samples: int = 5
    temperature: float = 0.7
    max_new_tokens: int = 96
    cot_max_new_tokens: int = 384
    constrained: bool = False
    seed: int = 0
