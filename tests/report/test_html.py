"""report.html's making, without a browser (``test_html_page.py`` opens it in one)."""

from urllib.parse import unquote, urljoin, urlparse

from harness.report.html import _relative_audio


def test_a_clips_path_reaches_it_from_the_report_whatever_its_characters(tmp_path):
    """A folder named ``take #2`` ended the clip's URL at ``#``; one named ``100%`` broke it."""
    clip = tmp_path / "take #2, 100% ?é" / "a.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"RIFF")
    run = tmp_path / "reports" / "run"
    run.mkdir(parents=True)
    src = _relative_audio({"audio": str(clip)}, run)["audio"]
    assert "#" not in src and "?" not in src and src.startswith("../../")
    assert unquote(urlparse(urljoin(run.as_uri() + "/", src)).path) == str(clip)  # as a browser
    assert _relative_audio({"audio": str(tmp_path / "gone.wav")}, run)["audio"] is None
    # paths no file can have, from a damaged items file: that item has no clip, the others keep
    # theirs (a NUL byte raised, dropping every item of the cell from the page)
    for impossible in ("a\x00b.wav", "x" * 100_000, "/" + "d/" * 3_000 + "a.wav", 7, None):
        assert _relative_audio({"audio": impossible}, run)["audio"] is None, impossible


def _record(model="scripted"):
    from harness.data import load_dataset
    from harness.runner.evaluate import evaluate
    from tests.fakes import ScriptedModel

    answer = [('{"Anger": 0.5, "Sadness": 0.5}', -1.0)]
    return evaluate(ScriptedModel(lambda r, d: answer, model), load_dataset("crema_d"), "base",
                    n_resamples=10)


def test_names_are_text_in_the_page_never_markup(tmp_path):
    from harness.record import write_record
    from harness.report import build_report

    evil = '<img src=x onerror="alert(1)">'
    write_record(_record(evil), tmp_path / "run")
    build_report(tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    assert evil not in page and "&lt;img src=x onerror=" in page  # the tables' text, escaped
    assert "\\u003cimg src=x" in page  # and in the cells' JSON, where no tag can close its script


def test_a_cells_items_and_prompt_templates_go_into_the_page_and_a_cell_without_them_is_marked(
        tmp_path):
    import json
    import re

    import pytest

    from harness.record import write_record
    from harness.report.html import _items_blob, _script_json, render_html
    from harness.report.tables import TABLES

    run = tmp_path / "run"
    written, bare = _record(), _record("bare")
    write_record(written, run)
    blob, header, left_out = _items_blob(run, written)
    assert blob and header["prompt_templates"] and left_out == []
    assert _items_blob(run, bare) == ("", {}, [])
    tables = {name: build([written, bare]) for name, build in TABLES.items()}
    page = render_html(run, [written, bare], tables, {})
    cells = json.loads(re.search(r'id="cells-data"[^>]*>(.*?)</script>', page).group(1))
    assert [c["has_items"] for c in cells] == [True, False]
    templates = json.loads(re.search(r'id="templates-data"[^>]*>(.*?)</script>', page).group(1))
    assert templates == [header["prompt_templates"], {}]
    assert _script_json("</script>") == '"\\u003c/script\\u003e"'
    with pytest.raises(ValueError):  # NaN is not JSON: the page's parser would refuse it all
        _script_json({"js": float("nan")})


def test_a_damaged_line_of_an_items_file_costs_its_item_alone_and_is_named(tmp_path):
    """A line out of JSON's range (1e999), one that is no object, one that is not UTF-8: the
    page keeps the cell's other items and says which lines it left out (it dropped them all)."""
    import base64
    import gzip
    import json

    from harness.record import items_path, write_record
    from harness.report.html import _items_blob

    run = tmp_path / "run"
    record = _record()
    path = items_path(write_record(record, run))
    lines = path.read_bytes().splitlines()
    lines[2], lines[4], lines[5] = b'{"id": 1e999}', b"[1, 2]", b'{"id": "\xff"}'
    path.write_bytes(b"\n".join(lines) + b"\n")
    blob, header, left_out = _items_blob(run, record)
    kept = [json.loads(line) for line in gzip.decompress(base64.b64decode(blob)).splitlines()]
    assert len(kept) == len(lines) - 1 - 3 and header["cell"] == record.cell
    assert [why.split(": ")[0] for why in left_out] == [f"{path}, line {n}" for n in (3, 5, 6)]
    path.write_bytes(b'{"schema_version": 0}\n')  # not this schema's: no items, and why
    assert _items_blob(run, record)[::2] == ("", [f"{path}: not an items file of schema version 1"])
