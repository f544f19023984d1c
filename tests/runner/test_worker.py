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


ANSWER = [('{"Anger": 0.5, "Sadness": 0.5}', -1.0)]


def test_a_plan_runs_once_in_its_first_cell_and_each_cell_records_its_share(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the verifier cannot run: alm-v left out
    model = ScriptedModel(lambda r, d: ANSWER * d.num_candidates, "planned")
    registry.register("planned")(lambda: model)
    grid = GridConfig(models=("planned",), datasets=("crema_d",), verifier="gpt-4o")
    made = GridWorker(tmp_path / "run", tmp_path / "cache", grid,
                      plans={("planned", "crema_d"): ("base", "bon", "alm-v"),
                             ("uniform", "crema_d"): ("base",)})
    try:
        first, _ = made.run(Cell("planned", "crema_d", "base"))
        asked = model.requests
        second, _ = made.run(Cell("planned", "crema_d", "bon"))
        after = model.requests
        uniform, _ = made.run(Cell("uniform", "crema_d", "base"))  # a chance cell: no plan
        outside, _ = made.run(Cell("planned", "crema_d", "cot"))  # not in the plan: no share
    finally:
        made.close()
    assert outside.meta["plan"]["seconds"] == 0.0 and outside.meta["generations"]["computed"] == (
        model.requests - asked)
    n = first.metrics.n_items
    assert asked == 2 * n and after == asked  # both decodings in the plan, none after
    for record, strategy in ((first, "base"), (second, "bon")):
        plan = record.meta["plan"]
        assert plan["ran_in_cell"] == "planned-crema_d-base"
        assert plan["strategies"] == ["base", "bon"] and set(plan["left_out"]) == {"alm-v"}
        assert record.meta["generations"] == {"computed": n, "from_cache": 0}, strategy
        assert 0 < plan["seconds"] <= record.seconds and record.gpu_seconds == 0.0
    assert "plan" not in uniform.meta


def test_a_plan_with_a_verifier_that_can_run_fills_the_verifiers_cells_too(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    model = ScriptedModel(lambda r, d: ANSWER * d.num_candidates, "planned")
    judge = ScriptedModel(lambda r, d: [("0.8", -0.1)], "judge")
    registry.register("planned")(lambda: model)
    registry.register("judge")(lambda: judge)
    grid = GridConfig(models=("planned",), datasets=("crema_d",), verifier="judge")
    made = GridWorker(tmp_path / "run", tmp_path / "cache", grid,
                      plans={("planned", "crema_d"): ("base", "alm-v")})
    try:
        first, _ = made.run(Cell("planned", "crema_d", "base"))
        judged = judge.requests
        verified, _ = made.run(Cell("planned", "crema_d", "alm-v"))
    finally:
        made.close()
    assert first.meta["plan"]["strategies"] == ["alm-v", "base"] and judged > 0
    assert first.meta["plan"]["left_out"] == {} and judge.requests == judged
    assert verified.metrics.n_valid == first.metrics.n_items


def test_a_refused_key_stops_the_models_later_cells_unsent(tmp_path, monkeypatch):
    from harness.models import KeyRejected

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))

    class Refused(ScriptedModel):
        def generate(self, requests, decoding):
            raise KeyRejected("keyed: the API refused the key (401)")

    registry.register("keyed")(lambda: Refused(lambda r, d: ANSWER, "keyed"))
    made = GridWorker(tmp_path / "run", tmp_path / "cache",
                      GridConfig(models=("keyed",), datasets=("crema_d",)),
                      plans={("keyed", "crema_d"): ("base", "bon")})  # refused in the plan
    with pytest.raises(KeyRejected):
        made.run(Cell("keyed", "crema_d", "base"))
    with pytest.raises(CellSkipped, match=r"^stopped: keyed: the API refused the key \(401\)$"):
        made.run(Cell("keyed", "crema_d", "cot"))
    votes = made.votes("crema_d")
    made.close()
    dataset = made.dataset("crema_d")
    assert list(votes) == [item.id for item in dataset]
    assert all((votes[item.id] == item.votes).all() for item in dataset)


