"""``python -m harness.cache info``: a cache's entries by kind and model, read-only."""

import hashlib
import time

from harness.cache import GenerationCache
from harness.cache.__main__ import main
from harness.cache.info import cache_groups


def test_entries_are_counted_by_kind_and_model_and_the_file_is_only_read(tmp_path, capsys):
    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    cache.put_many("generation", "model-a", [(f"a{i}", {"text": "x" * 100}) for i in range(3)])
    cache.put_many("generation", "model-b", [("b0", {"text": "y"})])
    cache.put_many("labels", "model-a", [("l0", [0.1, 0.9])])
    cache.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    groups = [(g.kind, g.model, g.entries) for g in cache_groups(path)]
    assert groups == [("generation", "model-a", 3), ("generation", "model-b", 1),
                      ("labels", "model-a", 1)]
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: 5 entries, ") and out[1].split() == [
        "kind", "model", "entries", "MiB", "written"]
    assert out[2].split()[:3] == ["generation", "model-a", "3"] and len(out) == 5
    assert main(["info", str(tmp_path)]) == 0  # the folder --cache-dir names: its file
    assert capsys.readouterr().out.startswith(f"{path}: 5 entries, ")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_what_is_not_a_cache_is_refused_naming_it(tmp_path, capsys):
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    assert main(["info", str(other)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {other}: not a usable generation cache")
    assert other.read_text() == "not a database"
    assert main(["info", str(tmp_path / "none.sqlite")]) == 1
    assert "no such cache file" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["info", str(empty)]) == 1
    assert f"no such cache file: {empty / 'generations.sqlite'}" in capsys.readouterr().err


def test_the_default_cache_missing_here_says_where_it_is_looked_for(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a subfolder of the project, say
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no such cache file: .cache/harness/generations.sqlite (the grid's "
                          "default cache, in the project's folder: run this there")


def test_sizes_are_the_values_and_the_files_in_mib_and_the_days_when_written(tmp_path, capsys):
    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    cache.put_many("generation", "model-a", [(f"a{i}", {"text": "x" * 2**19}) for i in range(6)])
    cache.close()
    on_disk = sum(f.stat().st_size for f in tmp_path.iterdir() if f.name.startswith(path.name))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{path}: 6 entries, {on_disk / 2**20:,.1f} MiB on disk (with its "
                      "write-ahead log)") and on_disk > 3 * 2**20
    today = time.strftime("%Y-%m-%d")
    kind, model, entries, mib, first_day, _, to, last_day, _ = out[2].split()
    assert (kind, model, entries, to) == ("generation", "model-a", "6", "to")
    assert mib == "3.00" and first_day == last_day == today


def test_rows_another_program_wrote_with_odd_times_are_counted_and_their_times_shown_as_unknown(
        tmp_path, capsys):
    import sqlite3

    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    cache.put_many("generation", "model-a", [("a0", {"text": "x"})])
    cache.close()
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", [
            ("a1", "generation", "model-a", "{}", "yesterday"),
            ("b0", "labels", "model-b", "[]", 1e300), ("c0", "clip", "model-c", "{}", "soon")])
    db.close()
    assert main(["info", str(path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    today = time.strftime("%Y-%m-%d")
    assert [row[:3] for row in rows] == [["clip", "model-c", "1"], ["generation", "model-a", "2"],
                                        ["labels", "model-b", "1"]]
    assert rows[0][-3:] == ["?", "to", "?"] and rows[2][-3:] == ["?", "to", "?"]
    assert rows[1][4] == rows[1][7] == today  # the row with a time, not the text beside it


def test_an_empty_cache_is_one_line_and_the_columns_fit_the_longest_model(tmp_path):
    from harness.cache.info import info_lines

    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    cache.close()
    assert len(info_lines(path)) == 1 and ": 0 entries, " in info_lines(path)[0]
    cache = GenerationCache(path)
    cache.put_many("generation", "model-long", [("a", {"text": "x"})])
    cache.put_many("labels", "m", [("b", [0.5])])
    cache.close()
    lines = info_lines(path)
    assert lines[0].split(": ")[1].startswith("2 entries, ")
    assert lines[1] == "kind       model         entries      MiB  written"
    assert lines[2].startswith("generation model-long          1     0.00  ")
    assert lines[3].startswith("labels     m                   1     0.00  ")


def test_the_command_line_runs_as_a_module_and_asks_for_a_command(tmp_path):
    import subprocess
    import sys

    cache = GenerationCache(tmp_path / "generations.sqlite")
    cache.put_many("generation", "m", [("k", {"v": 1})])
    cache.close()

    def run(*args):
        return subprocess.run([sys.executable, "-m", "harness.cache", *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=60)

    done = run("info", str(tmp_path))
    assert done.returncode == 0 and done.stdout.startswith(f"{cache.path}: 1 entry, ")
    bare = run()
    assert bare.returncode == 2 and "the following arguments are required: command" in bare.stderr


def test_the_snapshots_an_api_model_s_generations_came_from_are_counted(tmp_path):
    """A cache holding answers of two snapshots of one alias says so before a rerun mixes them;
    a damaged row is passed over, and a model whose answers name none gets no line."""
    import sqlite3

    from harness.cache.info import info_lines, served_counts

    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    row = {"candidates": [], "usage": {}}
    cache.put_many("generation", "gpt-4o", [
        ("a", {**row, "served_by": "gpt-4o-audio-preview-2024-12-17"}),
        ("b", {**row, "served_by": "gpt-4o-audio-preview-2024-12-17"}),
        ("c", {**row, "served_by": "gpt-4o-audio-preview-2025-06-03"}),
        ("d", {**row, "served_by": 7})])
    cache.put_many("generation", "gemini-2.0-flash", [("e", {**row, "served_by": "g-001"})])
    cache.put_many("generation", "tiny", [("f", row)])
    cache.close()
    with sqlite3.connect(path) as db:  # a damaged row that still holds the name
        db.execute("""INSERT INTO entries (key, kind, model, value, created)
                      VALUES ('g', 'generation', 'gpt-4o', '{"served_by": "x", ', 0)""")
    assert served_counts(path) == {"gpt-4o": {"gpt-4o-audio-preview-2024-12-17": 2,
                                              "gpt-4o-audio-preview-2025-06-03": 1},
                                   "gemini-2.0-flash": {"g-001": 1}}
    lines = info_lines(path)
    assert lines[-2:] == [
        "gemini-2.0-flash's generations by the snapshot that gave them: g-001 1",
        "gpt-4o's generations by the snapshot that gave them: gpt-4o-audio-preview-2024-12-17 2, "
        "gpt-4o-audio-preview-2025-06-03 1 (more than one: a rerun on this cache mixes them)"]
    assert not any(line.startswith("tiny's") for line in lines)
