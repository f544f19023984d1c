"""How long collecting the full grid takes (target <= 3 s): ``python bench/collect_grid.py``."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

start = time.perf_counter()
out = subprocess.run([sys.executable, "-m", "pytest", "evals", "--collect-only", "-q",
                      "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=ROOT)
elapsed = time.perf_counter() - start
count = next((line for line in out.stdout.splitlines() if "collected" in line), out.stdout[-200:])
print(f"collect: {count.strip()} in {elapsed:.2f} s wall, interpreter start included "
      f"(target <= 3 s)")