def test_the_cache_is_opened_when_first_needed_and_closed_with_the_worker(tmp_path):
    import sqlite3

    made = GridWorker(tmp_path / "run", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    cache = made.cache
    assert made.cache is cache and (tmp_path / "cache" / "generations.sqlite").is_file()
    made.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        cache.get_many(["k"])


def test_a_cell_without_a_baseline_is_not_gated(tmp_path):
    made = GridWorker(tmp_path / "run", tmp_path / "cache",
                      GridConfig(models=("uniform",), datasets=("crema_d",)))
    record, _ = made.run(Cell("uniform", "crema_d", "base"))
    assert made.gate(record, tmp_path / "baselines", 0.0) is None
    made.close()


def test_dropped_data_is_warned_of_once_saying_how_much_and_where_to_look():
    from types import SimpleNamespace

    from harness.data.problems import Problem
    from harness.runner.worker import _warn_of_dropped_data

    def corpus(*severities):
        problems = [Problem("labels.txt", n, f"bad {n}", s) for n, s in enumerate(severities, 1)]
        problems.append(Problem("labels.txt", None, "x" * 1_000))
        return SimpleNamespace(name="iemocap", root="/data/my corpus", problems=problems)

    with pytest.warns(UserWarning) as caught:
        _warn_of_dropped_data(corpus("warning", "error"))
        _warn_of_dropped_data(corpus("error", "error"))
    assert [str(w.message) for w in caught] == [
        "iemocap at /data/my corpus: 2 problems in its files dropped data, the first: error: "
        "labels.txt:2: bad 2; python -m harness.data check iemocap '/data/my corpus' lists them",
        "iemocap at /data/my corpus: 3 problems in its files dropped data, the first: error: "
        "labels.txt:1: bad 1; python -m harness.data check iemocap '/data/my corpus' lists them"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_of_dropped_data(SimpleNamespace(name="iemocap", root="/data", problems=[
            Problem("labels.txt", 1, "odd", "warning")]))  # nothing dropped: nothing said
    with pytest.warns(UserWarning) as caught:
        _warn_of_dropped_data(corpus())
    assert "iemocap at /data/my corpus: 1 problem in" in str(caught[0].message)
    assert "the first: " + str(Problem("labels.txt", None, "x" * 1_000))[:300] + ";" in str(
        caught[0].message)


def test_a_corpus_that_cannot_be_read_says_what_to_check():
    from types import SimpleNamespace

    from harness.runner.worker import _what_to_check

    plain, option = Exception("no such folder"), SimpleNamespace(reason="unknown option 'splt'")
    assert _what_to_check("msp_podcast", None, option) == " (check --dataset-option)"
    assert _what_to_check("msp_podcast", "/data/msp", plain) == " (check --msp-podcast-root)"
    assert _what_to_check("msp_podcast", None, plain) == (
        " (set MSP_PODCAST_ROOT or --msp-podcast-root)")


def test_a_backends_own_reason_for_not_loading_is_kept_as_it_is():
    from harness.models import ModelNotLoaded
    from harness.runner.worker import _why_not_loaded

    assert _why_not_loaded("m", {"api_key": "sk-x"}, ModelNotLoaded("m: weights missing")) == (
        "m: weights missing")
    try:
        raise TypeError("bad")
    except TypeError as raised:
        assert _why_not_loaded("m", {}, raised) == (
            "m could not be loaded: TypeError: bad (raised at test_worker.py:"
            f"{raised.__traceback__.tb_lineno})")
    assert _why_not_loaded("m", {}, RuntimeError("x" * 400)).count("x") == 300


def test_a_cell_is_recorded_under_its_registry_name_and_a_decoding_it_lacks_skips_it(
        tmp_path, monkeypatch):
    from harness.models import DecodingUnsupported

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))

    class NoSampling(ScriptedModel):
        def generate(self, requests, decoding):
            if decoding.mode == "sample":
                raise DecodingUnsupported("alias cannot sample")
            return super().generate(requests, decoding)

    registry.register("alias")(lambda: NoSampling(lambda r, d: ANSWER * d.num_candidates,
                                                  "backend-name"))
    made = GridWorker(tmp_path / "run", tmp_path / "cache",
                      GridConfig(models=("alias",), datasets=("crema_d",)))
    record, path = made.run(Cell("alias", "crema_d", "base"))
    assert (record.model, record.cell) == ("alias", "alias-crema_d-base") and path.is_file()
    with pytest.raises(CellSkipped, match="^alias cannot sample$"):
        made.run(Cell("alias", "crema_d", "sample-n"))
    made.close()


