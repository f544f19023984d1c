"""What the API backends share: the cost estimate from the token counts the APIs report, and
the scrubbing of secrets from what they say, the notes on answers that came back empty."""

import base64

import pytest

from harness.models._api_common import Scrubber, served_name, silent_endings, usage_of
from harness.models.api import SERVED_BY_CHARS, Generation


def test_the_cost_prices_audio_and_text_apart_where_the_api_splits_them():
    split = usage_of(300, 20, "gpt-4o-audio-preview", audio_tokens=60)
    assert split["cost_usd"] == pytest.approx((240 * 2.5 + 60 * 40 + 20 * 10) / 1e6, rel=1e-12)
    whole = usage_of(300, 20, "gpt-4o-audio-preview")  # no split given: an upper bound
    assert whole["cost_usd"] == pytest.approx((300 * 40 + 20 * 10) / 1e6) and "audio_tokens" not in whole
    assert usage_of(300, 20, "m", {"m": (1.0, 2.0)})["cost_usd"] == pytest.approx(340 / 1e6)
    # an (input, output) pair prices text and audio input alike
    pair = usage_of(300, 20, "m", {"m": (1.0, 2.0)}, audio_tokens=60)
    assert pair["cost_usd"] == pytest.approx(340 / 1e6)
    assert usage_of(300, 20, "unpriced")["cost_usd"] is None
    dated = usage_of(300, 20, "gpt-4o-audio-preview-2024-12-17", audio_tokens=60)
    assert dated["cost_usd"] == split["cost_usd"]  # a dated snapshot priced as its family
    assert usage_of(300, 20, "gpt-4o-audio-previewer")["cost_usd"] is None
    thinking = usage_of(100, 10, "gemini-2.5-pro", audio_tokens=50, thinking_tokens=400)
    assert thinking["cost_usd"] == pytest.approx((100 * 1.25 + 410 * 10) / 1e6)


def test_the_scrubber_takes_out_a_secret_in_every_form_a_reply_or_an_error_can_hold_it():
    secret = "s3cr3t???>>>t0ken"  # its base64 holds "+" and "/", which the URL-safe alphabet changes
    scrub = Scrubber([secret, None, ""])
    for prefix in ("", "a", "ab"):  # the secret at each alignment within base64's 3-byte groups
        encoded = base64.b64encode(f"{prefix}{secret}".encode()).decode()
        for text in (encoded, encoded.replace("+", "-").replace("/", "_")):
            left = scrub(text).split("***")  # at most the few characters the prefix shares
            assert len(left) == 2 and len("".join(left).rstrip("=")) <= 4, (prefix, text, left)
        for suffix in ("x", "xy", "xyz"):  # and with more after it (a whole header, say)
            left = scrub(base64.b64encode(f"{prefix}{secret}{suffix}".encode()).decode())
            assert left.count("***") == 1, (prefix, suffix, left)
    assert scrub(f"said {secret} and {secret[::-1]}") == "said *** and ***"
    assert scrub("key sk-abcdef123456 and AIza" + "x" * 30) == "key *** and ***"
    eight = base64.b64encode(b"12345678").decode()  # eight characters: their base64 goes too
    assert "***" in Scrubber(["12345678"])(eight)
    assert Scrubber(["abcd"])("x abcd y") == "x *** y"  # four characters: taken out
    assert Scrubber(["abc"])("x abc y") == "x abc y"  # three: common words would go with them
    # one secret inside another (a password that holds a query value): the longer goes whole,
    # whatever order they come in, not the inner one leaving the outer one's ends
    for secrets in (["xx-inner-secret-yy", "inner-secret"], ["inner-secret", "xx-inner-secret-yy"]):
        assert Scrubber(secrets)("a xx-inner-secret-yy b inner-secret") == "a *** b ***"


