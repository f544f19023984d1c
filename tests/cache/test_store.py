"""``harness.cache.store``: the SQLite file several processes write at once, and rows that read
back as they were written."""

import json
import math
import multiprocessing
import sqlite3

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from harness.cache import GenerationCache, cached_generate
from harness.models.api import Decoding, Request
from tests.fakes import ScriptedModel


def _writer(path, worker, rows):
    cache = GenerationCache(path)
    for start in range(0, rows, 50):
        cache.put_many("generation", f"w{worker}",
                       [(f"{worker}-{i}", {"worker": worker, "i": i}) for i in range(start, start + 50)])


def test_four_processes_writing_at_once_lose_nothing(tmp_path, record_property):
    path = tmp_path / "shared.sqlite"  # created by the four of them at once
    rows = 2500
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, rows)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = GenerationCache(path)
    assert len(cache) == 4 * rows
    keys = [f"{w}-{i}" for w in range(4) for i in range(rows)]
    found = cache.get_many(keys)
    assert all(found[f"{w}-{i}"] == {"worker": w, "i": i} for w in range(4) for i in range(rows))
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    record_property("reliability", f"concurrency: 4 processes created and wrote the cache at once, "
                                   f"{4 * rows} rows, {len(found)} read back intact, integrity ok")


def test_rows_beyond_strict_json_read_back_as_they_were_written(tmp_path):
    """A beam without a log-likelihood (-inf, NaN) and a lone surrogate in a text (what a
    server's "\\ud800" decodes to) are stored as the standard library writes them; orjson, which
    reads the other rows, refuses these, and they are read back unchanged all the same."""
    import math

    def odd(request, decoding):
        return [("\ud800 {\"Anger\": 1} Ä", -math.inf), ("plain", math.nan), ("x", -1.5)]

    path = tmp_path / "cache.sqlite"
    model = ScriptedModel(odd)
    reqs = [Request(np.full(160, i, np.float32), f"prompt {i}", f"item{i}") for i in range(2)]
    first = cached_generate(model, reqs, Decoding(mode="beam", num_candidates=3),
                            GenerationCache(path))
    cache = GenerationCache(path)
    again = cached_generate(model, reqs, Decoding(mode="beam", num_candidates=3), cache)
    assert model.requests == 2 and cache.hits == 2 and cache.damaged == 0
    for before, after in zip(first, again):
        assert [c.text for c in after.candidates] == [c.text for c in before.candidates]
        [inf, nan, finite] = [c.logprob for c in after.candidates]
        assert inf == -math.inf and math.isnan(nan) and finite == -1.5


row_values = st.recursive(  # NaN and ±inf drawn on purpose: st.floats() gave one in 100 rows
    st.none() | st.booleans() | st.integers() | st.floats()  # integers over 64 bits too
    | st.sampled_from([math.nan, math.inf, -math.inf])
    | st.text(alphabet=st.characters(exclude_categories=())),  # lone surrogates too
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text() | st.integers(), inner, max_size=4), max_leaves=20)


@given(row_values)
@example([-math.inf, None, {"logprob": math.nan}])  # a beam without α beside a JSON null
@example({"0": None, 0: None})  # two keys written as one: read back, the last one stays
def test_a_row_reads_back_as_the_standard_library_wrote_it(value):
    """Rows are written by orjson where it writes what the standard library would (no null, so
    no non-finite number; nothing it refuses), else by the standard library: whichever wrote
    it, the row reads back as ``json`` wrote and read it."""
    from harness.cache.store import _row_text, _row_value

    as_json = json.dumps(json.loads(json.dumps(value, allow_nan=True)), allow_nan=True)
    assert json.dumps(_row_value(_row_text(value)), allow_nan=True) == as_json


def test_put_many_says_whether_its_rows_were_stored_and_a_new_file_its_schema(tmp_path):
    """The clip rows are marked recorded only where ``put_many`` says they were stored; a new
    file carries its schema's version, so that an older harness refuses what a newer wrote."""
    import pytest

    from harness.cache.store import SCHEMA_VERSION

    cache = GenerationCache(tmp_path / "c.sqlite")
    assert cache.put_many("generation", "m", []) is True
    assert cache.put_many("generation", "m", [("k", {"a": 1})]) is True
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count={pages}")  # the next page written fails: disk full
    with pytest.warns(UserWarning, match="1 results not stored"):
        assert cache.put_many("generation", "m", [("big", "x" * 100_000)]) is False
    cache._db.execute("PRAGMA max_page_count=1073741823")  # room again: the failed write's
    assert cache.put_many("generation", "m", [("big", "x" * 100_000)]) is True  # transaction
    assert cache.get_many(["k", "big"]) == {"k": {"a": 1}, "big": "x" * 100_000}  # was undone


