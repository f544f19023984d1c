"""A model that answers at once, so that a benchmark times the harness's own work alone.

Its answers differ per item (the clip's request name seeds them, one of 1,009 answer sets) and
per candidate, as a real model's do, so that no parse or combine can be shared between
neighbouring items by accident; each answer set is written once, so that the model's own cost is
nil. It never looks at the audio, and counts what it was asked.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Sequence

import numpy as np

from harness.models.api import Candidate, Capabilities, Decoding, Generation, LabelScores, ModelInfo, Request


class InstantModel:
    """A :class:`~harness.models.ModelAPI` whose every call returns at once."""

    def __init__(self, labels: Sequence[str], name: str = "instant") -> None:
        self.labels = tuple(labels)
        self.info = ModelInfo(name, "bench", "float32", "cpu", Capabilities())
        self.requests = 0

    def generate(self, requests: Sequence[Request], decoding: Decoding) -> list[Generation]:
        self.requests += len(requests)
        return [self._answer(r, decoding) for r in requests]

    def label_logprobs(self, requests: Sequence[Request], labels: Sequence[str]
                       ) -> list[LabelScores]:
        self.requests += len(requests)
        return [LabelScores(-np.arange(1.0, len(labels) + 1) - self._seed(r) % 7) for r in requests]

    def _seed(self, request: Request) -> int:
        return zlib.crc32(f"{request.name}\n{request.prompt[-40:]}".encode())

    def _answer(self, request: Request, decoding: Decoding) -> Generation:
        return self._written(self._seed(request) % 1009, decoding.num_candidates,
                             decoding.max_new_tokens == 8)

    @functools.cache  # noqa: B019  (one model per benchmark)
    def _written(self, seed: int, candidates: int, verifier: bool) -> Generation:
        if verifier:  # the verifier's question
            return Generation((Candidate(f"Score: 0.{seed % 10}", 3, -1.0),))
        out = []
        for n in range(candidates):
            weights = [(seed >> (2 * k + n)) % 9 + 1 for k in range(len(self.labels))]
            total = sum(weights)
            body = ", ".join(f'"{label}": {w / total:.2f}' for label, w in zip(self.labels, weights))
            out.append(Candidate("{" + body + "}", 6 * len(self.labels), -2.0 - n - seed % 5 / 10))
        return Generation(tuple(out))


class WaitingModel(InstantModel):
    """:class:`InstantModel` that first waits ``seconds_per_request`` per request of each call
    with the interpreter's lock let go, as a process waits on its GPU: what the harness adds to a
    model of a given speed, and how much of its work the wait hides."""

    def __init__(self, labels: Sequence[str], seconds_per_request: float,
                 name: str = "waiting") -> None:
        super().__init__(labels, name)
        self.seconds_per_request = seconds_per_request
        self.waited = 0.0

    def generate(self, requests: Sequence[Request], decoding: Decoding) -> list[Generation]:
        wait = self.seconds_per_request * len(requests)
        time.sleep(wait)
        self.waited += wait
        return super().generate(requests, decoding)
