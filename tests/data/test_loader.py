"""A corpus of one's own (``register_corpus``): loaded by name, worded in its prompts, recorded
as not the paper's, run by the grid; the built-in corpora's records unchanged by it."""

import csv
import inspect
import shutil
from collections import Counter
from pathlib import Path

import pytest

import harness
from harness import prompts
from harness.data import DataError, Item, load_dataset, loader, register_corpus
from harness.prompts import CorpusWording, base_prompt, prompts_record
from tests.helpers import corpora_kept

WORDING = CorpusWording("Someone leaves a voice message.", "the message")


def read_votes_csv(root, problems):
    """votes.csv: clip, transcript, then each label's vote count."""
    with open(root / "votes.csv", newline="", encoding="utf-8") as f:
        table = csv.reader(f)
        labels = tuple(next(table)[2:])
        items, skipped = [], Counter()
        for clip, transcript, *counts in table:
            votes = [float(c) for c in counts]
            if sum(votes) == 0:
                skipped["no votes"] += 1
                continue
            items.append(Item(Path(clip).stem, root / clip, transcript, votes, labels))
    return labels, items, skipped


def votes_corpus(folder: Path, n: int = 6) -> Path:
    """A votes.csv corpus of ``n`` bundled CREMA-D clips (and an unrated row)."""
    (folder / "clips").mkdir(parents=True)
    bundled = load_dataset("crema_d")
    rows = [["clip", "transcript", *bundled.labels]]
    for item in bundled[:n]:
        shutil.copy(item.audio_path, folder / "clips")
        rows.append([f"clips/{item.audio_path.name}", item.transcript, *item.votes])
    rows.append(["clips/none.wav", "", *[0] * len(bundled.labels)])
    with open(folder / "votes.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return folder


@pytest.fixture
def registered(monkeypatch):
    """``my_votes`` registered for the test, and the registries as they were after it."""
    monkeypatch.delenv("MY_VOTES_ROOT", raising=False)
    with corpora_kept():
        register_corpus("my_votes", read_votes_csv, env_var="MY_VOTES_ROOT", wording=WORDING)
        yield


@pytest.mark.parametrize(("name", "says"), [
    ("My-Votes", "use lower-case letters, digits and _"),
    ("", "use lower-case letters"),
    ("iemocap", "'iemocap' is a built-in corpus"),
])
def test_a_name_that_cannot_be_one_is_refused(name, says):
    before = dict(loader.CORPORA)
    with pytest.raises(ValueError, match=says):
        register_corpus(name, read_votes_csv, env_var="X", wording=WORDING)
    assert before == loader.CORPORA and name not in prompts.ADDED_WORDING


def test_a_registered_corpus_loads_from_its_variable_and_says_when_it_is_unset(
        registered, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"^\$MY_VOTES_ROOT: not set, and my_votes has no bundled"):
        load_dataset("my_votes")
    monkeypatch.setenv("MY_VOTES_ROOT", str(votes_corpus(tmp_path / "votes")))
    dataset = load_dataset("my_votes")
    assert (len(dataset), dict(dataset.skipped)) == (6, {"no votes": 1})
    assert dataset.labels == load_dataset("crema_d").labels


def test_its_prompts_use_its_wording_and_the_built_in_records_do_not_change(registered):
    before = prompts_record("paper", "iemocap")
    prompt = base_prompt("my_votes", "hello", ["A", "B"])
    assert prompt.startswith("Background: Someone leaves a voice message.\n")
    assert "distribution of emotions for the message from" in prompt
    mine = prompts_record("paper", "my_votes")
    assert mine["not_in_paper"] == ["msp_podcast", "crema_d", "my_votes"]
    assert set(mine["templates"]) - set(before["templates"]) == {
        f"{kind}/my_votes" for kind in prompts.PROMPT_KINDS}
    prompts.ADDED_WORDING.clear()
    assert prompts_record("paper", "iemocap") == before


def test_evaluate_runs_on_it(registered, tmp_path):
    dataset = load_dataset("my_votes", votes_corpus(tmp_path / "votes"))
    record = harness.evaluate("label-prior", dataset, "base")
    assert (record.cell, record.metrics.n_valid) == ("label-prior-my_votes-base", 6)


def test_the_grid_runs_it_when_selected_and_skips_it_naming_its_variable(pytester, tmp_path,
                                                                        monkeypatch):
    monkeypatch.delenv("MY_VOTES_ROOT", raising=False)
    imports = ("import csv\nfrom collections import Counter\nfrom pathlib import Path\n"
               "from harness.data import Item\nfrom harness.prompts import CorpusWording\n")
    pytester.makepyfile(votes_reader=f"{imports}WORDING = {WORDING!r}\n\n\n"
                                     f"{inspect.getsource(read_votes_csv)}")
    pytester.makeconftest("""
        from harness.data import register_corpus
        from votes_reader import WORDING, read_votes_csv
        register_corpus("my_votes", read_votes_csv, env_var="MY_VOTES_ROOT", wording=WORDING)
    """)
    pytester.makepyfile(test_grid="""
        from harness.runner import GridConfig
        GRID = GridConfig(models=("uniform",), datasets=("crema_d",))

        def test_cell(cell, run_cell):
            run_cell(cell)
    """)
    result = pytester.runpytest_subprocess("--datasets", "my_votes", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*my_votes: $MY_VOTES_ROOT: not set, and my_votes has no bundled "
                                 "copy (set MY_VOTES_ROOT)"])
    monkeypatch.setenv("MY_VOTES_ROOT", str(votes_corpus(tmp_path / "votes")))
    result = pytester.runpytest_subprocess("--datasets", "my_votes,crema_d", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*uniform  my_votes  base      6/6 *"])
    result = pytester.runpytest_subprocess("--datasets", "my_vote", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown corpus 'my_vote'; did you mean 'my_votes'*"])
