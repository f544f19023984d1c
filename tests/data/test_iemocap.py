import os
from pathlib import Path

import numpy as np
import pytest

from harness.data import DataError, load_dataset
from tests.helpers import FIXTURES, corpus_copy

ROOT = FIXTURES / "iemocap" / "IEMOCAP_full_release"
EVAL = Path("Session1/dialog/EmoEvaluation/Ses01F_impro01.txt")


@pytest.fixture(scope="module")
def iemocap():
    return load_dataset("iemocap")


def by_id(dataset):
    return {item.id: item for item in dataset}


def test_default_root_is_the_fixture_and_items_are_counted(iemocap):
    assert iemocap.root == ROOT
    assert iemocap.labels == ("Neutral state", "Happiness", "Anger", "Sadness")
    assert len(iemocap) == 26
    assert iemocap.problems == []
    assert iemocap.skipped == {"consensus 'fru' not in the classes": 3,
                               "consensus 'xxx' not in the classes": 2,
                               "consensus 'exc' not in the classes": 1}


def test_hand_written_items_have_the_expected_votes(iemocap):
    items = by_id(iemocap)
    expected = {
        # three raters, unanimous; the actor's self-rating (Neutral) is not a vote
        "Ses01F_impro01_F000": [3, 0, 0, 0],
        # "Neutral; Anger" counts once for each; Frustration is out of set
        "Ses01F_impro01_F001": [2, 0, 1, 0],
        "Ses01F_impro01_F002": [0, 0, 3, 0],
        # Excited is not Happiness unless merged
        "Ses01F_impro01_F003": [0, 2, 0, 0],
        # tied majority
        "Ses01F_impro01_M003": [2, 0, 0, 2],
        # an unknown token counts as Other and is dropped
        "Ses01F_impro01_M005": [2, 0, 0, 0],
        "Ses01F_impro01_F006": [0, 3, 0, 0],
    }
    for utt, votes in expected.items():
        np.testing.assert_array_equal(items[utt].votes, votes, err_msg=utt)
    assert items["Ses01F_impro01_F001"].meta["dropped_votes"] == {"Frustration": 1.0}
    assert items["Ses01F_impro01_M005"].meta["dropped_votes"] == {"Other": 1.0}
    assert items["Ses01F_impro01_F006"].meta["dropped_votes"] == {"Surprise": 1.0}
    # each rater's own in-set votes, for the annotator reference: a rater who named only
    # out-of-set categories (F001's Frustration, M005's unknown token) is no rater of these
    # classes, though the block counts every external rater
    assert items["Ses01F_impro01_F001"].meta["rater_votes"] == [[1, 0, 0, 0], [1, 0, 1, 0]]
    assert items["Ses01F_impro01_M005"].meta["rater_votes"] == [[1, 0, 0, 0], [1, 0, 0, 0]]
    assert items["Ses01F_impro01_F001"].meta["n_raters"] == 3
    assert items["Ses01F_impro01_M003"].majority is None
    assert items["Ses01F_impro01_F001"].majority == "Neutral state"
    assert items["Ses01F_impro01_M003"].entropy == pytest.approx(1.0)
    assert "Ses01F_impro01_M000" not in items  # consensus xxx
    assert "Ses01F_impro01_F004" not in items  # consensus exc


def test_transcripts_paths_and_excluded_lines(iemocap):
    items = by_id(iemocap)
    f000 = items["Ses01F_impro01_F000"]
    assert f000.transcript == "Excuse me."
    assert f000.audio_path == ROOT / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    assert f000.meta["session"] == "Session1"
    assert not any("XX" in item.id for item in iemocap)
    assert {item.meta["session"] for item in iemocap} == {"Session1", "Session2"}


def test_merge_excited_counts_excited_as_happiness():
    items = by_id(load_dataset("iemocap", merge_excited=True))
    np.testing.assert_array_equal(items["Ses01F_impro01_F003"].votes, [0, 4, 0, 0])
    np.testing.assert_array_equal(items["Ses01F_impro01_F004"].votes, [0, 3, 0, 0])
    assert len(items) == 27


def test_split_vote_mode_splits_a_raters_single_vote():
    items = by_id(load_dataset("iemocap", vote_mode="split"))
    np.testing.assert_allclose(items["Ses01F_impro01_F001"].votes, [1.5, 0, 0.5, 0])
    np.testing.assert_allclose(items["Ses01F_impro01_F003"].votes, [0, 1.5, 0, 0])
    with pytest.raises(ValueError, match="vote_mode"):
        load_dataset("iemocap", vote_mode="half")


def test_sessions_option_and_parent_root():
    only_two = load_dataset("iemocap", ROOT.parent, sessions=[2])
    assert {item.meta["session"] for item in only_two} == {"Session2"}
    assert len(only_two) > 0


def test_unknown_option_is_a_clear_error():
    with pytest.raises(ValueError, match="iemocap"):
        load_dataset("iemocap", split="Train")


def test_not_a_root(tmp_path):
    with pytest.raises(DataError, match="SessionN"):
        load_dataset("iemocap", tmp_path)


