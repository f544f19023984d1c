"""The documentation tells the truth: every example in ``docs/`` runs and prints what it shows,
every link in the README and ``docs/`` reaches a file of the repository, and CI runs the
README's test command as written."""

import doctest
import re
import tempfile
from pathlib import Path

import pytest

from harness import prompts
from harness.models import registry
from harness.strategies import _strategy
from tests.helpers import corpora_kept

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
REFERENCE = [page for page in PAGES  # the pages that define, each with examples
             if page.name not in ("README.md", "measured.md", "fast-path.md", "reliability.md",
                                  "streaming.md", "ci.md")]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", REFERENCE, ids=lambda page: page.name)
def test_every_example_on_a_reference_page_prints_what_it_shows(page, monkeypatch, capsys,
                                                               tmp_path):
    # pages register a prompt set, a model and a strategy: each registry as it was, after
    monkeypatch.setattr(prompts, "PROMPT_SETS", dict(prompts.PROMPT_SETS))
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    monkeypatch.setattr(_strategy, "_REGISTRY", dict(_strategy._REGISTRY))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # and one writes a corpus
    with corpora_kept():  # and a corpus
        failed, attempted = doctest.testfile(
            str(page), module_relative=False, report=False,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0, f"{page.name} shows no example"
    assert failed == 0, capsys.readouterr().out


def test_the_docs_index_lists_every_page_and_the_readme_links_to_it():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    assert {page.name for page in PAGES} - {"README.md"} <= set(LINK.findall(index))
    assert "docs/README.md" in LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda page: page.name)
def test_every_relative_link_reaches_a_file_of_the_repository(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{page.name} links to {target}"


def test_ci_runs_the_readmes_test_command_as_written():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line.split("&&")[-1].strip() for line in readme.splitlines()
                if line.startswith("python -m pip install -e") and "pytest tests" in line]
    assert commands, "the README gives no test command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert all(command in ci for command in commands), commands


def test_the_readme_says_what_every_dependency_is_for():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"],
              *(d for extra in project["optional-dependencies"].values() for d in extra)]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Dependencies", 1)[1]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0] for d in wanted}
    missing = sorted(n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", table))
    assert not missing, f"the README's Dependencies table does not say what these are for: {missing}"


def test_the_api_models_settings_the_readme_lists_have_the_defaults_it_states():
    import inspect

    from harness._values import typed
    from harness.models.gemini_api import GeminiBackend
    from harness.models.openai_api import OpenAIChatBackend

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("What each API model takes as", 1)[1].split("\n\n", 1)[0]
    stated = dict(re.findall(r"`(\w+)` \[([^\]]+)\]", paragraph))
    backends = [inspect.signature(b.__init__).parameters for b in (OpenAIChatBackend, GeminiBackend)]
    assert len(stated) == 11
    for name, value in stated.items():
        defaults = [p[name].default for p in backends if name in p]
        assert defaults and all(d == typed(value) for d in defaults), (name, value, defaults)
