"""The model registry: names, kinds and GPU needs, and a user's own model."""

import dataclasses

import pytest

from harness.baselines import ChanceBaseline
from harness.models import get_model, model_entry, model_kind, model_names, register
from harness.models.registry import _BUILT_IN, _ENTRIES


def test_kinds_and_gpu_needs_come_from_the_registry():
    assert model_kind("tiny-qwen2-audio") == "local" and not model_entry("tiny-qwen2-audio").gpu
    assert model_kind("qwen2-audio-7b") == "local" and model_entry("qwen2-audio-7b").gpu
    assert model_kind("gpt-4o") == model_kind("openai-compatible:org/model") == "api"
    assert model_kind("uniform") == model_kind("label-prior") == "chance"
    assert isinstance(get_model("uniform"), ChanceBaseline)
    assert "openai-compatible:<model>" in model_names()
    full_size = {"qwen2-audio-7b", "qwen2.5-omni-7b", "audio-flamingo-3", "audio-flamingo-2",
                 "ultravox-v0.3", "ultravox-v0.4"}  # their cells are marked gpu and slow
    assert {n for n in model_names() if n in _ENTRIES and model_entry(n).gpu} == full_size


def test_every_built_in_entry_names_a_factory_its_module_has():
    """A typo in an entry's target, or a factory renamed, would show only where that model's
    weights are (get_model looks for them first): each is resolved here."""
    for extra in ("torch", "transformers", "openai", "google.genai"):
        pytest.importorskip(extra, reason="an extra is not installed")
    for name in sorted(_BUILT_IN):
        assert callable(model_entry(name).factory()), name


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'qwen2-audoi-7b'; registered: "):
        model_kind("qwen2-audoi-7b")
    with pytest.raises(ValueError, match="unknown model 'openai-compatible:'"):
        get_model("openai-compatible:")


def test_a_users_model_registers_with_its_kind():
    @register("test-echo", kind="api")
    def echo(**config):
        return ("echo", config)

    try:
        assert model_kind("test-echo") == "api" and not model_entry("test-echo").gpu
        assert get_model("test-echo", seed=3) == ("echo", {"seed": 3})
    finally:
        _ENTRIES.pop("test-echo")


def test_a_built_in_name_cannot_be_taken_and_ones_own_may_be_registered_again():
    with pytest.raises(ValueError, match="'qwen2-audio-7b' is a built-in model; register yours "
                                         "under another name .*--model-arg qwen2-audio-7b.OPTION"):
        register("qwen2-audio-7b")
    assert model_entry("qwen2-audio-7b").gpu
    with pytest.raises(dataclasses.FrozenInstanceError):
        model_entry("qwen2-audio-7b").gpu = False
    try:
        def mine(**config):
            return 1

        assert register("test-twice")(mine) is mine  # a decorator: the factory stays itself
        register("test-twice")(lambda **config: 2)  # a notebook's cell run again
        assert get_model("test-twice") == 2
    finally:
        _ENTRIES.pop("test-twice")


def test_a_users_local_model_names_its_checkpoint(tmp_path, monkeypatch):
    """A checkpoint that is not here is refused before the factory runs; one that is reaches
    it through :func:`~harness.models.registry.checkpoint`."""
    from harness.models import ModelNotLoaded, ModelUnavailable
    from harness.models.registry import checkpoint

    built = []

    @register("test-local", gpu=True, weights=("TEST_LOCAL_PATH", "org/test-local"))
    def local(path=None, **config):
        built.append(checkpoint("test-local", path))
        return "model"

    monkeypatch.delenv("TEST_LOCAL_PATH", raising=False)  # and no hub cache holds org/test-local
    try:
        with pytest.raises(ModelUnavailable, match="test-local: no local weights; set "
                                                   "TEST_LOCAL_PATH to a copy of org/test-local"):
            get_model("test-local")
        assert built == []
        monkeypatch.setenv("TEST_LOCAL_PATH", str(tmp_path))
        assert get_model("test-local") == "model" and built == [tmp_path]
        (tmp_path / "elsewhere").mkdir()
        assert get_model("test-local", path=tmp_path / "elsewhere") == "model"
        assert built[-1].name == "elsewhere"
        with pytest.raises(ModelNotLoaded, match="test-local: path=/nowhere: no such folder"):
            get_model("test-local", path="/nowhere")  # a typo fails, where a skip would hide it
        monkeypatch.setenv("TEST_LOCAL_PATH", str(tmp_path / "typo"))
        with pytest.raises(ModelNotLoaded, match=f"TEST_LOCAL_PATH={tmp_path / 'typo'}: no such"):
            get_model("test-local")
    finally:
        _ENTRIES.pop("test-local")
    with pytest.raises(ValueError, match="names no checkpoint"):
        checkpoint("uniform")


