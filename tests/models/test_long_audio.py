"""Clips longer than a model's audio window: cut into pieces that cover the clip, noted by item
under ``truncate`` and ``chunk``, refused by item under ``error`` while the rest run in order."""

import numpy as np
import pytest

from harness.models._long_audio import (
    check_policy,
    chunks,
    long_audio_notes,
    piece_count,
    run_fitting,
)
from harness.models.api import Generation, Request

WINDOW = 16_000  # one second


def request(seconds, name):
    return Request(np.zeros(int(seconds * 16_000), np.float32), "p", name)


def test_the_policies_are_the_three_and_nothing_else():
    assert [check_policy(p) for p in ("truncate", "chunk", "error")] == ["truncate", "chunk", "error"]
    with pytest.raises(ValueError, match=r"^long_audio must be one of \('truncate', 'chunk', "
                                         r"'error'\), not 'drop'$"):
        check_policy("drop")
    with pytest.raises(ValueError, match="not 'drop'"):
        long_audio_notes([], WINDOW, "drop")


@pytest.mark.parametrize(("samples", "pieces"), [(0, 1), (1, 1), (WINDOW, 1), (WINDOW + 1, 2),
                                                 (3 * WINDOW, 3), (3 * WINDOW + 5, 4)])
def test_a_clip_is_cut_into_consecutive_pieces_of_at_most_the_window(samples, pieces):
    audio = np.arange(samples, dtype=np.float32)
    cut = chunks(audio, WINDOW)
    assert piece_count(samples, WINDOW) == pieces == len(cut)
    assert all(len(piece) <= WINDOW for piece in cut)
    assert np.array_equal(np.concatenate(cut), audio)


def test_a_clip_over_the_window_is_noted_by_item_and_under_error_not_at_all():
    requests = [request(1.0, "fits"), request(2.5, "long")]
    assert long_audio_notes(requests, WINDOW, "truncate") == {
        1: "long: 2.5 s clip truncated to the model's 1 s audio window"}
    assert long_audio_notes(requests, WINDOW, "chunk") == {
        1: "long: 2.5 s clip given to the model as 3 audios of at most 1 s"}
    assert long_audio_notes(requests, WINDOW, "error") == {}


def run(requests, policy, refused=None):
    """What run_fitting gives, and the requests it ran."""
    ran = []

    def run_all(fitting):
        ran.append([r.item_id for r in fitting])
        return [Generation(notes=(f"ran {r.item_id}",)) for r in fitting]

    out = run_fitting(requests, WINDOW, policy, run_all,
                      lambda r, reason: Generation(error=f"{r.item_id}: {reason}"), refused)
    return out, ran


def test_under_error_a_long_clip_is_refused_and_the_rest_run_in_order():
    requests = [request(0.5, "a"), request(2.0, "b"), request(1.0, "c")]
    out, ran = run(requests, "error")
    assert ran == [["a", "c"]]
    assert [g.error for g in out] == [
        None, "b: 2.0 s clip is longer than the model's 1 s audio window", None]
    assert [g.notes for g in out] == [("ran a",), (), ("ran c",)]


def test_a_clip_let_through_carries_its_note_after_the_backend_s_own():
    out, ran = run([request(2.0, "a"), request(0.5, "b")], "truncate")
    assert ran == [["a", "b"]] and out[0].notes == (
        "ran a", "a: 2.0 s clip truncated to the model's 1 s audio window")
    assert out[1].notes == ("ran b",)


def test_items_refused_already_are_refused_with_their_reason_and_none_left_runs_nothing():
    requests = [request(0.5, "a"), request(0.5, "b")]
    out, ran = run(requests, "chunk", refused={0: "prompt too long"})
    assert ran == [["b"]] and out[0].error == "a: prompt too long" and out[1].error is None
    out, ran = run(requests, "chunk", refused={0: "x", 1: "y"})
    assert ran == [] and [g.error for g in out] == ["a: x", "b: y"]


def test_seconds_are_samples_at_16_khz():
    clip = Request(np.zeros(37_600, np.float32), "p", "x")  # 2.35 s: shown 2.4, as 2.35 rounds
    assert long_audio_notes([clip], 24_000, "truncate") == {
        0: "x: 2.4 s clip truncated to the model's 2 s audio window"}
    out = run_fitting([clip], 24_000, "error", list, lambda r, reason: reason)
    assert out == ["2.4 s clip is longer than the model's 2 s audio window"]
