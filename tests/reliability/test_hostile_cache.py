"""A damaged generation cache loses nothing computed: unreadable rows are recomputed, an unusable
file is refused at opening naming it, and a failed write leaves the results with the run."""

import json
import sqlite3

import numpy as np
import pytest

from harness.cache import SCHEMA_VERSION, CacheError, GenerationCache, cached_generate
from harness.models.api import Decoding, Request
from harness.runner import Cell, GridConfig, GridWorker
from tests.fakes import ScriptedModel

ANSWER = [('{"Anger": 0.5, "Sadness": 0.5}', -1.0)]


def requests(n: int = 9) -> list[Request]:
    return [Request(np.full(160, i, np.float32), f"prompt {i}", f"item{i}") for i in range(n)]


def filled(path) -> list:
    """A cache at ``path`` holding nine generations; returns them."""
    cache = GenerationCache(path)
    out = cached_generate(ScriptedModel(lambda r, d: ANSWER), requests(), Decoding(), cache)
    cache.close()
    return out


def damage_rows(path, values: list[str]) -> None:
    db = sqlite3.connect(path)
    keys = [k for (k,) in db.execute("SELECT key FROM entries ORDER BY key")]
    for key, value in zip(keys, values):
        db.execute("UPDATE entries SET value = ? WHERE key = ?", (value, key))
    db.commit()
    db.close()


def test_unreadable_rows_are_recomputed_and_counted(tmp_path, caplog, record_property):
    path = tmp_path / "c.sqlite"
    first = filled(path)
    good = json.loads(sqlite3.connect(path).execute("SELECT value FROM entries").fetchone()[0])
    extra = dict(good, candidates=[dict(good["candidates"][0], surprise=1)])
    huge = dict(good, candidates=[dict(good["candidates"][0], logprob=-(10**400))])
    damage_rows(path, ["{not json", json.dumps(extra), json.dumps({"candidates": "x"}),
                       json.dumps({"usage": {}}), "[" * 100_000,  # too deep to read
                       json.dumps(huge),  # a number no float holds
                       # each of these two sank the whole cell (found by setting every field of
                       # a row to each odd value in turn)
                       json.dumps(dict(good, candidates=[dict(good["candidates"][0], n_tokens="x")])),
                       json.dumps(dict(good, candidates=[dict(good["candidates"][0], logprob=None)]))])
    model = ScriptedModel(lambda r, d: ANSWER)
    cache = GenerationCache(path)
    again = cached_generate(model, requests(), Decoding(), cache)
    assert again == first and model.requests == 8  # the eight damaged rows, and only those
    assert (cache.damaged, cache.hits, cache.misses) == (8, 1, 8)
    assert caplog.text.count("unreadable cache row") == 8 and str(path) in caplog.text
    assert "candidate 0: its token count is a str" in caplog.text
    assert "candidate 0: its log-likelihood is a NoneType" in caplog.text
    assert "nested deeper than the JSON reader goes" in caplog.text
    assert "an integer of 401 digits, beyond a double's range" in caplog.text
    assert cached_generate(model, requests(), Decoding(), GenerationCache(path)) == first
    assert model.requests == 8  # rewritten: the next run finds them all
    record_property("reliability", "hostile cache: 8 damaged rows recomputed and rewritten, 5 "
                                   "unusable files refused at opening naming them, a full disk "
                                   "warned with every result kept, results lost 0")


def test_a_damaged_page_is_computed_again_and_the_run_goes_on(tmp_path, caplog, capsys):
    """Pages overwritten in the middle of the file: SQLite answers "database disk image is
    malformed" only when a lookup reaches them (the file opens): a lookup that fails is a
    miss, said once per lookup naming the file, not an exception out of the run."""
    long_answer = [(ANSWER[0][0] + " " * 500, -1.0)]
    asked = requests(400)
    path = tmp_path / "c.sqlite"
    cache = GenerationCache(path)
    first = cached_generate(ScriptedModel(lambda r, d: long_answer), asked, Decoding(), cache)
    cache.close()
    size = path.stat().st_size
    assert size > 200_000
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(bytes(range(256)) * 32)
    model = ScriptedModel(lambda r, d: long_answer)
    cache = GenerationCache(path)
    with pytest.warns(UserWarning, match="results not stored"):  # the damaged file refuses them
        again = cached_generate(model, asked, Decoding(), cache)
    assert again == first and model.requests == cache.unreadable == 400
    assert f"{path}: 400 entries cannot be read (database disk image is malformed)" in caplog.text
    from harness.cache.__main__ import main  # the cache's commands say so too, changing nothing

    before = path.read_bytes()
    for command in (["info", str(path)], ["prune", str(path), "--model", "scripted"],
                    ["merge", str(tmp_path / "new.sqlite"), str(path)]):
        assert main(command) == 1
        assert (f"{path}: cannot be read (database disk image is malformed): the file is damaged"
                f" (sqlite3's PRAGMA integrity_check says where); nothing was changed"
                ) in capsys.readouterr().err
    assert path.read_bytes() == before and len(GenerationCache(tmp_path / "new.sqlite")) == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "directory", "newer version",
                                    "extra column"])
def test_an_unusable_file_is_refused_at_opening_naming_it(tmp_path, damage):
    path = tmp_path / "c.sqlite"
    filled(path)
    if damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "directory":
        path = tmp_path / "folder.sqlite"
        path.mkdir()
    else:
        db = sqlite3.connect(path)
        if damage == "newer version":
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        else:
            db.execute("ALTER TABLE entries ADD COLUMN tokens INTEGER")
        db.commit()
        db.close()
    with pytest.raises(CacheError, match=f"^{path}: .*(give another --cache-dir|delete it)"):
        GenerationCache(path)


def test_a_full_disk_is_a_warning_and_the_results_stay(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = GenerationCache(path)
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count={pages}")  # the next page written fails: disk full
    model = ScriptedModel(lambda r, d: [("x" * 5000, -1.0)])
    with pytest.warns(UserWarning, match=f"{path}: 6 results not stored .*full"):
        out = cached_generate(model, requests(6), Decoding(), cache)
    assert len(out) == 6 and all(g.candidates[0].text == "x" * 5000 for g in out)


def test_chance_baselines_need_no_cache(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "generations.sqlite").write_bytes(b"garbage" * 100)
    worker = GridWorker(tmp_path / "run", cache_dir, GridConfig(models=("uniform",)))
    record, path = worker.run(Cell("uniform", "crema_d", "base"))
    assert path.is_file() and record.metrics.valid == 1.0
    with pytest.raises(CacheError, match="generations.sqlite: not a usable generation cache"):
        _ = worker.cache
