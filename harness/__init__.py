"""Benchmark harness for audio-language models on ambiguous speech emotion recognition.

Importing :mod:`harness` is cheap: it pulls in no deep-learning framework and no API SDK.
The public API lives in the subpackages (:mod:`harness.data`, :mod:`harness.parsing`,
:mod:`harness.aggregate`, :mod:`harness.metrics`, :mod:`harness.prompts`, :mod:`harness.report`).
"""

from harness._embedded import embedded_path

__version__ = "0.1.0"  # the one definition (pyproject reads it)

__all__ = ["__version__", "embedded_path"]
