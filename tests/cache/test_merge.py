"""``python -m harness.cache merge``: the caches of several machines become one."""

from harness.cache import GenerationCache


def test_caches_of_several_machines_merge_into_one(tmp_path, capsys):
    from harness.cache.__main__ import main

    rows = {f"k{i}": {"v": i} for i in range(6)}
    for name, keys in (("a", ["k0", "k1", "k2"]), ("b", ["k2", "k3", "k4", "k5"])):
        cache = GenerationCache(tmp_path / name / "generations.sqlite")
        cache.put_many("generation", "m", [(k, rows[k]) for k in keys])
        cache.close()
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "a" / "generations.sqlite"),
                 str(tmp_path / "b" / "generations.sqlite")]) == 0
    merged = GenerationCache(tmp_path / "all.sqlite")
    assert merged.get_many(list(rows)) == rows
    merged.close()
    (tmp_path / "junk.sqlite").write_text("not a database")
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "junk.sqlite")]) == 1
    # a mistyped source is refused, not opened (which made an empty cache there: "0 entries")
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "typo.sqlite")]) == 1
    assert not (tmp_path / "typo.sqlite").exists()
    assert "no such cache file" in capsys.readouterr().err


def test_a_refused_source_leaves_no_target_behind(tmp_path, capsys):
    from harness.cache.__main__ import main

    (tmp_path / "junk.sqlite").write_text("not a database")
    (tmp_path / "folder").mkdir()
    for source in ("junk.sqlite", "folder"):
        assert main(["merge", str(tmp_path / "new.sqlite"), str(tmp_path / source)]) == 1
        assert not (tmp_path / "new.sqlite").exists()  # no empty cache made for nothing
    err = capsys.readouterr().err
    assert "junk.sqlite: not a usable generation cache" in err and "folder: is a directory" in err