def _damage(root: Path, old: str, new: str) -> None:
    path = root / "IEMOCAP_full_release" / EVAL
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_broken_header_skips_that_block_only_and_names_the_line(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "[8.2250 - 9.8500]\tSes01F_impro01_F001", "[8.2250 9.8500\tSes01F_impro01_F001")
    dataset = load_dataset("iemocap", root)
    assert len(dataset) == 25
    assert "Ses01F_impro01_F001" not in by_id(dataset)
    [problem] = dataset.problems
    assert problem.path.endswith(str(EVAL)) and problem.line == 21
    assert "malformed utterance header" in problem.message


def test_rater_line_without_categories_and_garbage_line(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "C-E2:\tNeutral;\t()\nC-E3:\tNeutral; Anger;", "C-E2:\t;\t()\nC-E3:\tNeutral; Anger;")
    _damage(root, "C-E4:\tFrustration;\t()\nC-F1:\tAnger;", "C-E4:\tFrustration;\t()\n@@@\nC-F1:\tAnger;")
    dataset = load_dataset("iemocap", root)
    np.testing.assert_array_equal(by_id(dataset)["Ses01F_impro01_F001"].votes, [1, 0, 1, 0])
    messages = sorted((p.line, p.severity, p.message.split(" ")[0]) for p in dataset.problems)
    assert messages == [(22, "warning", "rater"), (25, "error", "unrecognised")]


def test_a_line_before_the_first_block_is_an_error_naming_it_and_every_item_loads(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n",
            "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\nC-E9:\tAnger;\t()\n")
    dataset = load_dataset("iemocap", root)
    [problem] = dataset.problems
    assert (problem.line, problem.severity) == (2, "error") and len(dataset) == 26
    assert problem.message == "line outside an utterance block: 'C-E9:\\tAnger;\\t()'"


def test_duplicate_id_and_no_in_set_votes(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "Ses01F_impro01_F002\tang", "Ses01F_impro01_F001\tang")
    _damage(root, "C-E2:\tSadness;\t()\nC-E3:\tSadness;\t()\nC-E4:\tNeutral;",
            "C-E2:\tFear;\t()\nC-E3:\tFear;\t()\nC-E4:\tOther;")
    dataset = load_dataset("iemocap", root)
    messages = [p.message for p in dataset.problems]
    assert any("duplicate utterance id Ses01F_impro01_F001" in m for m in messages)
    assert any("Ses01F_impro01_M002 has no in-set external vote" in m for m in messages)
    assert len(dataset) == 24


