"""The package and the benchmark scripts import without cycles, and nothing edits sys.path.

The graph has an edge for every import statement, function-level ones included (a deferred
import that closes a loop is still a loop): ``from a import b`` points at ``a.b`` where that is a
module, else at ``a``. A package's ``__init__`` being run by importing one of its submodules is
not counted (every submodule would otherwise close a loop with its package).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def cycles(package: str) -> list[list[str]]:
    table = modules(package)
    graph = {name: imports(name, path, set(table)) for name, path in table.items()}
    found, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


@pytest.mark.parametrize("package", ["harness", "bench"])
def test_no_import_cycles(package):
    assert cycles(package) == []


@pytest.mark.parametrize("package", ["harness", "bench", "fixtures", "tests", "evals"])
def test_nothing_edits_sys_path(package):
    edits = [str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py")
             if "sys.path" in p.read_text() and p.name != "test_imports.py"]
    assert edits == []


def test_the_report_and_cache_commands_need_no_test_extra():
    """``python -m harness.report`` (build, compare, merge) and ``python -m harness.cache`` run
    where only the package is installed: neither pytest nor syrupy (the test extra) is imported
    (the gate's inputs once came from the snapshot module, which needs both)."""
    import subprocess
    import sys

    code = ("import sys, harness.report.build, harness.report.compare, "
            "harness.report.merge, harness.runner.gating, harness.cache.__main__\n"
            "print([m for m in ('pytest', 'syrupy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_cell_and_its_report_import_no_scipy_stats():
    """A cell's metrics, its record and the report take nothing from :mod:`scipy.stats`, whose
    import (0.6 s on this project's machine) every xdist worker and every run paid for Wilson's
    interval alone (:func:`harness.metrics.proportion_ci`)."""
    import subprocess
    import sys

    code = ("import sys, tempfile, harness\n"
            "from harness.record import write_record\n"
            "from harness.report.build import build_report\n"
            "record = harness.evaluate('uniform', 'iemocap', 'base')\n"
            "assert record.metrics.scores['acc'].ci95[0] > 0\n"
            "with tempfile.TemporaryDirectory() as run:\n"
            "    write_record(record, run)\n"
            "    build_report(run)\n"
            "print([m for m in sys.modules if m.startswith('scipy.stats')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
