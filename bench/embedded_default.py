"""Wall time of the README's main command on the embedded default, from a cold cache.

    python bench/embedded_default.py     # target: <= 60 s on the 2-core machine
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

with tempfile.TemporaryDirectory() as tmp:
    command = [sys.executable, "-m", "pytest", "evals", "-n", "4", "-k", "iemocap", "-q",
               "-p", "no:cacheprovider", "--cache-dir", f"{tmp}/cache", "--report-dir", f"{tmp}/reports"]
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
summary = [line for line in out.stdout.splitlines() if "passed" in line or "failed" in line]
print(f"pytest evals -n 4 -k iemocap (cold cache): {elapsed:.1f} s wall, exit {out.returncode}; "
      f"{summary[-1].strip() if summary else out.stdout[-300:]} (target <= 60 s)")
