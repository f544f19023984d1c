"""The benchmark grid: typed, frozen configuration expanded into one cell per model × dataset × strategy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.models.registry import Kind, model_entry
from harness.strategies import StrategyConfig, strategy_names


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
    def kind(self) -> Kind:
        """``chance``, ``api`` or ``local``, from the model registry (marks follow from it)."""
        return model_entry(self.model).kind

    @property
    def needs_gpu(self) -> bool:
        """A full-size local model (the registry says so): its cells are marked gpu and slow."""
        return model_entry(self.model).gpu


@dataclass(frozen=True)
class GridConfig:
    """What the grid covers.

    Attributes:
        models: Registry names of the models (chance baselines included).
        datasets: Corpus names.
        strategies: Strategy names (default: the registry's reference set); chance baselines get
            only the registry's chance cell (``base``).
        verifier: The model that scores candidates for ``alm-v``/``w-alm-v``.
        thresholds: Per model (or ``"*"``) thresholds.
        dataset_options: Loader options per corpus, e.g. ``{"msp_podcast": {"split": "Test1"}}``
            (each cell records them with its N).
        limit: Items per corpus (a deterministic, entropy-stratified subsample); None for all.
        seed: The seed every decoding and bootstrap uses.
        entropy_bins: The ambiguity levels: ``"width"`` (equal-width) or ``"quantile"``.
        interval: How each bootstrap CI's level is taken: ``"expanded"`` (as wide as Student's
            t interval over few items) or ``"percentile"`` (the plain percentile interval,
            narrow on few items: :func:`harness.resampling.interval_level`).
        alpha: What W-BoN weighs beams by (:attr:`~harness.strategies.StrategyConfig.alpha`).
        invalid: How an answer that gave no distribution is scored: ``"left_out"`` or
            ``"uniform"`` (:attr:`~harness.strategies.StrategyConfig.invalid`).
        model_args: Per model, keyword arguments for :func:`~harness.models.get_model`, e.g.
            ``{"qwen2-audio-7b": {"dtype": "float16"}}``.
        strategy_args: :class:`~harness.strategies.StrategyConfig` fields for every cell, e.g.
            ``{"beams": 7, "prompts": "harness-v0"}``.
    """

    models: tuple[str, ...]
    datasets: tuple[str, ...] = ("iemocap", "msp_podcast", "crema_d")
    strategies: tuple[str, ...] = field(default_factory=lambda: strategy_names(reference=True))
    verifier: str = "gpt-4o"
    verifiers: Mapping[str, str] = field(default_factory=dict)  # per-model overrides
    thresholds: Mapping[str, Thresholds] = field(default_factory=dict)
    dataset_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    limit: int | None = None
    seed: int = 0
    entropy_bins: str = "width"  # or "quantile": equal-count ambiguity levels
    interval: str = "expanded"  # or "percentile": the bootstrap CIs' level
    alpha: str = "raw"  # what W-BoN weighs beams by: "raw", "mean" (per token) or "uniform"
    invalid: str = "left_out"  # or "uniform": an answer without a distribution as a uniform guess
    model_args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    strategy_args: Mapping[str, Any] = field(default_factory=dict)

    def strategy_config(self) -> StrategyConfig:
        """The strategies' configuration every cell runs with."""
        return StrategyConfig(**{"seed": self.seed, "alpha": self.alpha, "invalid": self.invalid,
                                 **self.strategy_args})

    def verifier_for(self, model: str) -> str:
        return self.verifiers.get(model, self.verifier)

    def cells(self) -> list[Cell]:
        """Every cell, models outermost (so one model's cells sit together)."""
        out = []
        for model in self.models:
            bounds = self.thresholds.get(model, self.thresholds.get("*", Thresholds()))
            chance = model_entry(model).kind == "chance"
            strategies = strategy_names(chance_cell=True) if chance else self.strategies
            for dataset in self.datasets:
                out += [Cell(model, dataset, s, bounds) for s in strategies]
        return out
