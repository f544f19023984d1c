"""The model interface's records: a request keeps its clip and its other fields when its prompt
or samples change."""

import dataclasses
from pathlib import Path

import numpy as np

from harness.models.api import NOT_LOADED, Request


def test_a_request_with_another_prompt_or_its_samples_keeps_every_other_field():
    unread = Request(NOT_LOADED, "first", "item-1", "file-xxh3-128:ab@16000Hz", Path("a.wav"))
    samples = np.ones(160, np.float32)
    for changed, field, value in ((unread.with_prompt("second"), "prompt", "second"),
                                  (unread.with_samples(samples), "audio", samples)):
        for f in dataclasses.fields(Request):  # a field added to Request must be carried too
            expected = value if f.name == field else getattr(unread, f.name)
            assert getattr(changed, f.name) is expected, f.name
    assert unread.with_samples(samples).loaded and not unread.with_prompt("x").loaded
