"""Benchmark harness for audio-language models on ambiguous speech emotion recognition.

The one way in is :func:`evaluate` (a model, a dataset and a strategy, by name or as objects, to
a :class:`CellRecord`)::

    import harness
    record = harness.evaluate("tiny-qwen2-audio", "iemocap", "w-bon", verifier=None)
    record.metrics.mean("js")

Importing :mod:`harness` is cheap: it pulls in no deep-learning framework and no API SDK; the
runner is imported at the first use of :func:`evaluate`. The rest of the public API lives in the
subpackages (:mod:`harness.data`, :mod:`harness.models`, :mod:`harness.strategies`,
:mod:`harness.parsing`, :mod:`harness.aggregate`, :mod:`harness.metrics`, :mod:`harness.prompts`,
:mod:`harness.runner`, :mod:`harness.report`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness._embedded import embedded_path
from harness._version import __version__

if TYPE_CHECKING:
    from harness.record import CellRecord
    from harness.runner.evaluate import evaluate

__all__ = ["CellRecord", "__version__", "embedded_path", "evaluate"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from harness.runner.evaluate import evaluate

        return evaluate
    if name == "CellRecord":
        from harness.record import CellRecord

        return CellRecord
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