def test_rows_that_fail_midway_are_all_undone_and_the_cache_still_takes_writes(tmp_path):
    """A merge whose source fails after some rows (a damaged source file) adds none of them,
    and leaves no transaction open to refuse the next write."""
    import pytest

    def failing_rows():
        yield ("first", "generation", "m", '{"a": 1}', 0.0)
        raise sqlite3.DatabaseError("database disk image is malformed")

    cache = GenerationCache(tmp_path / "c.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        cache.add_rows(failing_rows())
    assert len(cache) == 0
    assert cache.put_many("generation", "m", [("k", {"b": 2})]) is True
    assert cache.get_many(["first", "k"]) == {"k": {"b": 2}}


def test_a_removal_that_fails_removes_nothing_says_why_and_leaves_the_cache_taking_writes(tmp_path):
    import pytest

    cache = GenerationCache(tmp_path / "c.sqlite")
    cache.put_many("generation", "m", [("k", {"a": 1})])
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        cache.remove("no_such_column = ?", (1,))
    assert cache.put_many("generation", "m", [("j", 2)]) is True
    assert cache.get_many(["k", "j"]) == {"k": {"a": 1}, "j": 2}
    assert cache.remove("model = ?", ("m",)) == (2, True)


def test_missing_and_get_many_see_every_key_across_their_chunks_of_500(tmp_path):
    cache = GenerationCache(tmp_path / "deep" / "er" / "c.sqlite")  # its folders made for it
    keys = [f"k{i}" for i in range(1_201)]
    stored = {0, 1, 499, 500, 501, 999, 1_000, 1_200}
    cache.put_many("generation", "m", [(keys[i], i) for i in stored])
    assert cache.missing(keys) == {k for i, k in enumerate(keys) if i not in stored}
    assert cache.get_many(keys) == {keys[i]: i for i in stored}


def test_a_removal_whose_space_cannot_be_given_back_says_so(tmp_path):
    """Another run writing the file as the space is given back: the entries are removed all the
    same, and the answer says the space stays."""

    class VacuumRefused:
        def __init__(self, db):
            self.db = db

        def execute(self, statement, *args):
            if statement == "VACUUM":
                raise sqlite3.OperationalError("database is locked")
            return self.db.execute(statement, *args)

    cache = GenerationCache(tmp_path / "c.sqlite")
    cache.put_many("generation", "m", [("k", 1), ("j", 2)])
    cache._db = VacuumRefused(cache._db)
    assert cache.remove("key = ?", ("k",)) == (1, False)
    assert cache.get_many(["k", "j"]) == {"j": 2}


class _LockedFor:
    """A connection whose ``execute`` fails ``times`` times with ``error``, then succeeds."""

    def __init__(self, times: int, error: str) -> None:
        self.left, self.error, self.calls = times, error, 0

    def execute(self, statement):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise sqlite3.OperationalError(self.error)


def test_a_lock_is_waited_for_until_the_timeout_and_any_other_error_raised_at_once(tmp_path):
    """Several processes switching a new file to WAL at once: SQLite answers "locked" at once."""
    import time

    import pytest

    cache = GenerationCache(tmp_path / "c.sqlite")
    cache._db = _LockedFor(3, "database is locked")
    cache._retry_locked("PRAGMA journal_mode=WAL", timeout=30)
    assert cache._db.calls == 4
    cache._db = _LockedFor(1, "disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        cache._retry_locked("PRAGMA journal_mode=WAL", timeout=30)
    assert cache._db.calls == 1
    cache._db = _LockedFor(10**9, "database is locked")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        cache._retry_locked("PRAGMA journal_mode=WAL", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 5 and cache._db.calls > 2


def test_a_folder_fifo_or_device_where_the_cache_file_should_be_is_refused_as_such(tmp_path):
    """By its kind (SQLite says "disk I/O error" of a FIFO), and only a folder is to be deleted."""
    import os

    import pytest

    from harness.cache.store import CacheError

    with pytest.raises(CacheError, match="is a directory, not a cache file: delete it or give "
                                         "another --cache-dir"):
        GenerationCache(tmp_path)
    os.mkfifo(tmp_path / "fifo.sqlite")
    with pytest.raises(CacheError, match="fifo.sqlite: is a FIFO, not a cache file: give another "
                                         "--cache-dir$"):
        GenerationCache(tmp_path / "fifo.sqlite")
    with pytest.raises(CacheError, match="^/dev/null: is a character device, not a cache file: "
                                         "give another --cache-dir$"):
        GenerationCache("/dev/null")


def test_a_cache_path_under_the_home_folder_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = GenerationCache("~/caches/generations.sqlite")
    assert cache.path == str(tmp_path / "caches" / "generations.sqlite")
    assert (tmp_path / "caches" / "generations.sqlite").is_file()


def test_a_cache_this_user_cannot_write_is_said_to_be_so_never_to_be_deleted(tmp_path):
    """As root the tests cannot be refused by permissions; SQLite's own refusal is taken from a
    connection opened read-only."""
    from harness.cache.store import _unusable

    path = tmp_path / "x.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (a)")
    db.close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        read_only.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        refused = exc
    read_only.close()
    for exc in (refused, PermissionError(13, "Permission denied")):
        assert _unusable(exc).startswith("cannot be written here (")
        assert "give a --cache-dir it can write" in _unusable(exc) and "delete" not in _unusable(exc)
    assert _unusable(sqlite3.DatabaseError("file is not a database")) == (
        "not a usable generation cache (file is not a database); delete it or give another "
        "--cache-dir")
