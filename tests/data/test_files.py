"""Label files as releases ship them (harness.data._files): what is not a regular file is named
for what it is, found without opening it; a CSV's header is read as written, padding aside, and
one lacking a column is refused naming the columns it has."""

import os

import pytest

from harness._regular import not_a_regular_file
from harness.data._files import read_csv
from harness.data.problems import DataError, ProblemLog


def test_what_is_not_a_regular_file_is_named_for_what_it_is(tmp_path):
    regular = tmp_path / "labels.csv"
    regular.write_text("a,b\n")
    os.mkfifo(tmp_path / "fifo")
    assert not_a_regular_file(regular) is None
    assert not_a_regular_file(tmp_path / "gone.csv") == "not found"
    assert not_a_regular_file(tmp_path) == "is a directory, not a regular file"
    assert not_a_regular_file(tmp_path / "fifo") == "is a FIFO, not a regular file"
    assert not_a_regular_file("/dev/null") == "is a character device, not a regular file"
    # a path through a file: stat fails otherwise than "not found", and says how
    assert not_a_regular_file(regular / "child") == "cannot be examined (Not a directory)"


def test_a_csv_header_is_read_without_its_padding_and_a_missing_column_is_refused(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(" FileName ,EmoClass\nclip.wav,A\n")
    frame = read_csv(path, ["FileName", "EmoClass"], ProblemLog())
    assert list(frame.columns) == ["FileName", "EmoClass"]
    assert frame["FileName"].tolist() == ["clip.wav"]
    with pytest.raises(DataError) as refused:
        read_csv(path, ["FileName", "Split_Set"], ProblemLog())
    assert refused.value.line == 1
    assert str(refused.value) == (f"{path}:1: missing column(s) ['Split_Set']; found "
                                  "['FileName', 'EmoClass']")


@pytest.mark.parametrize("text", ["", 'FileName,EmoClass\n"clip.wav,A\n'])
def test_a_csv_that_cannot_be_parsed_is_refused_naming_the_file(tmp_path, text):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=f"^{path}: not a readable CSV: "):
        read_csv(path, ["FileName"], ProblemLog())


def test_a_fifo_found_where_a_file_was_is_refused_and_its_descriptor_closed(tmp_path):
    from harness._regular import open_regular

    os.mkfifo(tmp_path / "fifo")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(OSError, match="fifo is not a regular file"):
            open_regular(tmp_path / "fifo")
    assert len(os.listdir("/proc/self/fd")) == before
