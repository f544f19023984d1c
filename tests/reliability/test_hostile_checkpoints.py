"""A local model's folder damaged as copies and downloads damage them: a shard cut short, a
config or tokenizer cut, no config at all, a variable naming no folder, a FIFO where a file was
(its reader would wait for ever). Each fails the model's
cells with the reason, naming the folder, without a traceback; the model is tried once for all
its cells (a 7B checkpoint took minutes a try); and a folder without config.json is refused before
transformers builds anything (it built Qwen2-Audio's default configuration, 7B parameters, and
filled it: 33 GB and a kill on a 24 GB machine)."""

import os
import shutil

import pytest

pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness import embedded_path  # noqa: E402
from harness.models import Decoding, ModelNotLoaded, registry  # noqa: E402
from harness.models._hf_common import load_weights  # noqa: E402
from harness.runner import GridConfig, GridWorker  # noqa: E402
from tests.helpers import returns_in_time  # noqa: E402


def _cut(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def _fifo_named(name):
    return (lambda folder: _fifo(folder / name),
            f"the checkpoint in {{folder}} cannot be read: {name} is a FIFO, not a regular file")


DAMAGE = {
    "a shard cut short": (lambda folder: _cut(folder / "model.safetensors", 100_000),
                          "the weights in {folder} could not be read (SafetensorError: "),
    "a config cut": (lambda folder: (folder / "config.json").write_text('{"model_type": "qwen'),
                     "{folder}/config.json' is not a valid JSON file"),
    "a config nested too deep": (  # a RecursionError out of transformers' reading
        lambda folder: (folder / "config.json").write_text("[" * 100_000),
        ("could not be read (RecursionError: ", "; config.json is not JSON); copy them again")),
    "no config": (lambda folder: (folder / "config.json").unlink(),
                  "{folder} has no config.json: not a checkpoint folder"),
    "a tokenizer cut": (lambda folder: _cut(folder / "tokenizer.json", 5_000),
                        ("the processor files in {folder} could not be read (JSONDecodeError: ",
                         "; tokenizer.json is not JSON); copy them again")),
    "no such folder": (lambda folder: shutil.rmtree(folder),
                       "QWEN2_AUDIO_7B_PATH={folder}: no such folder"),
    "a config that is a FIFO": _fifo_named("config.json"),
    "a processor config that is a FIFO": _fifo_named("processor_config.json"),
    "a tokenizer that is a FIFO": _fifo_named("tokenizer.json"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_fails_each_cell_with_its_reason_loading_once(damage, tmp_path,
                                                                          monkeypatch):
    folder = tmp_path / "qwen2-audio"
    shutil.copytree(embedded_path("tiny_qwen2_audio"), folder)
    spoil, says = DAMAGE[damage]
    spoil(folder)
    monkeypatch.setenv("QWEN2_AUDIO_7B_PATH", str(folder))
    tries = []
    load = registry.get_model
    monkeypatch.setattr(registry, "get_model", lambda *a, **k: tries.append(a) or load(*a, **k))
    worker = GridWorker(tmp_path / "run", tmp_path / "cache", GridConfig(models=("qwen2-audio-7b",)))
    for _ in range(3):  # three cells of the model, each asking it for an answer
        with pytest.raises(ModelNotLoaded, match="^qwen2-audio-7b") as raised:
            returns_in_time(lambda: worker.model("qwen2-audio-7b").generate([], Decoding()))
        for fragment in (says,) if isinstance(says, str) else says:
            assert fragment.format(folder=folder) in str(raised.value)
    assert len(tries) == (damage != "no such folder")  # finding the folder refused that one


def test_a_folder_without_a_config_is_refused_before_transformers_builds_anything(tmp_path):
    class Loader:  # transformers' from_pretrained would build the class's default config
        called = False

        @classmethod
        def from_pretrained(cls, *args, **kwargs):
            cls.called = True

    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotLoaded, match="has no config.json: not a checkpoint folder"):
        load_weights(Loader, "qwen2-audio-7b", tmp_path)
    assert not Loader.called


def test_in_the_grid_the_cells_fail_with_the_reason_not_a_traceback(pytester, tmp_path,
                                                                     record_property):
    folder = tmp_path / "qwen2-audio"
    shutil.copytree(embedded_path("tiny_qwen2_audio"), folder)
    _cut(folder / "model.safetensors", 100_000)
    pytester.makepyfile(test_grid="""
        from harness.runner import GridConfig
        GRID = GridConfig(models=("qwen2-audio-7b",), datasets=("crema_d",),
                          strategies=("base", "bon"), limit=2)

        def test_cell(cell, run_cell):
            run_cell(cell)
    """)
    pytester._monkeypatch.setenv("QWEN2_AUDIO_7B_PATH", str(folder))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"qwen2-audio-7b-crema_d-b*: qwen2-audio-7b: the weights in {folder} "
                                 "could not be read (SafetensorError: *); copy them again"])
    assert "modeling_utils.py" not in result.stdout.str()
    record_property("reliability", f"hostile checkpoints: {len(DAMAGE)} damaged model folders (a "
                                   "shard cut short, no config, a FIFO for a config) failed their "
                                   "cells naming the folder, loads per model 1, 7B default builds "
                                   "0, tracebacks 0")
