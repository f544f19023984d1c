"""A model whose next-token logits depend on the last token alone (a table), for the decode
loops' tests; import it after ``pytest.importorskip("torch")``."""

import numpy as np
import torch

from harness.models._decode import Prefilled

V, EOS, PAD = 6, 5, 0
rng = np.random.default_rng(0)
TABLE = torch.tensor(rng.normal(size=(V, V)) * 2.0)  # next-token logits given the last token
ENDING = TABLE.clone()  # a model that would end every answer at once
ENDING[:, EOS] = 50.0


class NullCache:
    def batch_repeat_interleave(self, n):
        pass

    def reorder_cache(self, index):
        pass


def start(clips=2, first=(1, 2), table=TABLE, cache=None):
    logits = table[list(first)[:clips]]
    return Prefilled(logits, cache or NullCache(), torch.ones(clips, 3, dtype=torch.long),
                     torch.full((clips,), 3))


def step(tokens, mask, positions, cache):
    assert mask.shape[1] == positions[0] + 1  # one more mask column per step, positions advance
    return TABLE[tokens]


class Model:
    """A step of ``table``'s model that counts its calls; ``nan_at``: the call whose first
    row's logits are NaN."""

    def __init__(self, table=TABLE, nan_at=None):
        self.table, self.nan_at, self.calls = table, nan_at, 0

    def __call__(self, tokens, mask, positions, cache):
        self.calls += 1
        logits = self.table[tokens].clone()
        if self.calls == self.nan_at:
            logits[0] = float("nan")
        return logits
