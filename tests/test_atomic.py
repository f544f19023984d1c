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


def test_a_path_may_be_text_and_a_write_failing_before_its_temporary_file_raises_its_own_error(
        tmp_path):
    path = tmp_path / "f.json"
    assert write_whole(str(path), "x") == path and path.read_text() == "x"
    with pytest.raises(FileNotFoundError) as raised:  # no folder: no temporary file to remove
        write_whole(tmp_path / "missing" / "f.json", b"x")
    assert raised.value.__context__ is None  # the write's error, not one from the clean-up
