"""A corpus of one's own (``register_corpus``): loaded by name, worded in its prompts, recorded
as not the paper's, run by the grid; the built-in corpora's records unchanged by it."""

import csv
import inspect
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
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


def test_registering_returns_the_corpus_and_an_unknown_name_is_refused_with_the_choices():
    with corpora_kept():
        corpus = register_corpus("my_votes", read_votes_csv, env_var="MY_VOTES_ROOT",
                                 wording=WORDING, options={"split": None})
        assert corpus is loader.CORPORA["my_votes"] and corpus.reader is read_votes_csv
        assert (corpus.env_var, corpus.fixture, dict(corpus.options)) == (
            "MY_VOTES_ROOT", None, {"split": None})
    for call in (lambda: load_dataset("my_votes"), lambda: loader.option_names("iemocop"),
                 lambda: loader.resolve_root("nope")):
        with pytest.raises(ValueError, match=r"unknown corpus '\w+'; choose from \['crema_d', "):
            call()


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


def test_items_a_reader_should_not_return_are_problems_and_the_rest_load(tmp_path):
    crema = load_dataset("crema_d")
    labels, clip = crema.labels, crema[0].audio_path

    def careless(root, problems):
        return list(labels), [
            crema[0], crema[1],
            Item("short", clip, "", [1, 2], labels),          # votes for two labels of six
            crema[1],                                          # its id again
            Item("minus", clip, "", [-1, 2, 0, 0, 0, 0], labels),
            Item("nobody", clip, "", [0] * 6, labels),
            Item("nan", clip, "", [float("nan"), 1, 1, 1, 1, 1], labels),
            Item("other", clip, "", [1, 0, 0, 0], ("a", "b", "c", "d")),
            "not an item",
        ], {"too short": np.int64(3)}  # pandas' value_counts gives numpy's integers

    with corpora_kept():
        register_corpus("careless", careless, env_var="CARELESS_ROOT", wording=WORDING)
        dataset = load_dataset("careless", tmp_path)
        record = harness.evaluate("uniform", dataset, "base")
    assert [item.id for item in dataset] == [crema[0].id, crema[1].id]
    assert dict(dataset.skipped) == {"too short": 3} and type(dataset.skipped["too short"]) is int
    said = [p.message for p in dataset.problems]
    assert said == [
        "item 2 ('short') has 2 vote counts for 6 labels; left out",
        f"item 3 ('{crema[1].id}') has the id of an earlier item; left out",
        "item 7 ('other') has labels ('a', 'b', 'c', 'd'), not the corpus's; left out",
        "item 8 ('?') is a str, not a harness.data.Item; left out",
        "item 'minus': votes [-1.0, 2.0, 0.0, 0.0, 0.0, 0.0] are not counts (finite, none "
        "negative, not all zero); left out",
        "item 'nobody': votes [0.0, 0.0, 0.0, 0.0, 0.0, 0.0] are not counts (finite, none "
        "negative, not all zero); left out",
        "item 'nan': votes [nan, 1.0, 1.0, 1.0, 1.0, 1.0] are not counts (finite, none negative, "
        "not all zero); left out"]
    assert record.metrics.n_valid == 2 and np.isfinite(record.metrics.mean("js"))


@pytest.mark.parametrize(("output", "says"), [
    (("a", "b"), " returned a tuple, not (labels, items, skipped)"),
    (None, " returned a NoneType, not (labels, items, skipped)"),
    (((), [], {}), "'s labels are not one or more distinct names: ()"),
    ((("a", "a"), [], {}), "'s labels are not one or more distinct names: ('a', 'a')"),
    (("ab", [], {}), "'s labels are not a sequence of names"),
    ((("a", " "), [], {}), "'s labels are not one or more distinct names: ('a', ' ')"),
    ((("a", 3), [], {}), "'s labels are not one or more distinct names: ('a', 3)"),
    ((tuple(f"label {n}" for n in range(99)) * 2, [], {}),
     "'s labels are not one or more distinct names: " + str(
         tuple(f"label {n}" for n in range(99)) * 2)[:200]),
    ((("a", "b"), [], ["skipped"]), "'s skipped items are not counts by reason"),
])
def test_a_reader_output_of_another_shape_is_a_data_error_naming_the_root(tmp_path, output, says):
    with corpora_kept():
        register_corpus("odd", lambda root, problems: output, env_var="ODD_ROOT", wording=WORDING)
        with pytest.raises(DataError) as refused:
            load_dataset("odd", tmp_path)
    assert str(refused.value) == f"{tmp_path}: the odd reader{says}"


