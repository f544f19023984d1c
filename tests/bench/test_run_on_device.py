"""bench/run_on_device.sh's ``open`` mode, the one device call for every figure still open, runs
its parts in order with their limits and folders, and gives the last part what is left.

The device's programs are stand-ins here (``python3`` and ``nvidia-smi`` on ``PATH`` write down
how they were called): what is checked is the script's own sequencing, which a lent machine's
minutes must not be spent finding wrong.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "run_on_device.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and coreutils' timeout")

STAND_IN = """#!/bin/sh
echo "python3 $* | GRID_LIMIT=${GRID_LIMIT:-} MODELS_LIMIT=${MODELS_LIMIT:-} OUT=${OUT:-}" >> "$CALLS"
echo "ran: $*"
case "$*" in *"--models af3"*) exit "${AF3_EXIT:-0}" ;; esac
"""


def run_open(tmp_path: Path, limit: int, af2_code: bool, af3_exit: int = 0) -> tuple[list[str], str]:
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    for name, text in (("python3", STAND_IN), ("nvidia-smi", "#!/bin/sh\necho 'Stand-in GPU'\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    if af2_code:
        (work / ".af2-code" / "inference_HF_pretrained" / "src").mkdir(parents=True)
    (work / ".whl").mkdir()
    (work / ".whl" / "stand_in-0-py3-none-any.whl").write_bytes(b"")
    calls = tmp_path / "calls.txt"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", OUT=str(tmp_path / "out"),
               OPEN_LIMIT=str(limit), CALLS=str(calls), AF3_EXIT=str(af3_exit))
    done = subprocess.run(["bash", str(SCRIPT), "open"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == af3_exit, done.stderr
    lines = calls.read_text().splitlines()
    # the wheels go in once, by the outer run; the parts find them on PYTHONPATH
    assert sum(line.startswith("python3 -m pip install") for line in lines) == 1
    return [line for line in lines if line.startswith("python3 -m bench.")], done.stdout


def test_every_part_runs_in_order_with_its_limit_and_folder(tmp_path):
    benches, stdout = run_open(tmp_path, limit=548, af2_code=True)
    out = tmp_path / "out"
    assert [b.split(" | ")[0] for b in benches] == [
        "python3 -m bench.grid_gpu --ab-together --items 800",
        "python3 -m bench.fast_path_models --models af3",
        "python3 -m bench.fast_path_models --models af2 --n 64 --n-beam 32",
    ]
    assert f"GRID_LIMIT=360 MODELS_LIMIT= OUT={out}/grid" in benches[0]
    assert f"MODELS_LIMIT=110 OUT={out}/af3" in benches[1]
    af2_limit = int(benches[2].split("MODELS_LIMIT=")[1].split()[0])
    assert 540 <= af2_limit <= 548  # the stand-ins take no time: nearly all of OPEN_LIMIT is left
    assert (out / "grid" / "grid.log").read_text().startswith("ran: -m bench.grid_gpu")
    assert (out / "af2" / "models.log").read_text().startswith("ran: -m bench.fast_path_models --models af2")
    assert "every part ended after" in stdout


def test_audio_flamingo_2_waits_for_its_code_and_for_time(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    benches, stdout = run_open(tmp_path / "a", limit=548, af2_code=False)
    assert len(benches) == 2 and "NVIDIA's code was not carried" in stdout
    benches, stdout = run_open(tmp_path / "b", limit=60, af2_code=True)
    assert len(benches) == 2 and "s left of OPEN_LIMIT, 80 needed" in stdout


def test_a_failed_part_is_said_and_fails_the_call_after_the_others_ran(tmp_path):
    """Audio Flamingo 3's part stopped by its limit (124): the next part still runs, each
    part's status is printed, and the call exits with the failure's status."""
    benches, stdout = run_open(tmp_path, limit=548, af2_code=True, af3_exit=124)
    assert len(benches) == 3
    assert "part grid: exit 0" in stdout and "part af3: exit 124" in stdout
    assert "part af2: exit 0" in stdout
