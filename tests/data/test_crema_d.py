import csv
import shutil

import numpy as np
import pytest

from harness.data import DataError, load_dataset
from harness.data.crema_d import NOT_IN_MIRROR, release_labels
from tests.helpers import CREMA_D_RELEASE, FIXTURES, corpus_copy


def by_id(dataset):
    return {item.id: item for item in dataset}


@pytest.fixture(scope="module")
def crema():
    return load_dataset("crema_d")


def test_fixture_items_are_the_voice_only_rows(crema):
    assert crema.labels == ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")
    assert len(crema) == 26
    assert crema.problems == []
    assert crema.skipped == {"face ratings (not voice-only)": 26,
                             "audio-visual ratings (not voice-only)": 26}


def test_real_votes_written_out_by_hand(crema):
    items = by_id(crema)
    # from the release: "100004"... rows are not all in the fixture, so check fixture ones
    sad = items["1008_ITS_SAD_XX"]
    np.testing.assert_array_equal(sad.votes, [0, 1, 5, 0, 1, 2])
    assert sad.majority == "Fear" and sad.meta["intended"] == "SAD"
    assert sad.transcript == "I think I've seen this before"
    np.testing.assert_array_equal(items["1014_IEO_ANG_HI"].votes, [8, 1, 0, 0, 1, 0])
    assert items["1014_IEO_ANG_HI"].transcript == "It's eleven o'clock"
    assert items["1014_IEO_ANG_HI"].audio_path == FIXTURES / "crema_d/AudioWAV/1014_IEO_ANG_HI.wav"


def test_tie_strings(crema):
    ties = [item for item in crema if ":" in item.meta["emo_vote"]]
    assert {item.meta["emo_vote"] for item in ties} >= {"A:D", "N:S", "A:D:N"}
    assert all(item.majority is None for item in ties)
    assert all(item.majority is not None for item in crema if item not in ties)


def test_release_copy_has_all_7442_voice_items_and_a_licence():
    assert "Open Database License" in (release_labels() / "LICENSE.txt").read_text()
    dataset = load_dataset("crema_d", votes_file=release_labels() / "processedResults/tabulatedVotes.csv")
    assert len(dataset) == 7442
    assert dataset.problems == []
    items = by_id(dataset)
    np.testing.assert_array_equal(items["1001_IEO_NEU_XX"].votes, [0, 0, 0, 1, 10, 0])
    np.testing.assert_array_equal(items["1001_IEO_HAP_HI"].votes, [2, 0, 0, 6, 2, 0])


@pytest.mark.skipif(CREMA_D_RELEASE is None or not CREMA_D_RELEASE.is_dir(),
                    reason="set CREMA_D_RELEASE to a checkout of the public CREMA-D release")
