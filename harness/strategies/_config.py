"""The strategies' knobs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness._names import unknown_name
from harness._values import named_flag, whole_number

ALPHAS = ("raw", "mean", "uniform")
VERIFIER_TIES = ("first", "mean")  # how alm-v takes candidates sharing the top score
INVALID_READINGS = ("left_out", "uniform")  # how an answer that gave no distribution is scored


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
        unscored: What the verifier strategies do with a valid candidate the verifier gave no
            score: ``"keep"`` (the default: W-ALM-v weighs it as the lowest score given to the
            item's other candidates, uniformly when none was scored; ALM-v falls back to the top
            beam; each such item says so in its notes) or ``"drop"`` (it takes no part, and an
            item with no scored candidate is invalid).
        prompts: The prompt set (:mod:`harness.prompts`): ``"paper"`` (the default) or
            ``"harness-v0"``, or a user's registered set.
        alpha: What W-BoN weighs each beam by: ``"raw"`` (the cumulative log-likelihood, Eq. 3 as
            written: peaked weights), ``"mean"`` (per generated token, what HF's
            ``sequences_scores`` gives: near-uniform weights) or ``"uniform"``. It changes no
            generation, so the three share one cached beam run.
        verifier_ties: How ``alm-v`` takes candidates that share the verifier's top score:
            ``"first"`` (the default: the first in beam order, as an argmax does, so the likeliest
            beam) or ``"mean"`` (their distributions' mean, each weighed alike). It changes no
            generation and no verifier call, so the two share one cached run.
        invalid: How an item whose answer gave no distribution is scored: ``"left_out"`` (the
            default: it is left out of every mean and counted) or ``"uniform"`` (scored as a
            uniform guess, 1/K for each class, with the rule ``"uniform_guess"``). An item that
            failed (its clip, the model call, combining its candidates) is left out under both.
            It changes no generation, so the two share one cached run.
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
    alpha: str = "raw"
    unscored: str = "keep"
    prompts: str = "paper"
    verifier_ties: str = "first"
    invalid: str = "left_out"

    def __post_init__(self) -> None:
        # the command line's "False" is text: read as a flag, never as a truthy string
        object.__setattr__(self, "constrained", named_flag("constrained", self.constrained))
        whole_number("seed", self.seed, least=0)
        if self.unscored not in ("keep", "drop"):
            raise ValueError(f"unscored must be 'keep' or 'drop', not {self.unscored!r}")
        if self.verifier_ties not in VERIFIER_TIES:
            raise ValueError(f"verifier_ties must be one of {VERIFIER_TIES}, "
                             f"not {self.verifier_ties!r}")
        if self.invalid not in INVALID_READINGS:
            raise ValueError(f"invalid must be one of {INVALID_READINGS}, not {self.invalid!r}")
        if self.alpha not in ALPHAS:
            raise ValueError(f"alpha must be one of {ALPHAS}, not {self.alpha!r}")
        if self.verifier_weighting not in ("softmax", "linear"):
            raise ValueError(f"verifier_weighting must be 'softmax' or 'linear', "
                             f"not {self.verifier_weighting!r}")
        for name in ("beams", "verifier_beams", "samples", "max_new_tokens", "cot_max_new_tokens"):
            whole_number(name, getattr(self, name))
        for name in ("tau", "temperature"):
            value = getattr(self, name)
            if (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
                    or not _a_finite_float(value)):
                raise ValueError(f"{name} must be a finite number above 0, not {value!r}")


def as_config(config: StrategyConfig | Mapping[str, Any] | None) -> StrategyConfig:
    """``config`` as a :class:`StrategyConfig`: None is the defaults, a mapping names its fields
    (``{"beams": 3}``; a name that is no field is refused with the closest one)."""
    if config is None:
        return StrategyConfig()
    if isinstance(config, StrategyConfig):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a StrategyConfig or a mapping of its fields, "
                        f"not {type(config).__name__}")
    known = [f.name for f in dataclasses.fields(StrategyConfig)]
    for name in config:
        if name not in known:
            raise ValueError(unknown_name("strategy argument", name, known))
    return StrategyConfig(**config)


def _a_finite_float(value: int | float) -> bool:
    """Whether ``value`` is a finite float or an integer a float holds (not 10**400)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
