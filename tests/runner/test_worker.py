"""GridWorker.inputs: a cell that cannot run skips for its own reason, the first that applies."""

import pytest

from harness.models import Capabilities, registry
from harness.runner.grid import Cell, GridConfig
from harness.runner.worker import CellSkipped, GridWorker
from tests.fakes import ScriptedModel
from tests.helpers import corpora_kept


@pytest.fixture
def worker(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    no_beams = Capabilities(beam_search=False, n_candidates=False, logprobs=False)
    registry.register("no-beams")(lambda: ScriptedModel(lambda r, d: [], "no-beams", no_beams))
    registry.register("beams")(lambda: ScriptedModel(lambda r, d: [], "beams"))
    grid = GridConfig(models=("no-beams", "beams"), datasets=("iemocap",), verifier="gpt-4o")
    made = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
    yield made
    made.close()


def test_a_model_without_the_strategy_s_capability_skips_for_it_not_for_its_verifier(worker):
    with pytest.raises(CellSkipped, match=r"^no-beams has no beam_search: alm-v cannot run on it$"):
        worker.inputs(Cell("no-beams", "iemocap", "alm-v"))


def test_a_verifier_that_cannot_run_here_is_named_as_the_verifier(worker):
    with pytest.raises(CellSkipped) as skipped:
        worker.inputs(Cell("beams", "iemocap", "w-alm-v"))
    assert str(skipped.value) == ("its verifier gpt-4o: set OPENAI_API_KEY "
                                  "(or name another: --verifier)")


def test_a_strategy_without_a_verifier_loads_none(worker):
    dataset, model, verifier = worker.inputs(Cell("no-beams", "iemocap", "base"))
    assert (len(dataset), model.info.name, verifier) == (26, "no-beams", None)


def test_a_corpus_reader_that_fails_is_read_once_and_each_cell_says_where(tmp_path, monkeypatch):
    from harness.data import register_corpus
    from harness.prompts import CorpusWording
    from harness.runner.evaluate import NothingToEvaluate

    calls = []

    def broken_reader(root, problems):
        calls.append(root)
        return {}["clip"]  # a reader of one's own with a bug

    monkeypatch.setenv("BROKEN_ROOT", str(tmp_path))
    with corpora_kept():
        register_corpus("broken", broken_reader, env_var="BROKEN_ROOT",
                        wording=CorpusWording("A speaker.", "the audio"))
        worker = GridWorker(tmp_path / "run", tmp_path / "cache",
                            GridConfig(models=("uniform",), datasets=("broken",)))
        for _ in range(2):
            with pytest.raises(NothingToEvaluate, match=r"^broken could not be read: KeyError: "
                                                        r"'clip' \(raised at test_worker.py:\d+\)$"):
                worker.inputs(Cell("uniform", "broken", "base"))
    assert len(calls) == 1


@pytest.mark.parametrize("error", [TypeError("unexpected keyword"), RuntimeError("no server")])
def test_a_model_that_cannot_load_names_its_arguments_but_not_a_key_among_them(
        tmp_path, monkeypatch, error):
    from harness.models import ModelNotLoaded

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))

    def fails(**args):
        raise error

    registry.register("fails")(fails)
    grid = GridConfig(models=("fails",), datasets=("iemocap",),
                      model_args={"fails": {"api_key": "sk-PLANTED", "Auth_Token": "t0ken",
                                            "max_new_tokens": 3}})
    worker = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
    with pytest.raises(ModelNotLoaded) as failed:
        worker.model("fails")
    assert "{'api_key': '***', 'Auth_Token': '***', 'max_new_tokens': 3}" in str(failed.value)
    assert "PLANTED" not in str(failed.value) and "t0ken" not in str(failed.value)


def test_a_record_that_cannot_be_written_says_so_naming_the_folder(tmp_path, monkeypatch):
    import errno

    from harness.runner import worker as worker_module
    from harness.runner.worker import RecordNotWritten

    def full(record, run_dir):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(worker_module, "write_record", full)
    grid = GridConfig(models=("uniform",), datasets=("crema_d",))
    made = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
    with pytest.raises(RecordNotWritten) as failed:
        made.run(Cell("uniform", "crema_d", "base"))
    assert str(failed.value) == (f"uniform-crema_d-base: computed, but its record could not be "
                                 f"written in {tmp_path / 'run' / 'cells'}: No space left on device")
    made.close()


def test_a_prompt_set_without_a_wording_of_the_corpus_skips_its_cells_not_the_chance_ones(
        tmp_path, monkeypatch):
    from harness import prompts

    monkeypatch.setattr(prompts, "PROMPT_SETS", dict(prompts.PROMPT_SETS))
    prompts.register_prompt_set(prompts.PromptSet("only-iemocap", 1, {
        "iemocap": prompts.CorpusWording("Two actors improvise a scene.", "the target utterance")}))
    grid = GridConfig(models=("uniform",), datasets=("crema_d",),
                      strategy_args={"prompts": "only-iemocap"})
    made = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
    with pytest.raises(CellSkipped, match=r"^prompt set only-iemocap: no prompt wording for corpus "
                                          r"'crema_d'; known: \['iemocap'\]$"):
        made.inputs(Cell("tiny-qwen2-audio", "crema_d", "base"))
    assert made.inputs(Cell("uniform", "crema_d", "base"))[1].info.name == "uniform"
    made.close()


def test_the_annotator_reference_s_baseline_is_scored_as_its_record(tmp_path):
    """Its record scores each held-out rater against the other raters; its baseline scored them
    against every rater, so `compare evals/baselines <run>` called an unchanged run worse."""
    from harness.report.compare import compare

    worker = GridWorker(tmp_path / "run", tmp_path / "cache",
                        GridConfig(models=("annotator",), datasets=("iemocap",)))
    try:
        record, _ = worker.run(Cell("annotator", "iemocap", "base"))
        worker.save_baseline(record, tmp_path / "baselines")
        verdict = worker.gate(record, tmp_path / "baselines", 0.0)
    finally:
        worker.close()
    js = next(c for c in verdict.changes if c.metric == "js")
    assert js.before == js.after == pytest.approx(record.metrics.mean("js"))
    changes = compare(tmp_path / "baselines", tmp_path / "run").changes["annotator-iemocap-base"]
    assert all(c.before == pytest.approx(c.after) and c.verdict == "same" for c in changes)