def test_reads_the_release_labels_and_matches_the_shipped_copy():
    shared = load_dataset("crema_d", CREMA_D_RELEASE)
    assert len(shared) == 7442
    copy = load_dataset("crema_d", votes_file=release_labels() / "processedResults/tabulatedVotes.csv")
    assert shared.ids == copy.ids
    np.testing.assert_array_equal(shared.votes, copy.votes)
    with open(CREMA_D_RELEASE / "processedResults/tabulatedVotes.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r[""]) // 100000 == 1]
    # every voice-only response of the release is a vote
    assert shared.votes.sum() == sum(int(r["numResponses"]) for r in rows)
    with pytest.raises(DataError, match="1001_DFA_ANG_XX.wav: audio file not found"):
        by_id(shared)["1001_DFA_ANG_XX"].load_audio()


def test_audio_only_root_gets_the_shipped_release_votes_for_the_clips_it_holds(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    own = load_dataset("crema_d", root)
    shutil.rmtree(root / "processedResults")
    (root / "AudioWAV" / "notes.txt").write_text("not a clip")
    dataset = load_dataset("crema_d", root)
    assert [p.severity for p in dataset.problems] == ["warning"]
    assert "for the clips in AudioWAV/" in dataset.problems[0].message
    assert sorted(dataset.ids) == sorted(own.ids)  # the fixture's votes are the release's rows
    for item in dataset:
        np.testing.assert_array_equal(item.votes, own.item_by_id(item.id).votes)
    assert all(item.audio_path.is_file() for item in dataset)
    assert dataset.skipped[NOT_IN_MIRROR] == 7442 - 26


def test_an_audio_folder_that_cannot_be_listed_is_a_data_error(tmp_path, monkeypatch):
    root = corpus_copy("crema_d", tmp_path)
    shutil.rmtree(root / "processedResults")

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("harness.data.crema_d.os.scandir", refuse)
    with pytest.raises(DataError, match="AudioWAV: cannot be listed: Permission denied"):
        load_dataset("crema_d", root)


def test_not_a_root(tmp_path):
    with pytest.raises(DataError, match="not a CREMA-D root"):
        load_dataset("crema_d", tmp_path)


def _edit(root, old, new):
    path = root / "processedResults" / "tabulatedVotes.csv"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_bad_rows_are_problems_with_lines(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    lines = (root / "processedResults/tabulatedVotes.csv").read_text().splitlines()
    first = lines[1].split(",")
    first[1] = "x"  # a vote that is not a number
    second = lines[2].split(",")
    second[7] = '"../../etc/passwd"'
    lines[1], lines[2] = ",".join(first), ",".join(second)
    (root / "processedResults/tabulatedVotes.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset("crema_d", root)
    assert len(dataset) == 24
    found = {(p.line, p.message.split(": ")[-1]) for p in dataset.problems}
    assert (2, "vote counts are not numbers") in found
    assert any(line == 3 and "leaves the corpus root" in msg for line, msg in found)


def test_emo_vote_disagreeing_with_counts_is_flagged(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    path = root / "processedResults/tabulatedVotes.csv"
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[10] = '"S"' if fields[10] != '"S"' else '"A"'
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    [problem] = load_dataset("crema_d", root).problems
    assert problem.severity == "warning" and problem.line == 2 and "emoVote" in problem.message


def test_missing_column(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    _edit(root, '"emoVote"', '"vote"')
    with pytest.raises(DataError, match=r"tabulatedVotes.csv:1: missing column"):
        load_dataset("crema_d", root)


def _rewrite(root, change):
    """Rewrite the votes file's data rows (lists of fields) with ``change(rows)``; its path."""
    path = root / "processedResults/tabulatedVotes.csv"
    lines = path.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    change(rows)
    path.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")
    return path


def test_rows_without_valid_votes_or_a_numeric_id_are_problems_naming_their_lines(tmp_path):
    root = corpus_copy("crema_d", tmp_path)

    def damage(rows):
        rows[0][1:7] = ["0"] * 6           # nobody voted
        rows[1][1:7] = ["-1", "3", "0", "0", "0", "0"]
        rows[2][1:7] = ["nan", "3", "0", "0", "0", "0"]
        rows[3][0] = '"1e5x"'              # a row id that is no number
        rows[4][1:7] = ["0"] * 5 + ["1"]   # one vote (for S, its emoVote) is a valid item

    path = _rewrite(root, damage)
    dataset = load_dataset("crema_d", root)
    assert len(dataset) == 22
    assert by_id(dataset)["1020_IWL_FEA_XX"].votes.tolist() == [0, 0, 0, 0, 0, 1]
    said = sorted((p.line, p.severity, p.message) for p in dataset.problems)
    assert said == [(2, "error", "1008_ITS_SAD_XX: no valid votes [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]"),
                    (3, "error", "1009_ITH_HAP_XX: no valid votes [-1.0, 3.0, 0.0, 0.0, 0.0, 0.0]"),
                    (4, "error", "1014_IEO_ANG_HI: no valid votes [nan, 3.0, 0.0, 0.0, 0.0, 0.0]"),
                    (5, "error", "row id '1e5x' is not a number")]
    assert all(p.path == str(path) for p in dataset.problems)


def test_a_clip_rated_twice_voice_only_is_kept_once_naming_the_line(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    path = _rewrite(root, lambda rows: rows.append([*rows[0][:1], *rows[1][1:]]))  # 1009's votes
    dataset = load_dataset("crema_d", root)
    assert len(dataset) == 26
    [problem] = dataset.problems
    assert (problem.path, problem.line, problem.severity) == (str(path), 80, "error")
    assert problem.message == "duplicate voice-only row for 1009_ITH_HAP_XX, kept the first"


def test_a_name_with_an_unknown_sentence_code_keeps_its_item_without_a_transcript(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    (root / "AudioWAV/1008_ITS_SAD_XX.wav").rename(root / "AudioWAV/1008_XYZ_SAD_XX.wav")
    _rewrite(root, lambda rows: rows[0].__setitem__(7, '"1008_XYZ_SAD_XX"'))
    dataset = load_dataset("crema_d", root)
    item = by_id(dataset)["1008_XYZ_SAD_XX"]
    assert item.transcript == "" and item.meta["sentence"] == "XYZ"
    [problem] = dataset.problems
    assert (problem.line, problem.severity) == (2, "warning")
    assert problem.message == "1008_XYZ_SAD_XX: unknown sentence code, transcript left empty"


def test_a_name_is_read_for_actor_sentence_intended_emotion_and_level(crema):
    item = by_id(crema)["1014_IEO_ANG_HI"]
    assert item.transcript == "It's eleven o'clock"
    assert {k: item.meta[k] for k in ("actor", "sentence", "intended", "level", "emo_vote")} == {
        "actor": "1014", "sentence": "IEO", "intended": "ANG", "level": "HI", "emo_vote": "A"}


def test_a_votes_file_that_is_not_a_regular_file_is_refused_not_replaced(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    votes = root / "processedResults/tabulatedVotes.csv"
    votes.unlink()
    votes.mkdir()  # the shipped release's votes must not stand in for it unsaid
    with pytest.raises(DataError, match="tabulatedVotes.csv: label file is a directory, not a "
                                        "regular file"):
        load_dataset("crema_d", root)
