"""Files that are what they claim (harness._regular): what is not a regular file is named for
what it is, found by ``stat`` without opening it, so that no reader waits on a FIFO."""

import os

import pytest

from harness._regular import (
    irregular_entries,
    not_a_folder,
    not_a_regular_file,
    open_regular,
    read_regular,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


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


def test_what_is_not_a_folder_is_named_for_what_it_is(tmp_path):
    """A corpus root or a weights folder given as a file is not "no such folder": what is there
    is named."""
    (tmp_path / "labels.csv").write_text("a,b\n")
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path, tmp_path / "linked")
    assert not_a_folder(tmp_path) is None and not_a_folder(tmp_path / "linked") is None
    assert not_a_folder(tmp_path / "gone") == "no such folder"
    assert not_a_folder(tmp_path / "labels.csv") == "is a regular file, not a folder"
    assert not_a_folder(tmp_path / "fifo") == "is a FIFO, not a folder"
    assert not_a_folder("/dev/null") == "is a character device, not a folder"
    assert not_a_folder(tmp_path / "labels.csv" / "x") == "cannot be examined (Not a directory)"


def test_a_fifo_found_where_a_file_was_is_refused_and_its_descriptor_closed(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(OSError, match="fifo is not a regular file"):
            open_regular(tmp_path / "fifo")
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_folders_entries_that_are_no_regular_files_are_named_by_their_kind(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "shards").mkdir()  # a folder inside a checkpoint is no damage
    os.mkfifo(tmp_path / "processor_config.json")
    os.symlink(tmp_path / "config.json", tmp_path / "linked.json")  # followed, as a reader would
    os.symlink(tmp_path / "gone.json", tmp_path / "dangling.json")  # its reader says "not found"
    assert irregular_entries(tmp_path) == ["processor_config.json is a FIFO, not a regular file"]
    os.mkfifo(tmp_path / "a.bin")
    assert irregular_entries(tmp_path) == ["a.bin is a FIFO, not a regular file",
                                           "processor_config.json is a FIFO, not a regular file"]
    assert irregular_entries(tmp_path / "config.json") == []
    assert irregular_entries(tmp_path / "a.bin") == ["a.bin is a FIFO, not a regular file"]
    assert irregular_entries(tmp_path / "missing") == []


def test_a_regular_file_is_read_and_anything_else_refused_by_its_kind(tmp_path):
    (tmp_path / "x.json").write_bytes(b"{}")
    os.mkfifo(tmp_path / "fifo")
    assert read_regular(tmp_path / "x.json") == b"{}"
    with pytest.raises(OSError, match="^is a FIFO, not a regular file$"):
        read_regular(tmp_path / "fifo")
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "gone.json")
