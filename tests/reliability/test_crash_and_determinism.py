"""A run killed with SIGKILL mid-cell resumes without recomputing; two runs give one report."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the hf extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
CELL_SCRIPT = """
import json, sys
from harness.cache import GenerationCache
from harness.data import load_dataset
from harness import evaluate
cache = GenerationCache(sys.argv[1])
progress = lambda done: print(f"progress {done}", flush=True)
record = evaluate("tiny-qwen2-audio", load_dataset("iemocap"), "bon", cache=cache, progress=progress,
                  n_resamples=200)
print("hits", cache.hits, "misses", cache.misses, flush=True)
open(sys.argv[2], "w").write(json.dumps(record.to_json()))
"""


def run_script(cache: Path, out: Path, kill_after: int | None = None) -> list[str]:
    env = dict(os.environ, HARNESS_CACHE_CHUNK="4", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", CELL_SCRIPT, str(cache), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if kill_after is not None and line.startswith("progress") and int(line.split()[1]) >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=120)
    return lines


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("seconds", "gpu_seconds", "meta")}


def test_sigkill_mid_cell_then_rerun(tmp_path, record_property):
    killed = run_script(tmp_path / "cache.sqlite", tmp_path / "partial.json", kill_after=8)
    assert not (tmp_path / "partial.json").exists() and killed[-1].startswith("progress")
    resumed = run_script(tmp_path / "cache.sqlite", tmp_path / "resumed.json")
    hits = int(resumed[-1].split()[1])
    assert hits >= 8  # every chunk finished before the kill came from the cache
    run_script(tmp_path / "fresh.sqlite", tmp_path / "uninterrupted.json")
    resumed_record = json.loads((tmp_path / "resumed.json").read_text())
    fresh = json.loads((tmp_path / "uninterrupted.json").read_text())
    assert comparable(resumed_record) == comparable(fresh)
    record_property("reliability", f"crash and resume: SIGKILL after {killed[-1].split()[1]}/26 "
                                   f"items of a bon cell; rerun took {hits} from the cache, "
                                   f"computed {26 - hits}; record equal to an uninterrupted run's")


def evals_report(tmp: Path) -> dict:
    command = [sys.executable, "-m", "pytest", "evals", "-q", "-p", "no:cacheprovider",
               "-k", "iemocap and (tiny or uniform or label-prior)",
               "--cache-dir", str(tmp / "cache"), "--report-dir", str(tmp / "reports")]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:]
    [run] = (tmp / "reports").iterdir()
    report = json.loads((run / "report.json").read_text())
    report.pop("run")
    for cell in report["cells"]:
        for key in ("seconds", "gpu_seconds"):
            cell.pop(key)
        cell["meta"].pop("finished")
    return report


def test_two_cpu_runs_of_the_embedded_default_give_the_same_report(tmp_path, record_property):
    first, second = evals_report(tmp_path / "a"), evals_report(tmp_path / "b")
    assert first == second
    record_property("reliability", f"determinism: two CPU runs of the embedded default, "
                                   f"{len(first['cells'])} cells, identical report.json apart from "
                                   "timing and timestamps")
