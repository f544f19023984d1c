"""Files written whole or not at all: a write that fails leaves the old file and no leftovers."""

import errno

import pytest

from harness._atomic import write_whole


def test_text_pieces_bytes_and_text_are_written_as_given(tmp_path):
    path = tmp_path / "f.csv"
    assert write_whole(path, iter(["a,b\r\n", "é\n"])) == path
    assert path.read_bytes() == "a,b\r\né\n".encode()  # no newline translated
    write_whole(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    write_whole(path, "whole")
    assert path.read_text() == "whole"


def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("the old record")

    def pieces():
        yield "the new rec"
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        write_whole(path, pieces())
    assert path.read_text() == "the old record" and sorted(tmp_path.iterdir()) == [path]
