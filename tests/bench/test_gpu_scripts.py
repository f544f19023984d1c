"""The GPU benchmark scripts run end to end on a tiny config on the CPU.

Device time is scarce (minutes per session): a script that breaks on its CPU-side code must
break here, not on the lent GPU.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", f"bench.{script}", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_throughput_benchmark_prints_every_figure():
    """Every figure, and every check ``--checks-only`` runs (graph against eager, per kernel,
    then with compiled blocks): that mode only stops after them."""
    out = run("gpu_throughput", "--tiny")
    for line in ("numerics: harness prefill vs padded reference",
                 "graph vs eager static step, greedy (matmul attention): static vs graph: 16/16 identical",
                 "graph vs eager static step, beam-5 (matmul attention): static vs graph: 80/80 identical",
                 "first decode step, greedy, 8 clips (matmul attention): graph vs eager 0.00e+00 "
                 "(same best token 8/8)",
                 "decode static (matmul attention): beam-5 batch", "decode for the rates below",
                 "greedy   baseline", "beam-5   baseline", "readout stages (eager blocks): batch",
                 "readout  baseline", "compiled blocks: compilation and its check",
                 "attention, compiled blocks): beam-5 batch",
                 "readout stages (compiled blocks (the default on a GPU)): batch",
                 "| compiled blocks (the default on a GPU); tiny config",
                 # the kernel timed fastest (matmul or auto), with compiled blocks
                 "attention, compiled blocks): graph vs eager 0.00e+00",
                 "attention, compiled blocks): static vs graph: 80/80 identical",
                 "against the float32 reference"):
        assert line in out, out
    assert "failed" not in out, out


def test_decode_profile_prints_a_table_per_variant():
    out = run("profile_decode", "--tiny", "--batch", "2", "--steps", "3", "--rows", "3")
    assert [line.split(",")[0] for line in out.splitlines() if line.startswith("===")] == [
        "=== eager", "=== static:auto", "=== static:math", "=== static:matmul"]


def test_the_grid_benchmark_runs_the_plan_then_every_strategy_through_evaluate(tmp_path):
    """``--plan`` as ``pytest evals --plan on`` runs (the cells then read the cache; without
    it each cell computes its own: the same loop)."""
    out = run("grid_gpu", "--tiny", "--plan", "--work", str(tmp_path))
    lines = out.splitlines()
    assert lines[0].startswith("wrote 12 clips of 6 s under "), out  # the first run writes them
    lines = lines[1:]
    assert " s (its compiled parts' compilation and check included), warmed up on 4 clips in " \
        in lines[0], out  # a model's load, compilation included, timed apart from the grid
    assert lines[1].startswith("plan: ") and "seconds per strategy: base" in lines[1], out
    assert "left out" not in lines[1], out
    rows = [line.split()[0] for line in lines[3:11]]
    assert rows == ["base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n"], out
    assert "LM prefill over the whole grid:" in out and "(the plan's included)" in out, out
    assert "batches halved after running out of memory: 0 " in out, out
    assert "clips' audio taken from those heard before: " in out, out
    assert "projected: the eight strategies over 24,770 utterances in" in out, out
    assert len(list((tmp_path / "run" / "cells").glob("*.items.jsonl"))) == 8
    assert _decode_steps(out) > 0


def _decode_steps(out: str) -> float:
    line = next(line for line in out.splitlines() if line.startswith("decode steps over"))
    return float(line.split(": ")[1].split()[0])


def test_the_grid_decoded_together_takes_fewer_steps_of_more_sequences(tmp_path):
    """The plan's base-prompt decodings in one loop: fewer decode steps an item (each reads the
    weights once) with more sequences each; no backend rate asked (``--direct 0``)."""
    apart = run("grid_gpu", "--tiny", "--plan", "--direct", "0", "--work", str(tmp_path))
    together = run("grid_gpu", "--tiny", "--plan", "--together", "--direct", "0",
                   "--work", str(tmp_path))
    assert "in one loop" in together and "in one loop" not in apart
    assert _decode_steps(together) < 0.7 * _decode_steps(apart), (apart, together)
    assert " nan " in together  # the backend's own rates were not measured


def test_the_grid_a_b_of_decoding_together_times_the_plan_both_ways(tmp_path):
    out = run("grid_gpu", "--tiny", "--ab-together", "--work", str(tmp_path))
    steps = [float(line.split()[2]) for line in out.splitlines()
             if line.startswith("  decode steps ")]
    assert len(steps) == 2 and steps[1] < 0.7 * steps[0], out
    assert out.count("plan: ") == 4, out  # a warm-up and a timed plan of each
    assert "together / apart: " in out and "strategy " not in out, out  # no cells


def test_the_other_models_benchmark_prints_both_rates_per_decoding():
    out = run("fast_path_models", "--tiny")
    for name in ("audio-flamingo-3", "qwen2.5-omni-thinker", "ultravox-v0.4"):
        for label in ("greedy ", "beam-5 "):
            assert f"{name} {label} plain one at a time" in out, out
    assert "failed" not in out, out


def test_the_other_models_benchmark_times_only_generations_that_did_the_work():
    """A request that failed returns at once: timed, it would make its path look fast."""
    from bench.fast_path_models import generated
    from bench.workload import BEAM, GREEDY
    from harness.models.api import Candidate, Generation

    done = Generation((Candidate("x", 40, -1.0),))
    generated([done], GREEDY)
    for wrong, says in ((Generation((), error="CUDA error: device-side assert"), "request failed"),
                        (Generation((Candidate("x", 3, -1.0),)), r"\[3\] tokens generated"),
                        (done, r"\[40\] tokens generated, not 5 of 40")):
        with pytest.raises(RuntimeError, match=says):
            generated([wrong], BEAM if "5 of" in says else GREEDY)