def test_a_failing_call_is_its_items_error_scrubbed_and_cut_the_others_unaffected():
    from harness.models._api_common import run_bounded
    from harness.models.api import Candidate, Generation

    def call(request):
        if request == "bad":
            raise RuntimeError("token s3cr3t-value " + "x" * 2_000)
        return Generation(candidates=(Candidate(f"{request} s3cr3t-value", 3, -1.0),))

    out = run_bounded(call, ["a", "bad", "b"], 2, Scrubber(["s3cr3t-value"]))
    assert [g.candidates[0].text for g in (out[0], out[2])] == ["a ***", "b ***"]
    assert out[1].error.startswith("RuntimeError: token *** xxx") and len(out[1].error) == 500


def test_a_servers_url_is_taken_apart_so_that_no_record_holds_its_user_part_or_query():
    from harness.models._api_common import Endpoint, endpoint

    assert endpoint(None, "api.openai.com") == endpoint("", "api.openai.com") == Endpoint(
        None, "api.openai.com")
    proxy = endpoint("https://me:pa%40ss-word@host:8443/v1?key=abcdefgh&debug=1234567", "default")
    assert proxy.url == "https://host:8443/v1?key=abcdefgh&debug=1234567"  # the query goes along
    assert proxy.shown == "https://host:8443/v1" and proxy.auth == ("me", "pa@ss-word")
    # a query value of 8 characters or more is a secret, a shorter one ("1", "true") not; nor a
    # user name beside a password
    assert set(proxy.secrets) == {"pa%40ss-word", "pa@ss-word", "abcdefgh"}
    token = endpoint("https://TOKEN-1234567@host/v1", "default")
    assert token.secrets == ("TOKEN-1234567",) * 2 and token.auth == ("TOKEN-1234567", "")
    assert token.url == token.shown == "https://host/v1"
    local = endpoint("http://[::1]:8080/v1", "default")
    assert local.url == "http://[::1]:8080/v1" and local.auth is None and local.secrets == ()


def test_silent_endings_count_the_empty_answers_by_reason_and_leave_the_rest():
    class Reason:  # an SDK's enum: its value is the reason's name
        value = "SAFETY"

    endings = [("", Reason()), ("  \n", Reason()), ("{}", "SAFETY"), ("", "STOP"), ("", None),
               ("", "x" * 500)]
    notes = silent_endings(endings, normal="STOP")
    assert notes == ("2 of 6 candidate(s) came back with no text (finish reason SAFETY)",
                     "1 of 6 candidate(s) came back with no text (finish reason not given)",
                     f"1 of 6 candidate(s) came back with no text (finish reason {'x' * 80})")
    assert silent_endings([("{}", "length")], normal="stop") == ()


def test_a_generations_notes_are_scrubbed_with_its_text():
    scrub = Scrubber(["sk-secret-value-123"])
    out = scrub.generation(Generation(notes=("finish reason sk-secret-value-123",)))
    assert out.notes == ("finish reason ***",)
    echoed = scrub.generation(Generation(served_by="model-sk-secret-value-123"))  # a hostile server
    assert echoed.served_by == "model-***"


def test_the_snapshot_an_answer_names_is_text_cut_short_or_nothing():
    asked = "gpt-4o-audio-preview"
    assert served_name(" gpt-4o-audio-preview-2024-12-17\n", asked) == "gpt-4o-audio-preview-2024-12-17"
    assert served_name("m" * 10_000, asked) == "m" * SERVED_BY_CHARS
    for odd in (None, 5, ["gpt-4o"], {"name": "x"}, b"gpt-4o"):
        assert served_name(odd, asked) == ""
    assert served_name(asked, asked) == ""  # an echo of the name asked for says nothing more


def test_an_error_says_what_it_was_raised_from_where_its_own_words_do_not():
    from harness.models._api_common import _why

    def raised(outer, inner=None):
        try:
            try:
                raise inner or ValueError("x")
            except Exception as cause:
                raise outer from (cause if inner else None)
        except Exception as exc:
            return exc

    wrapped = raised(RuntimeError("Connection error."), OSError("connection refused"))
    assert _why(wrapped) == "RuntimeError: Connection error. (OSError: connection refused)"
    said = raised(RuntimeError("failed: connection refused"), OSError("connection refused"))
    assert _why(said) == "RuntimeError: failed: connection refused"
    assert _why(raised(RuntimeError("alone"))) == "RuntimeError: alone"  # no cause given
