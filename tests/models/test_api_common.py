"""What the API backends share: the cost estimate from the token counts the APIs report."""

import pytest

from harness.models._api_common import usage_of


def test_the_cost_prices_audio_and_text_apart_where_the_api_splits_them():
    split = usage_of(300, 20, "gpt-4o-audio-preview", audio_tokens=60)
    assert split["cost_usd"] == pytest.approx((240 * 2.5 + 60 * 40 + 20 * 10) / 1e6)
    whole = usage_of(300, 20, "gpt-4o-audio-preview")  # no split given: an upper bound
    assert whole["cost_usd"] == pytest.approx((300 * 40 + 20 * 10) / 1e6) and "audio_tokens" not in whole
    assert usage_of(300, 20, "m", {"m": (1.0, 2.0)})["cost_usd"] == pytest.approx(340 / 1e6)
    assert usage_of(300, 20, "unpriced")["cost_usd"] is None
    dated = usage_of(300, 20, "gpt-4o-audio-preview-2024-12-17", audio_tokens=60)
    assert dated["cost_usd"] == split["cost_usd"]  # a dated snapshot priced as its family
    assert usage_of(300, 20, "gpt-4o-audio-previewer")["cost_usd"] is None
    thinking = usage_of(100, 10, "gemini-2.5-pro", audio_tokens=50, thinking_tokens=400)
    assert thinking["cost_usd"] == pytest.approx((100 * 1.25 + 410 * 10) / 1e6)