@pytest.mark.parametrize("names_file", [True, False])
def test_a_reader_that_cannot_open_a_file_is_a_data_error_naming_that_file(tmp_path, names_file):
    listed = tmp_path / "clips"

    def denied(root, problems):
        raise PermissionError(13, "Permission denied", *([str(listed)] if names_file else []))

    with corpora_kept():
        register_corpus("odd", denied, env_var="ODD_ROOT", wording=WORDING)
        with pytest.raises(DataError) as refused:
            load_dataset("odd", tmp_path)
    named = listed if names_file else tmp_path
    assert str(refused.value) == f"{named}: cannot be read: Permission denied"


def test_a_root_under_home_is_expanded_given_or_from_the_variable(tmp_path, monkeypatch):
    from harness.data import resolve_root

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(load_dataset("crema_d").root, tmp_path / "CREMA-D")
    assert resolve_root("crema_d", "~/CREMA-D") == tmp_path / "CREMA-D"
    monkeypatch.setenv("CREMA_D_ROOT", "~/CREMA-D")  # as a quoted "~/..." in a .env file gives it
    assert len(load_dataset("crema_d")) == 26 and load_dataset("crema_d").root == tmp_path / "CREMA-D"


def test_a_root_that_is_no_folder_is_named_with_the_variable_to_set(tmp_path):
    (tmp_path / "file").write_text("not a corpus")
    for root, why in ((tmp_path / "nowhere", "folder not found"),
                      (tmp_path / "file", "is a regular file, not a folder")):
        with pytest.raises(DataError, match=f"^{root}: iemocap root {why} "
                                            r"\(set IEMOCAP_ROOT\)$"):
            load_dataset("iemocap", root)
    assert loader.option_names("msp_podcast") == ("split", "include_no_consensus")


def test_items_edges_a_readers_output_may_take_or_not(tmp_path):
    """A list of labels, a split vote under one in all, are fine; an empty or non-text id is
    not; long ids and labels are cut in what is said; a reader whose every item is unusable
    gives an empty corpus, said; skipped counts must be whole numbers by reason."""
    crema = load_dataset("crema_d")
    labels, clip = crema.labels, crema[0].audio_path
    long = "x" * 1_000
    output = {"items": [
        Item("listed", clip, "", [1, 0, 0, 0, 0, 0], list(labels)),
        Item("half", clip, "", [0.5, 0, 0, 0, 0, 0], labels),
        Item("", clip, "", [1, 0, 0, 0, 0, 0], labels),
        Item(3, clip, "", [1, 0, 0, 0, 0, 0], labels),
        Item(long, clip, "", [1, 0], labels),
        Item("odd", clip, "", [1, 0], tuple(f"label {n}" for n in range(60)))]}

    with corpora_kept():
        register_corpus("edges", lambda root, problems: (labels, output["items"], {}),
                        env_var="EDGES_ROOT", wording=WORDING)
        dataset = load_dataset("edges", tmp_path)
        assert [item.id for item in dataset] == ["listed", "half"]
        said = [p.message for p in dataset.problems]
        assert said[:2] == ["item 2 ('') has no id; left out", "item 3 ('3') has no id; left out"]
        assert said[2] == f"item 4 ({long[:100]!r}) has 2 vote counts for 6 labels; left out"
        assert said[3] == ("item 5 ('odd') has labels " + str(tuple(f"label {n}" for n in range(60)))[
            :200] + ", not the corpus's; left out")
        output["items"] = output["items"][2:]
        assert len(load_dataset("edges", tmp_path)) == 0
        for skipped in ({"no votes": "3"}, {3: 1}):
            register_corpus("edges", lambda root, problems, skipped=skipped: (labels, [], skipped),
                            env_var="EDGES_ROOT", wording=WORDING)
            with pytest.raises(DataError, match="skipped items are not counts by reason"):
                load_dataset("edges", tmp_path)
