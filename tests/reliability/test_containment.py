"""Paths stay inside the corpus, nothing is pickled, remote code needs an opt-in, keys never leak."""

import json
import logging
import shutil
import sqlite3

import numpy as np
import pytest

from harness import evaluate
from harness.cache import GenerationCache
from harness.data import load_dataset
from harness.record import write_record
from harness.report.build import build_report
from tests.helpers import corpus_copy

KEY = "sk-" + "test-PLANTEDKEY-reliability-0123456789"  # a fake, built so no scanner flags it


def test_label_files_naming_paths_outside_the_root_are_refused(tmp_path, record_property):
    tried = refused = 0
    for corpus, rels, old in (
        ("crema_d", ["processedResults/tabulatedVotes.csv"], '"1008_ITS_SAD_XX"'),
        ("msp_podcast", ["Labels/labels_consensus.csv", "Labels/labels_detailed.csv"],
         "MSP-PODCAST_1000_0001.wav"),
    ):
        for bad in ("../../etc/passwd", "/etc/passwd", "../../../../../../etc/shadow"):
            root = corpus_copy(corpus, tmp_path / f"{corpus}{tried}")
            new = f'"{bad}"' if old.startswith('"') else bad
            for rel in rels:
                path = root / rel
                path.write_text(path.read_text().replace(old, new))
            dataset = load_dataset(corpus, root)
            # whatever the name, every path the loader hands out stays inside the root
            assert all(root.resolve() in item.audio_path.resolve().parents for item in dataset)
            if ".." in bad:  # ("/etc/passwd" only names AudioWAV/etc/passwd.wav, inside)
                assert any("leaves the corpus root" in p.message and p.line
                           for p in dataset.problems)
                refused += 1
            tried += 1
    record_property("reliability", f"containment: {tried} label rows naming other paths, "
                                   f"{refused} climbing out of the root refused with file and "
                                   "line, 0 paths outside the root handed out")


def test_links_the_corpus_owner_made_inside_the_root_are_followed(tmp_path):
    """An audio folder linked to another disk, and clips that are links into a download cache
    (as the Hugging Face cache keeps its files), load as laid out: only a name in a label file
    is judged, and it stays inside the root."""
    plain = load_dataset("msp_podcast", corpus_copy("msp_podcast", tmp_path / "plain"))
    root = corpus_copy("msp_podcast", tmp_path / "linked")
    other_disk = tmp_path / "other-disk" / "Audios"
    other_disk.parent.mkdir()
    shutil.move(root / "Audios", other_disk)
    (root / "Audios").symlink_to(other_disk, target_is_directory=True)
    crema = corpus_copy("crema_d", tmp_path / "crema")
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for clip in sorted((crema / "AudioWAV").iterdir()):
        clip.rename(blobs / clip.name.encode().hex())
        clip.symlink_to(blobs / clip.name.encode().hex())
    for linked, reference in ((load_dataset("msp_podcast", root), plain),
                              (load_dataset("crema_d", crema), load_dataset("crema_d"))):
        assert [p.message for p in linked.problems] == [p.message for p in reference.problems]
        assert all(p.severity == "warning" for p in linked.problems) and linked.ids == reference.ids
        np.testing.assert_array_equal(linked[0].load_audio(), reference[0].load_audio())
        assert linked.manifest_hash() == reference.manifest_hash()


def test_a_runs_files_hold_no_pickles_and_no_key(tmp_path, caplog, record_property):
    pytest.importorskip("openai", reason="the api extra is not installed")
    from harness.models import get_model
    from tests.api_servers import ScriptedServer

    caplog.set_level(logging.DEBUG)
    dataset = load_dataset("crema_d")[:5]
    cache = GenerationCache(tmp_path / "cache" / "generations.sqlite")
    run = tmp_path / "reports" / "run"
    with ScriptedServer("openai", ["400-echo", "ok", "500", "ok", "ok", "ok"]) as server:
        model = get_model("gpt-4o", api_key=KEY, base_url=server.url + "/v1", max_retries=0,
                          concurrency=1)
        for predictor in (model, "uniform"):
            write_record(evaluate(predictor, dataset, "base", cache=cache, n_resamples=100), run)
    build_report(run)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        assert KEY.encode() not in data, path
        assert not data.startswith(b"\x80") and path.suffix not in (".pkl", ".pickle"), path
    for (value,) in sqlite3.connect(cache.path).execute("SELECT value FROM entries"):
        json.loads(value)  # every cached row is JSON
    assert KEY not in caplog.text
    errors = json.loads((run / "cells" / "gpt-4o-crema_d-base.json").read_text())["metrics"]["errors"]
    record_property("reliability", f"secrets: a planted key sent on {len(server.requests)} requests "
                                   f"({errors} failing, one echoing it) found in 0 of {len(files)} "
                                   "files written and in no captured log; 0 pickles")


def test_no_backend_runs_a_checkpoints_own_code(monkeypatch, tmp_path, capfd):
    """Not even Ultravox, whose published config maps its classes to the code it ships; nor
    does loading it stop to ask whether to run that code."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    import transformers.dynamic_module_utils as dynamic

    from fixtures import tiny_architectures
    from harness.models import get_model

    def refuse(*args, **kwargs):
        raise AssertionError(f"a checkpoint's own code was loaded: {args}")

    monkeypatch.setattr(dynamic, "get_class_from_dynamic_module", refuse)
    get_model("tiny-qwen2-audio")
    get_model("ultravox-v0.4", path=tiny_architectures.build_ultravox(tmp_path), device="cpu")
    printed = "".join(capfd.readouterr())
    assert "custom code" not in printed, printed
