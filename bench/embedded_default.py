"""Wall time of the README's main command on the embedded default, from a cold cache, beside the
same selection without ``-n`` (the variant it must not be slower than).

    python -m bench.embedded_default     # target: -n 4 <= 60 s on the 2-core machine, and <= -n 0
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(workers: str) -> tuple[float, int, str]:
    """Seconds, exit code and pytest's last summary line of one cold run."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pytest", "evals", "-n", workers, "-k", "iemocap", "-q",
                   "-p", "no:cacheprovider", "--cache-dir", f"{tmp}/cache", "--report-dir",
                   f"{tmp}/reports"]
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - start
    summary = [line for line in out.stdout.splitlines() if "passed" in line or "failed" in line]
    return elapsed, out.returncode, summary[-1].strip() if summary else out.stdout[-300:]


def main() -> None:
    from bench.machine_speed import speed_noted

    with speed_noted():
        _compare()


def _compare() -> None:
    """Both runs, and the verdict on the target."""
    wall = {}
    for workers in ("4", "0"):
        seconds, code, summary = timed(workers)
        wall[workers] = seconds
        print(f"pytest evals -n {workers} -k iemocap (cold cache): {seconds:.1f} s wall, exit {code}; "
              f"{summary}")
    slower = wall["4"] - wall["0"]
    print(f"target: -n 4 <= 60 s on 2 cores ({'met' if wall['4'] <= 60 else 'NOT met'}) and never "
          f"slower than -n 0 ({'met' if slower <= 0 else f'NOT met: {slower:.1f} s slower'})")


if __name__ == "__main__":
    main()
