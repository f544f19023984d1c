"""numpy's BLAS, loaded before the plugin sets the thread variables, is held to the worker's
share of the cores all the same (threadpoolctl); a variable the user set is left as it is."""

import os
import subprocess
import sys

from harness.pytest_plugin.scheduling import THREAD_VARIABLES

SHARE_OF_FOUR_CORES = """
import sys
import numpy  # its BLAS loaded first, reading the environment as it was
from threadpoolctl import threadpool_info
from harness.pytest_plugin import scheduling
scheduling.usable_cores = lambda: 4
scheduling.share_cores(int(sys.argv[1]))
print(sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}))
"""


def blas_threads_after_sharing(workers: int, **user_set: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(**user_set)
    return subprocess.run([sys.executable, "-c", SHARE_OF_FOUR_CORES, str(workers)], env=env,
                          check=True,
                          capture_output=True, text=True).stdout.strip()


def test_numpy_blas_takes_the_workers_share():
    assert blas_threads_after_sharing(4) == "[1]"


def test_the_users_blas_variable_wins():
    """Four cores between two workers is two threads each, but the user asked OpenBLAS for one
    (on a machine of one core OpenBLAS would take one either way)."""
    assert blas_threads_after_sharing(2, OPENBLAS_NUM_THREADS="1") == "[1]"
    assert blas_threads_after_sharing(2, MKL_NUM_THREADS="1") == f"[{min(2, os.cpu_count() or 1)}]"