def test_a_corpus_that_is_not_there_skips_its_cells_and_one_that_dropped_data_warns(
        tmp_path, monkeypatch):
    from harness.data import register_corpus
    from harness.prompts import CorpusWording

    made = GridWorker(tmp_path / "run", tmp_path / "cache",
                      GridConfig(models=("uniform",), datasets=("crema_d",)),
                      roots={"crema_d": tmp_path / "nowhere"})
    with pytest.raises(CellSkipped, match=r"^crema_d: .*\(check --crema-d-root\)$"):
        made.inputs(Cell("uniform", "crema_d", "base"))
    crema = GridWorker(tmp_path / "run", tmp_path / "cache").dataset("crema_d")

    def dropping(root, problems):
        problems.error(root / "votes.csv", 3, "a malformed row")
        return crema.labels, list(crema), {}

    def failing(root, problems):
        raise RuntimeError("q" * 1_000)

    monkeypatch.setenv("MINE_ROOT", str(tmp_path))
    with corpora_kept():
        register_corpus("mine", dropping, env_var="MINE_ROOT",
                        wording=CorpusWording("A speaker.", "the audio"))
        register_corpus("failing", failing, env_var="MINE_ROOT",
                        wording=CorpusWording("A speaker.", "the audio"))
        worker = GridWorker(tmp_path / "run", tmp_path / "cache")
        with pytest.warns(UserWarning, match="1 problem in its files dropped data, the first: "
                                             "error: .*votes.csv:3: a malformed row"):
            assert len(worker.dataset("mine")) == len(crema)
        with pytest.raises(Exception) as failed:
            worker.dataset("failing")
    assert str(failed.value).count("q") == 300


def test_a_cell_s_share_of_the_plan_is_added_to_its_seconds_and_calls():
    """The plan's seconds for the cell's strategy are added to its seconds (and to its GPU
    seconds where it has any); the calls the plan computed for it move from read to computed."""
    import dataclasses
    import types

    from harness.record import CellMetrics, CellRecord
    from harness.runner.worker import _with_plan

    record = CellRecord("m-d-bon", "m", "d", "bon", ("a",), CellMetrics(3, 3, 1.0), 1.0, 2.0, (),
                        {"generations": {"computed": 1, "from_cache": 3}})
    report = types.SimpleNamespace(seconds={"bon": 0.5, "base": 0.25}, computed={"bon": 2},
                                   left_out={"alm-v": "no verifier"})
    planned = _with_plan(record, Cell("m", "d", "bon"), report, "m-d-base")
    assert (planned.seconds, planned.gpu_seconds) == (1.5, 2.5)
    assert planned.meta["generations"] == {"computed": 3, "from_cache": 1}
    assert planned.meta["plan"] == {"strategies": ["base", "bon"], "ran_in_cell": "m-d-base",
                                    "seconds": 0.5, "left_out": {"alm-v": "no verifier"}}
    on_cpu = _with_plan(dataclasses.replace(record, gpu_seconds=0.0), Cell("m", "d", "cot"),
                        report, "m-d-base")
    assert (on_cpu.seconds, on_cpu.gpu_seconds, on_cpu.meta["plan"]["seconds"]) == (1.0, 0.0, 0.0)
