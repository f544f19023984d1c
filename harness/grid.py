"""The benchmark grid: typed, frozen configuration expanded into one cell per model × dataset × strategy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CHANCE_MODELS = ("uniform", "label-prior")
API_MODELS = ("gpt-4o", "gemini-2.0-flash", "gemini-2.5-pro")


@dataclass(frozen=True)
class Thresholds:
    """Bounds a cell must meet (None: not checked). ``js_max`` etc. apply to the means."""

    valid_min: float | None = None
    js_max: float | None = None
    bc_min: float | None = None
    r2_min: float | None = None


@dataclass(frozen=True)
class Cell:
    """One parametrized case: ``<model>-<dataset>-<strategy>``."""

    model: str
    dataset: str
    strategy: str
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def id(self) -> str:
        return f"{self.model}-{self.dataset}-{self.strategy}"


    @property
    def kind(self) -> str:
        """``chance``, ``api`` or ``local`` (the marks and skip reasons follow from it)."""
        if self.model in CHANCE_MODELS:
            return "chance"
        if self.model in API_MODELS or self.model.startswith("openai-compatible:"):
            return "api"
        return "local"


@dataclass(frozen=True)
class GridConfig:
    """What the grid covers.

    Attributes:
        models: Registry names of the models (chance baselines included).
        datasets: Corpus names.
        strategies: Strategy ids; chance baselines get only ``base``.
        verifier: The model that scores candidates for ``alm-v``/``w-alm-v``.
        thresholds: Per model (or ``"*"``) thresholds.
        limit: Items per corpus (a deterministic, entropy-stratified subsample); None for all.
        seed: The seed every decoding and bootstrap uses.
    """

    models: tuple[str, ...]
    datasets: tuple[str, ...] = ("iemocap", "msp_podcast", "crema_d")
    strategies: tuple[str, ...] = ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v")
    verifier: str = "gpt-4o"
    verifiers: Mapping[str, str] = field(default_factory=dict)  # per-model overrides
    thresholds: Mapping[str, Thresholds] = field(default_factory=dict)
    limit: int | None = None
    seed: int = 0

    def verifier_for(self, model: str) -> str:
        return self.verifiers.get(model, self.verifier)

    def cells(self) -> list[Cell]:
        """Every cell, models outermost (so one model's cells sit together)."""
        out = []
        for model in self.models:
            bounds = self.thresholds.get(model, self.thresholds.get("*", Thresholds()))
            strategies = ("base",) if model in CHANCE_MODELS else self.strategies
            for dataset in self.datasets:
                out += [Cell(model, dataset, s, bounds) for s in strategies]
        return out


def file_stem(name: str) -> str:
    """A cell id or model name as a file name (``openai-compatible:org/model`` has ':' and '/')."""
    return name.replace(":", "_").replace("/", "_")
