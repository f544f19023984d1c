"""The embedded default's files, shipped inside the package (``harness/embedded/``).

Read through :mod:`importlib.resources`, so an installed wheel finds them from any working
directory. The scripts that regenerate them live outside the package, in ``fixtures/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def embedded_path(*parts: str) -> Path:
    """The path of ``harness/embedded/<parts>`` as installed (a real folder on disk).

    Raises:
        FileNotFoundError: the package was installed without its data (or from a zip).
    """
    root = files("harness") / "embedded"
    if not isinstance(root, Path):  # a zipped install: the readers need real files
        raise FileNotFoundError(f"harness's embedded data is not on disk ({root}); "
                                "install the package from its wheel or sources")
    return root.joinpath(*parts)