def test_a_missing_checkpoint_is_refused_before_torch_or_pandas_is_imported(tmp_path):
    """Under ``-n 4`` a worker may get only cells whose weights are not here: each must skip
    in milliseconds, as the corpus it reads (IEMOCAP) needs no pandas, not after importing
    torch and transformers (seconds of a 2-core machine's time the working workers need).
    A fresh interpreter, since this one has imported both."""
    import os
    import subprocess
    import sys
    import textwrap

    from harness.models.registry import _ENTRIES as entries

    names = [name for name, entry in entries.items() if entry.weights is not None]
    assert {"qwen2-audio-7b", "qwen2.5-omni-7b", "audio-flamingo-3", "ultravox-v0.4"} <= set(names)
    script = textwrap.dedent(f"""
        import sys
        from harness.runner.grid import Cell, GridConfig
        from harness.runner.worker import CellSkipped, GridWorker

        worker = GridWorker({str(tmp_path / "run")!r}, {str(tmp_path / "cache")!r},
                            GridConfig(models={tuple(names)!r}))
        for name in {names!r}:
            try:
                worker.inputs(Cell(name, "iemocap", "w-alm-v"))
            except CellSkipped as exc:
                assert "no local weights; set " in str(exc), exc
            else:
                raise AssertionError(name + " did not skip")
        print(sorted(m for m in ("torch", "transformers", "pandas") if m in sys.modules))
    """)
    variables = {entries[name].weights[0] for name in names}
    env = {k: v for k, v in os.environ.items() if k not in variables}
    env["HF_HUB_CACHE"] = str(tmp_path / "hub")  # an empty cache: nothing to find there
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_checkpoint_like_a_built_in_runs_on_its_backend_under_its_own_name(tmp_path, monkeypatch):
    """A fine-tune of a supported architecture: its weights looked for as a built-in's, its name
    in the cell and the cache key, its revision its own files'."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    import shutil

    import harness
    from harness._embedded import embedded_path
    from harness.models import ModelNotLoaded, ModelUnavailable, register_checkpoint

    shutil.copytree(embedded_path("tiny_qwen2_audio"), tmp_path / "ft")
    monkeypatch.setattr("harness.models.registry._ENTRIES", dict(_ENTRIES))
    register_checkpoint("tiny-ft", like="tiny-qwen2-audio", weights=("TINY_FT_PATH", "lab/tiny-ft"))
    monkeypatch.delenv("TINY_FT_PATH", raising=False)
    with pytest.raises(ModelUnavailable, match="tiny-ft: no local weights; set TINY_FT_PATH"):
        get_model("tiny-ft")
    monkeypatch.setenv("TINY_FT_PATH", str(tmp_path / "ft"))
    ft = get_model("tiny-ft")
    assert ft.info.name == "tiny-ft" and model_entry("tiny-ft").kind == "local"
    record = harness.evaluate(ft, "crema_d", "base", n_resamples=10)
    original = harness.evaluate("tiny-qwen2-audio", "crema_d", "base", n_resamples=10)
    assert record.cell == "tiny-ft-crema_d-base" and record.items == original.items
    (tmp_path / "ft" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelNotLoaded, match=r"^tiny-ft \(a tiny-qwen2-audio checkpoint\): "
                                             r"tiny-qwen2-audio: the weights in"):
        get_model("tiny-ft")
    local = ("['audio-flamingo-2', 'audio-flamingo-3', 'qwen2-audio-7b', 'qwen2.5-omni-7b', "
             "'tiny-qwen2-audio', 'ultravox-v0.3', 'ultravox-v0.4']")
    for like in ("gpt-4o", "nope", "uniform"):
        with pytest.raises(ValueError) as refused:
            register_checkpoint("x", like=like, weights=("X_PATH", "lab/x"))
        assert str(refused.value) == (f"x: like={like!r} is not a built-in local model (one of "
                                      f"{local})")
    with pytest.raises(ValueError, match="'qwen2-audio-7b' is a built-in model"):
        register_checkpoint("qwen2-audio-7b", like="tiny-qwen2-audio", weights=("X_PATH", "lab/x"))
