"""The oldest releases pyproject.toml allows of the package's dependencies and of its test extra
(less what would pull in torch), one pip requirement a line: ``numpy>=1.24`` -> ``numpy==1.24.*``
(the floor's newest patch), ``syrupy>=7.0.1`` -> ``syrupy==7.0.1``."""

import re
import tomllib
from pathlib import Path

PULLS_IN_TORCH = ("fastapi", "uvicorn", "accelerate", "soxr")
FLOOR = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)>=(?P<version>[0-9.]+)(,.*)?$")


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + [
        r for r in project["optional-dependencies"]["test"] if not r.startswith(PULLS_IN_TORCH)]
    out = []
    for requirement in wanted:
        match = FLOOR.match(requirement.replace(" ", ""))
        if match is None:
            raise SystemExit(f"no floor to pin in {requirement!r}")
        version = match["version"]
        out.append(f"{match['name']}=={version}" + (".*" if version.count(".") == 1 else ""))
    return out


if __name__ == "__main__":
    print("\n".join(floors(Path(__file__).resolve().parent.parent / "pyproject.toml")))
