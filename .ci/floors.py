"""The package's dependencies, its api extra and its test extra (less what would pull in torch),
one pip requirement a line, for CI's environments without torch.

    python3 .ci/floors.py           # the oldest releases allowed: numpy>=1.24 -> numpy==1.24.*
                                    # (the floor's newest patch), syrupy>=7.0.1 -> syrupy==7.0.1
    python3 .ci/floors.py --stated  # the test extra as pyproject.toml states it
"""

import re
import sys
import tomllib
from pathlib import Path

PULLS_IN_TORCH = ("fastapi", "uvicorn", "accelerate", "soxr")
FLOOR = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)>=(?P<version>[0-9.]+)(,.*)?$")
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_needs(pyproject: Path) -> list[str]:
    """The test extra's requirements as stated, less those that pull in torch."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return [r for r in project["optional-dependencies"]["test"] if not r.startswith(PULLS_IN_TORCH)]


def floors(pyproject: Path) -> list[str]:
    """Every dependency, the api extra (the SDKs: their tests run against local servers) and
    :func:`test_needs` pinned to its floor."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    api = project["optional-dependencies"].get("api", [])
    out = []
    for requirement in project["dependencies"] + api + test_needs(pyproject):
        match = FLOOR.match(requirement.replace(" ", ""))
        if match is None:
            raise SystemExit(f"no floor to pin in {requirement!r}")
        version = match["version"]
        out.append(f"{match['name']}=={version}" + (".*" if version.count(".") == 1 else ""))
    return out


if __name__ == "__main__":
    print("\n".join(test_needs(PYPROJECT) if sys.argv[1:] == ["--stated"] else floors(PYPROJECT)))
