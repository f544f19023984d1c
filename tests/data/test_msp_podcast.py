import math
import os

import numpy as np
import pytest

from harness.data import DataError, load_dataset
from tests.helpers import FIXTURES, corpus_copy

LABELS = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral")


def by_id(dataset):
    return {item.id: item for item in dataset}


def errors(dataset):
    return [problem for problem in dataset.problems if problem.severity == "error"]


@pytest.fixture(scope="module", params=["msp_podcast", "msp_podcast_v1.6"])
def msp(request):
    return load_dataset("msp_podcast", FIXTURES / request.param)


def test_both_detailed_layouts_give_the_same_hand_written_votes(msp):
    items = by_id(msp)
    assert msp.labels == LABELS
    [problem] = msp.problems  # the one item without a transcript file, said once
    assert problem.severity == "warning" and "(the first: MSP-PODCAST_1001_0004.txt)" in problem.message
    # N with one Happy vote; the order is the corpus's class order
    np.testing.assert_array_equal(items["MSP-PODCAST_1000_0001"].votes, [0, 0, 1, 0, 0, 0, 0, 4])
    # Other-Frustrated is out of set and kept only as a diagnostic
    a = items["MSP-PODCAST_1000_0002"]
    np.testing.assert_array_equal(a.votes, [3, 0, 0, 0, 0, 1, 1, 0])
    assert a.meta["dropped_votes"] == {"Other-Frustrated": 1}
    # tied Sad/Neutral
    s = items["MSP-PODCAST_1001_0005"]
    np.testing.assert_array_equal(s.votes, [0, 2, 0, 0, 0, 0, 0, 2])
    assert s.majority is None and s.meta["split"] == "Development"
    # X (no agreement) and O (other) consensus are left out by default
    assert "MSP-PODCAST_1000_0003" not in items and "MSP-PODCAST_1001_0006" not in items


