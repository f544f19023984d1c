"""``bench.af2_nvidia_check``'s parts that need no NVIDIA code: what counts as a difference, the
weights it opens, and its comparison run on the adapter over the stand-in of NVIDIA's package."""

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models import Candidate, Generation  # noqa: E402


def test_answers_or_alphas_that_differ_are_reported():
    from bench.af2_nvidia_check import differences

    one = Generation((Candidate("a", 2, -1.0), Candidate("b", 2, -2.0)))
    assert differences("x", one, Generation(one.candidates), 1e-3) == []
    near = Generation((Candidate("a", 2, -1.0004), Candidate("b", 2, -2.0)))
    assert differences("x", one, near, 1e-3) == []
    far = Generation((Candidate("a", 2, -1.01), Candidate("b", 2, -2.0)))
    assert differences("x", one, far, 1e-3) == ["x: alpha differs by 1.00e-02"]
    swapped = Generation((one.candidates[1], one.candidates[0]))  # tied beams, either order
    assert differences("x", one, swapped, 1e-3) == []
    other = Generation((one.candidates[0], Candidate("c", 2, -2.0)))
    assert differences("x", one, other, 1e-3)[0] == "x: answers differ: ['a', 'b'] / ['a', 'c']"
    assert differences("x", one, Generation(error="boom"), 1e-3) == ["x: errors None / 'boom'"]


def test_the_gates_are_opened_and_a_tensor_under_two_names_saved_once():
    from bench.af2_nvidia_check import open_gates, unique_state

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_gate = torch.nn.Parameter(torch.zeros(1))
            self.to_q = torch.nn.Linear(4, 4, bias=False)
            self.norm = torch.nn.LayerNorm(4)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gated_cross_attn = Block()
            self.again = self.gated_cross_attn  # as NVIDIA's FlamingoLayer holds its block

    model = Model()
    open_gates(model, seed=0)
    state = unique_state(model)
    assert sorted(state) == ["gated_cross_attn.attn_gate", "gated_cross_attn.norm.bias",
                             "gated_cross_attn.norm.weight", "gated_cross_attn.to_q.weight"]
    assert state["gated_cross_attn.attn_gate"].tolist() == [0.5]
    assert state["gated_cross_attn.to_q.weight"].std() > 0.05  # drawn wide
    assert state["gated_cross_attn.norm.weight"].tolist() == [1.0] * 4  # norms left alone


def test_the_comparison_finds_the_batched_adapter_equal_on_the_stand_in(tmp_path, monkeypatch,
                                                                        capsys):
    from bench.af2_nvidia_check import clips_of_several_lengths, compare
    from harness.models import get_model
    from tests.models.af2_stand_in import FAKE, forget_nvidias_modules, stand_in_checkpoint

    monkeypatch.syspath_prepend(str(FAKE))
    try:
        backend = get_model("audio-flamingo-2", path=stand_in_checkpoint(tmp_path), device="cpu")
        requests, labels = clips_of_several_lengths(4)
        assert compare(backend, requests, labels, batch=4, tol=1e-4) == []
    finally:
        forget_nvidias_modules()
    out = capsys.readouterr().out
    assert "greedy   4 a batch:" in out and "label scores: largest difference" in out
    assert "cold samples: 4 of 4 clips' three samples their greedy answer" in out


def test_the_models_benchmark_times_batches_against_one_clip_at_a_time(monkeypatch, capsys):
    """``bench.fast_path_models --models af2``, its plumbing on the stand-in (NVIDIA's code is on
    no registry): both rates printed, nothing failed."""
    import argparse
    import re

    from bench import fast_path_models
    from tests.models.af2_stand_in import FAKE, forget_nvidias_modules

    monkeypatch.syspath_prepend(str(FAKE))
    try:
        fast_path_models.measure("af2", argparse.Namespace(tiny=True, n=4, n_beam=2, n_baseline=2),
                                 "cpu")
    finally:
        forget_nvidias_modules()
    out = capsys.readouterr().out
    assert "audio-flamingo-2: " in out and "batches of 8 against one clip at a time" in out, out
    for label, clips in (("greedy ", 4), ("beam-5 ", 2)):
        assert re.search(rf"audio-flamingo-2 {label} plain one at a time +[\d.]+ utt/s \| fast path "
                         rf"+[\d.]+ utt/s \({clips} clips\)", out), out
    assert "failed" not in out, out
