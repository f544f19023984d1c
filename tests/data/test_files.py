"""Label files as releases ship them (harness.data._files): a CSV's header is read as written,
padding aside, and one lacking a column is refused naming the columns it has."""


import pytest

from harness.data._files import read_csv
from harness.data.problems import DataError, ProblemLog


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