def test_primary_emotions_written_as_codes_or_other_spellings_give_the_same_votes(tmp_path):
    root = corpus_copy("msp_podcast_v1.6", tmp_path)
    path = root / "labels" / "labels_detailed.csv"
    spellings = {"WORKER00020,Angry": "WORKER00020,A", "WORKER00021,Angry": "WORKER00021,anger",
                 "WORKER00022,Disgust": "WORKER00022,D", "WORKER00023,Contempt":
                 "WORKER00023,contemptuous", "WORKER00025,Angry": "WORKER00025, ANGRY ",
                 "WORKER00010,Neutral": "WORKER00010,N", "WORKER00013,Happy": "WORKER00013,H"}
    text = path.read_text()
    for old, new in spellings.items():
        assert text.count(old) == 1
        text = text.replace(old, new)
    path.write_text(text)
    items = by_id(load_dataset("msp_podcast", root))
    np.testing.assert_array_equal(items["MSP-PODCAST_1000_0002"].votes, [3, 0, 0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(items["MSP-PODCAST_1000_0001"].votes, [0, 0, 1, 0, 0, 0, 0, 4])


def test_fixture_sizes_and_fields():
    current = load_dataset("msp_podcast")
    assert len(current) == 28
    assert current.skipped == {"consensus 'X' not in the classes": 1,
                               "consensus 'O' not in the classes": 1}
    item = by_id(current)["MSP-PODCAST_1000_0001"]
    assert item.audio_path == FIXTURES / "msp_podcast/Audios/MSP-PODCAST_1000_0001.wav"
    assert item.transcript and item.meta["gender"] == "Female"
    assert by_id(current)["MSP-PODCAST_1001_0004"].transcript == ""  # no transcript file
    [problem] = current.problems
    assert (problem.path, problem.line) == (str(FIXTURES / "msp_podcast/Transcripts"), None)
    assert problem.message == ("1 of the 28 items have no transcript file (the first: "
                               "MSP-PODCAST_1001_0004.txt): their prompts' 'Target Utterance:' "
                               "is empty")
    assert len(load_dataset("msp_podcast", FIXTURES / "msp_podcast_v1.6")) == 7


def test_split_selection_and_no_consensus_option():
    test1 = load_dataset("msp_podcast", split="Test1")
    assert {item.meta["split"] for item in test1} == {"Test1"}
    assert len(test1) == 7 and sum(test1.skipped.values()) == 30 - 7  # every row is counted
    assert test1.skipped["split 'Train' not selected"] == 6
    both = load_dataset("msp_podcast", split=["Test1", "Train"])
    assert {item.meta["split"] for item in both} == {"Test1", "Train"}
    with pytest.raises(ValueError, match="Test4"):
        load_dataset("msp_podcast", split="Test4")
    everything = by_id(load_dataset("msp_podcast", include_no_consensus=True))
    np.testing.assert_array_equal(everything["MSP-PODCAST_1000_0003"].votes,
                                  [1, 1, 1, 0, 0, 0, 0, 1])
    assert everything["MSP-PODCAST_1001_0006"].meta["dropped_votes"] == {"Other-Bored": 2,
                                                                        "Other-Tired": 1}


@pytest.mark.parametrize("folder", ["labels", "label"])
def test_lowercase_label_folder_and_old_spelling(tmp_path, folder):
    root = corpus_copy("msp_podcast", tmp_path)
    (root / "Labels").rename(root / folder)
    (root / folder / "labels_consensus.csv").rename(root / folder / "labels_concensus.csv")
    assert len(load_dataset("msp_podcast", root)) == 28


def test_missing_column_names_file_and_line(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    path = root / "Labels" / "labels_consensus.csv"
    path.write_text(path.read_text().replace(",Split_Set", ",Partition", 1))
    with pytest.raises(DataError, match=r"labels_consensus.csv:1: missing column\(s\) \['Split_Set'\]"):
        load_dataset("msp_podcast", root)


def test_malformed_emo_detail_and_only_out_of_set_votes(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    path = root / "Labels" / "labels_detailed.csv"
    lines = path.read_text().splitlines()
    lines[1] = "MSP-PODCAST_1000_0001.wav,garbage"
    path.write_text("\n".join(lines) + "\n")
    dataset = load_dataset("msp_podcast", root)
    [problem] = errors(dataset)
    assert problem.line == 2 and "malformed EmoDetail" in problem.message
    np.testing.assert_array_equal(by_id(dataset)["MSP-PODCAST_1000_0001"].votes,
                                  [0, 0, 1, 0, 0, 0, 0, 3])


def test_item_with_no_in_set_vote_is_a_problem(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    path = root / "Labels" / "labels_consensus.csv"
    path.write_text(path.read_text().replace("_0006.wav,O,", "_0006.wav,N,"))
    detailed = root / "Labels" / "labels_detailed.csv"
    detailed.write_text(detailed.read_text().replace("; Neutral;", "; Other-Calm;"))
    dataset = load_dataset("msp_podcast", root)
    [problem] = errors(dataset)
    assert problem.line == 7 and "no in-set worker vote" in problem.message
    assert "MSP-PODCAST_1001_0006" not in by_id(dataset)


def test_path_outside_the_root_is_refused(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    for name in ("labels_consensus.csv", "labels_detailed.csv"):
        path = root / "Labels" / name
        path.write_text(path.read_text().replace("MSP-PODCAST_1000_0001.wav", "../../etc/passwd"))
    dataset = load_dataset("msp_podcast", root)
    assert len(dataset) == 27
    assert any("leaves the corpus root" in p.message for p in dataset.problems)


def test_bom_and_crlf(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    for name in ("labels_consensus.csv", "labels_detailed.csv"):
        path = root / "Labels" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert len(load_dataset("msp_podcast", root)) == 28


@pytest.mark.parametrize("fixture", ["msp_podcast", "msp_podcast_v1.6"])
def test_bytes_that_are_not_utf8_in_the_detailed_labels_are_one_warning(tmp_path, fixture):
    root = corpus_copy(fixture, tmp_path)
    [path] = root.glob("*/labels_detailed.csv")  # Labels/ or, in release 1.6, labels/
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"\n", b"\nMSP-PODCAST_9_9.wav,\xe9\n", 1))  # a row on line 2
    dataset = load_dataset("msp_podcast", root)
    said = [(p.line, p.message) for p in dataset.problems if p.path == str(path)]
    assert said[0] == (2, "bytes that are not UTF-8")
    assert [message for _, message in said].count("bytes that are not UTF-8") == 1


def test_a_dimensional_rating_that_is_no_number_is_nan():
    from harness.data.msp_podcast import _float

    assert [_float(t) for t in ("4.0", " 3.5 ", "1e0")] == [4.0, 3.5, 1.0]
    assert all(math.isnan(_float(t)) for t in ("", "n/a", "1_000", "nan"))


def test_a_transcript_that_is_not_a_regular_file_is_named_and_its_item_kept(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    fifo = root / "Transcripts" / "MSP-PODCAST_1000_0001.txt"
    fifo.unlink()
    os.mkfifo(fifo)  # opening it would block: it is never opened
    dataset = load_dataset("msp_podcast", root)
    assert len(dataset) == 28 and by_id(dataset)["MSP-PODCAST_1000_0001"].transcript == ""
    problems = {p.path: p.message for p in dataset.problems}
    assert problems[str(fifo)] == ("transcript is a FIFO, not a regular file: its item is kept, "
                                 "with an empty one")
    assert all(p.severity == "warning" for p in dataset.problems)


def test_a_worker_rating_an_item_twice_counts_once_and_is_named_with_its_line(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    path = root / "Labels" / "labels_detailed.csv"
    lines = path.read_text().splitlines()
    lines += ["MSP-PODCAST_1000_0001.wav,WORKER00010; Angry; ; A:1.0; V:4.0; D:2.0;",
              " MSP-PODCAST_1000_0002.wav ,WORKER00099; Sad"]  # no secondary, no A/V/D
    path.write_text("\n".join(lines) + "\n")
    dataset = load_dataset("msp_podcast", root)
    items = by_id(dataset)
    np.testing.assert_array_equal(items["MSP-PODCAST_1000_0001"].votes, [0, 0, 1, 0, 0, 0, 0, 4])
    np.testing.assert_array_equal(items["MSP-PODCAST_1000_0002"].votes, [3, 1, 0, 0, 0, 1, 1, 0])
    [twice] = [p for p in dataset.problems if p.path == str(path)]
    assert (twice.line, twice.severity) == (len(lines) - 1, "warning")
    assert twice.message == "worker WORKER00010 rated MSP-PODCAST_1000_0001.wav twice; kept the first"


def test_a_split_it_does_not_know_is_refused_by_the_reader_itself():
    from harness.data import msp_podcast
    from harness.data.problems import ProblemLog

    with pytest.raises(ValueError, match=r"unknown MSP-Podcast split\(s\) \['Test4'\]"):
        msp_podcast.load(FIXTURES / "msp_podcast", ProblemLog(), split=["Test1", "Test4"])


def test_a_detailed_label_file_that_is_missing_or_a_fifo_is_named(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    detailed = root / "Labels" / "labels_detailed.csv"
    detailed.unlink()
    with pytest.raises(DataError, match="labels_detailed.csv: label file not found"):
        load_dataset("msp_podcast", root)
    os.mkfifo(detailed)
    with pytest.raises(DataError, match="labels_detailed.csv: label file is a FIFO, not a regular"):
        load_dataset("msp_podcast", root)


def test_a_file_listed_twice_in_the_consensus_file_is_kept_once_naming_the_line(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    path = root / "Labels" / "labels_consensus.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1].replace(",N,", ",A,")]) + "\n")
    dataset = load_dataset("msp_podcast", root)
    assert len(dataset) == 28 and by_id(dataset)["MSP-PODCAST_1000_0001"].meta["consensus"] == "N"
    [problem] = [p for p in dataset.problems if p.path == str(path)]
    assert (problem.line, problem.severity) == (len(lines) + 1, "error")
    assert problem.message == "duplicate file name MSP-PODCAST_1000_0001.wav, kept the first"


@pytest.mark.parametrize("detail", ["; Angry; ; A:1.0;", "A:4.0; Angry; ;", "WORKER00077; ; Sad;",
                                    "WORKER00077; V:2.0; D:5.0;", "WORKER00077"])
def test_an_emo_detail_without_a_worker_or_a_primary_emotion_is_a_malformed_row(tmp_path, detail):
    root = corpus_copy("msp_podcast", tmp_path)
    path = root / "Labels" / "labels_detailed.csv"
    path.write_text(path.read_text() + f"MSP-PODCAST_1000_0001.wav,{detail}\n")
    dataset = load_dataset("msp_podcast", root)
    [problem] = errors(dataset)
    assert problem.line == 174 and problem.message == f"malformed EmoDetail {detail!r}, row skipped"
    np.testing.assert_array_equal(by_id(dataset)["MSP-PODCAST_1000_0001"].votes,
                                  [0, 0, 1, 0, 0, 0, 0, 4])


def test_a_consensus_file_that_is_a_fifo_is_named_not_taken_for_a_missing_one(tmp_path):
    root = corpus_copy("msp_podcast", tmp_path)
    consensus = root / "Labels" / "labels_consensus.csv"
    consensus.unlink()
    os.mkfifo(consensus)  # opening it would block: it is never opened
    with pytest.raises(DataError, match="labels_consensus.csv: label file is a FIFO, not a "
                                        "regular file"):
        load_dataset("msp_podcast", root)
