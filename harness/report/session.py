"""What one worker keeps for a whole grid run: loaded models and datasets, the cache, the gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.grid import CHANCE_MODELS, Cell, GridConfig
from harness.strategies import StrategyConfig, StrategyUnsupported

VERIFIED = ("alm-v", "w-alm-v")


class Session:
    """Loads each model and dataset at most once per worker; failures are remembered as reasons."""

    def __init__(self, run_dir: Path, cache_dir: Path, grid: GridConfig | None) -> None:
        self.run_dir, self.cache_dir = Path(run_dir), Path(cache_dir)
        self.grid = grid or GridConfig(models=())
        self._models: dict[str, object] = {}
        self._datasets: dict[str, object] = {}
        self._cache = None

    @property
    def cache(self):
        if self._cache is None:
            from harness.cache import GenerationCache

            self._cache = GenerationCache(self.cache_dir / "generations.sqlite")
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def model(self, name: str):
        """The model, or the reason it cannot run here (an exception instance)."""
        if name not in self._models:
            from harness.models import ModelUnavailable, get_model

            try:
                self._models[name] = get_model(name)
            except (ModelUnavailable, ImportError) as exc:
                self._models[name] = exc
        return self._models[name]

    def dataset(self, name: str):
        if name not in self._datasets:
            from harness.data import DataError, load_dataset
            from harness.report.cell import stratified_subsample

            try:
                self._datasets[name] = stratified_subsample(load_dataset(name), self.grid.limit)
            except DataError as exc:
                self._datasets[name] = exc
        return self._datasets[name]

    def run(self, cell: Cell, skip, sink=None) -> tuple[dict, Path]:
        """Run and write the cell; ``skip(reason)`` for whatever is unavailable here.

        ``sink(line)`` receives progress lines (the terminal, or a per-worker log file).
        """
        from harness.report.cell import run_cell, write_cell
        from harness.report.progress import Progress

        dataset = self.dataset(cell.dataset)
        if isinstance(dataset, Exception):
            from harness.data import CORPORA

            skip(f"{cell.dataset}: {dataset} (set {CORPORA[cell.dataset].env_var})")
        model = verifier = None
        if cell.model not in CHANCE_MODELS:
            model = self._available(cell.model, skip)
            if cell.strategy in VERIFIED:
                verifier = self._available(self.grid.verifier_for(cell.model), skip)
        config = StrategyConfig(seed=self.grid.seed)
        try:
            progress = Progress(cell.id, len(dataset), sink) if sink is not None else None
            record = run_cell(cell, dataset, model, verifier=verifier, cache=self.cache,
                              config=config, progress=progress)
        except StrategyUnsupported as exc:
            skip(str(exc))
        return record, write_cell(record, self.run_dir)

    def _available(self, name: str, skip):
        model = self.model(name)
        if isinstance(model, Exception):
            skip(str(model))
        return model

    def gate(self, record: dict, folder: Path, update: bool, tolerance: float) -> list[str]:
        """Save the baseline (``update``) or compare against it; messages for each regression."""
        from harness.report.gating import baseline_path, regressions, save_baseline

        if update:
            save_baseline(record, folder)
            return []
        path = baseline_path(folder, record["cell"])
        if not path.is_file():
            return []
        dataset = self.dataset(record["dataset"])
        votes = {item.id: np.asarray(item.votes) for item in dataset}
        return regressions(record, votes, path, tolerance, seed=self.grid.seed)