def test_non_utf8_bytes_and_crlf_are_tolerated(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    path = root / "IEMOCAP_full_release" / EVAL
    raw = path.read_bytes().replace(b"\n", b"\r\n").replace(b"(self)", b"(s\xe9lf)")
    path.write_bytes(b"\xef\xbb\xbf" + raw)
    dataset = load_dataset("iemocap", root)
    assert len(dataset) == 26
    assert [p.severity for p in dataset.problems] == ["warning"]
    assert "not UTF-8" in dataset.problems[0].message
    first_bad = next(n for n, line in enumerate(raw.split(b"\n"), 1) if b"\xe9" in line)
    assert dataset.problems[0].line == first_bad  # the line of the first such byte


def test_missing_wav_is_an_error_naming_the_file_only_when_audio_is_read(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    wav = root / "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    wav.unlink()
    dataset = load_dataset("iemocap", root)
    item = by_id(dataset)["Ses01F_impro01_F000"]
    with pytest.raises(DataError, match="Ses01F_impro01_F000.wav: audio file not found"):
        item.load_audio()
    assert by_id(dataset)["Ses01F_impro01_F002"].load_audio().dtype == np.float32


def test_a_vote_mode_it_does_not_know_is_refused_by_the_reader_itself():
    from harness.data import iemocap
    from harness.data.problems import ProblemLog

    with pytest.raises(ValueError, match="vote_mode must be one of"):
        iemocap.load(ROOT, ProblemLog(), vote_mode="majority")


def test_sessions_that_are_not_there_are_a_clear_error_naming_those_that_are():
    with pytest.raises(DataError, match="selects Session7, none of them here "
                                        r"\(it has Session1, Session2\)"):
        load_dataset("iemocap", sessions=[7])


def test_a_blank_line_ends_a_block_so_a_rater_line_after_it_is_an_error(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "C-E4:\tNeutral;\t()\nC-F1:\tNeutral;\t(self)",
            "C-E4:\tNeutral;\t()\n\nC-E5:\tAnger;\t()\nC-F1:\tNeutral;\t(self)")
    dataset = load_dataset("iemocap", root)
    np.testing.assert_array_equal(by_id(dataset)["Ses01F_impro01_F000"].votes, [3, 0, 0, 0])
    messages = [(p.line, p.message) for p in dataset.problems]
    assert messages[0] == (8, "line outside an utterance block: 'C-E5:\\tAnger;\\t()'")


def test_a_header_whose_times_are_not_numbers_skips_its_block(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "[8.2250 - 9.8500]", "[8.2.250 - 9.8500]")
    dataset = load_dataset("iemocap", root)
    assert "Ses01F_impro01_F001" not in by_id(dataset) and len(dataset) == 25
    [problem] = dataset.problems
    assert (problem.line, problem.severity) == (21, "error")
    assert problem.message.startswith("bad times in utterance header: '[8.2.250 - 9.8500]")


def test_an_utterance_id_that_would_leave_the_corpus_is_refused_naming_its_line(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "\tSes01F_impro01_F001\t", "\t../../../../../etc/passwd_F001\t")
    dataset = load_dataset("iemocap", root)
    assert len(dataset) == 25 and all(".." not in item.id for item in dataset)
    [problem] = [p for p in dataset.problems if p.severity == "error"]
    assert problem.path.endswith(str(EVAL)) and problem.line == 21
    assert "leaves the corpus root" in problem.message


def test_an_item_of_one_external_vote_is_kept(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    _damage(root, "C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nC-E4:\tNeutral;\t()\n", "C-E2:\tNeutral;\t()\n")
    item = by_id(load_dataset("iemocap", root))["Ses01F_impro01_F000"]
    np.testing.assert_array_equal(item.votes, [1, 0, 0, 0])
    assert item.meta["n_raters"] == 1


def test_a_missing_or_unreadable_transcription_is_a_warning_and_the_items_load(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    transcripts = root / "IEMOCAP_full_release/Session1/dialog/transcriptions"
    (transcripts / "Ses01F_impro01.txt").unlink()
    (transcripts / "Ses01M_script01_1.txt").unlink()
    os.mkfifo(transcripts / "Ses01M_script01_1.txt")  # opening it would block: never opened
    dataset = load_dataset("iemocap", root)
    assert len(dataset) == 26 and by_id(dataset)["Ses01F_impro01_F000"].transcript == ""
    found = {Path(p.path).name: (p.severity, p.message) for p in dataset.problems
             if p.message.startswith("transcription")}
    assert found == {
        "Ses01F_impro01.txt": ("warning", "transcription file missing"),
        "Ses01M_script01_1.txt": ("warning", "transcription file is a FIFO, not a regular file: "
                                             "the dialog's transcripts are empty")}


def test_a_label_file_that_cannot_be_read_leaves_out_its_dialog_only(tmp_path, monkeypatch):
    from harness.data import iemocap

    read = iemocap.read_lines

    def failing(path, problems, *what):
        if path.name == EVAL.name and path.parent.name == "EmoEvaluation":
            raise DataError(path, "label file cannot be read: Input/output error")
        return read(path, problems, *what)

    monkeypatch.setattr(iemocap, "read_lines", failing)
    dataset = load_dataset("iemocap")
    assert dataset and not any(item.id.startswith("Ses01F_impro01_") for item in dataset)
    [problem] = dataset.problems
    assert problem.path.endswith(str(EVAL)) and problem.severity == "error"
    assert problem.message == ("label file cannot be read: Input/output error: its dialog's "
                               "items are left out")


def test_an_utterance_without_a_transcript_line_is_a_warning_and_xx_only_skips_ids(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    path = root / "IEMOCAP_full_release/Session1/dialog/transcriptions/Ses01F_impro01.txt"
    text = path.read_text().replace("Ses01F_impro01_F000 [003.0000-004.7500]: Excuse me.\n", "")
    path.write_text(text.replace("]: Yeah.", "]: XX marks the spot."))
    dataset = load_dataset("iemocap", root)
    assert by_id(dataset)["Ses01F_impro01_F000"].transcript == ""
    assert by_id(dataset)["Ses01F_impro01_F001"].transcript == "XX marks the spot."
    [problem] = dataset.problems
    where = str(root / "IEMOCAP_full_release" / EVAL)
    assert (problem.path, problem.line, problem.severity) == (where, 3, "warning")
    assert problem.message == "no transcript line for Ses01F_impro01_F000"


def test_a_dialog_label_file_that_is_a_fifo_or_a_dangling_link_is_a_problem_naming_it(tmp_path):
    root = corpus_copy("iemocap", tmp_path)
    folder = root / "IEMOCAP_full_release/Session1/dialog/EmoEvaluation"
    (folder / "Ses01F_impro01.txt").unlink()
    os.mkfifo(folder / "Ses01F_impro01.txt")  # opening it would block: it is never opened
    (folder / "Ses01M_script01_1.txt").unlink()
    (folder / "Ses01M_script01_1.txt").symlink_to(tmp_path / "gone.txt")
    dataset = load_dataset("iemocap", root)
    assert dataset and all(item.meta["session"] == "Session2" for item in dataset)
    said = sorted((Path(p.path).name, p.severity, p.message) for p in dataset.problems)
    assert said == [
        ("Ses01F_impro01.txt", "error", "label file is a FIFO, not a regular file: its dialog's "
                                        "items are left out"),
        ("Ses01M_script01_1.txt", "error", "label file not found: its dialog's items are left out")]
