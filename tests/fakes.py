"""A scripted ModelAPI for strategy and cache tests: answers come from a function of the prompt."""

from __future__ import annotations

import numpy as np

from harness.models.api import Candidate, Capabilities, Generation, LabelScores, ModelInfo


class ScriptedModel:
    """Returns ``script(request, decoding)`` -> list of (text, logprob) for each request."""

    def __init__(self, script, name="scripted", capabilities=None, label_scores=None):
        self.script = script
        self.info = ModelInfo(name, "test", capabilities=capabilities or Capabilities())
        self.calls = 0
        self.requests = 0
        self.label_scores = label_scores

    def generate(self, requests, decoding):
        self.calls += 1
        self.requests += len(requests)
        return [Generation(tuple(Candidate(t, len(t.split()), lp) for t, lp in
                                 self.script(r, decoding))) for r in requests]

    def label_logprobs(self, requests, labels):
        self.calls += 1
        self.requests += len(requests)
        rows = [self.label_scores(r) for r in requests]
        return [row if isinstance(row, LabelScores) else LabelScores(np.asarray(row, dtype=float))
                for row in rows]


class OwnClipModel(ScriptedModel):
    """A :class:`ScriptedModel` that first checks each request's samples are its own clip's
    (read from ``request.source``): a model's answers depend on the audio, a script's do not."""

    def generate(self, requests, decoding):
        self._check(requests)
        return super().generate(requests, decoding)

    def label_logprobs(self, requests, labels):
        self._check(requests)
        return super().label_logprobs(requests, labels)

    def _check(self, requests):
        from harness.data.audio import read_audio

        for request in requests:
            own = read_audio(request.source)[0]
            assert np.array_equal(request.audio, own), f"{request.item_id}: another clip's audio"
