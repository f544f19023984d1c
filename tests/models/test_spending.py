"""A paid API model's spending cap (``max_cost_usd``): what is answered is kept, the rest unsent,
the cell fails saying so, and the model's later cells skip."""

import importlib.util
import math
import threading
import time

import numpy as np
import pytest

import harness
from harness.cache import GenerationCache
from harness.data import load_dataset
from harness.models import Decoding, Generation, Request, SpendingCapReached, get_model
from harness.models._api_common import Scrubber, run_bounded, spending_cap
from harness.models._spending import SpendingCap
from harness.runner import GridConfig
from harness.runner.grid import Cell
from harness.runner.worker import CellSkipped, GridWorker
from tests.api_servers import ScriptedServer


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (google) is not there either
        return False


needs_the_sdks = pytest.mark.skipif(not (installed("openai") and installed("google.genai")),
                                    reason="the api extra is not installed")

# one "ok" answer of the scripted OpenAI server: 110 text and 10 audio prompt tokens and 20
# output tokens at GPT-4o's audio model's prices
GPT4O_ANSWER_USD = (110 * 2.5 + 10 * 40 + 20 * 10) / 1e6


@pytest.mark.parametrize("limit", [0, -1.0, math.nan, math.inf, "20", True])
def test_a_cap_that_is_not_a_positive_amount_is_refused(limit):
    with pytest.raises(ValueError, match=r"^m: max_cost_usd must be a positive number of US dollars"):
        SpendingCap("m", limit, priced=True)


def test_a_cap_on_a_model_without_a_price_is_refused_and_no_cap_needs_none():
    with pytest.raises(ValueError, match="none is known: give them as prices="):
        spending_cap("openai-compatible:mine", "mine", 5.0, None)
    assert spending_cap("openai-compatible:mine", "mine", 5.0, {"mine": (1.0, 2.0)}).limit_usd == 5
    free = spending_cap("openai-compatible:mine", "mine", None, None)
    assert free.allows() and free.stop_error() is None


def paid(cost: float, pause: float = 0.0):
    def call(request):
        time.sleep(pause)
        return Generation(usage={"cost_usd": cost})
    return call


def test_once_the_cap_is_reached_the_rest_go_unsent_and_the_answers_are_kept():
    cap = SpendingCap("m", 2.5, priced=True)
    out = run_bounded(paid(1.0), range(10), 1, Scrubber([]), cap=cap)
    assert [g.error is None for g in out] == [True] * 3 + [False] * 7
    assert out[3].error == "not sent: m's spending cap of $2.50 (max_cost_usd) was reached"
    assert cap.spent_usd == 3.0 and cap.unsent == 7
    assert str(cap.stop_error()) == (
        "m: its spending cap of $2.50 (max_cost_usd) was reached: an estimated $3.0000 spent by "
        "this process, 7 request(s) not sent; what was answered is in the generation cache, so a "
        "run with a higher cap sends only the rest")


def test_requests_in_flight_when_the_cap_is_reached_pass_it_by_at_most_their_own_cost():
    cap = SpendingCap("m", 2.5, priced=True)
    sent = []
    lock = threading.Lock()

    def call(request):
        with lock:
            sent.append(request)
        return paid(1.0, pause=0.02)(request)

    out = run_bounded(call, range(40), 4, Scrubber([]), cap=cap)
    answered = sum(g.error is None for g in out)
    assert 3 <= answered <= 3 + 3 and answered == len(sent) == cap.spent_usd
    assert cap.unsent == 40 - answered


def test_a_failed_request_and_an_unpriced_answer_cost_nothing():
    cap = SpendingCap("m", 1.0, priced=True)

    def call(request):
        if request == 0:
            raise TimeoutError("no answer")
        return Generation(usage={"cost_usd": None})

    out = run_bounded(call, range(3), 1, Scrubber([]), cap=cap)
    assert out[0].error == "TimeoutError: no answer" and cap.spent_usd == 0 and cap.allows()


KEY = "sk-" + "test-PLANTEDKEY-0123456789abcdef"  # a fake, built so no scanner flags it


def gpt4o(server, **options):
    options = {"max_retries": 0, "timeout": 2.0, "concurrency": 1, **options}
    return get_model("gpt-4o", api_key=KEY, base_url=server.url + "/v1", **options)


def clip():
    return np.zeros(16_000, dtype=np.float32) + 0.01


@needs_the_sdks
def test_a_cell_that_reaches_the_cap_fails_and_a_higher_cap_sends_only_the_rest(tmp_path):
    dataset = load_dataset("crema_d")[:6]
    cache = GenerationCache(tmp_path / "c.sqlite")
    limit = 2.5 * GPT4O_ANSWER_USD  # three answers reach it
    with ScriptedServer("openai") as server:
        model = gpt4o(server, max_cost_usd=limit)
        with pytest.raises(SpendingCapReached, match=r"^gpt-4o: its spending cap of \$0\.00 "
                                                     r"\(max_cost_usd\) was reached: an estimated "
                                                     r"\$0\.0026 spent by this process, 3 request"):
            harness.evaluate(model, dataset, "base", cache=cache, n_resamples=10)
        assert len(server.requests) == 3
        with pytest.raises(SpendingCapReached):  # nothing more is sent
            model.generate([Request(clip(), "p")], Decoding())
        assert len(server.requests) == 3
        record = harness.evaluate(gpt4o(server, max_cost_usd=1.0), dataset, "base", cache=cache,
                                  n_resamples=10)
    assert len(server.requests) == 6  # the three answered before were read from the cache
    assert record.metrics.n_valid == 6
    assert record.meta["generations"] == {"computed": 3, "from_cache": 3}


@needs_the_sdks
def test_in_the_grid_the_cell_fails_and_the_model_s_later_cells_skip_unsent(tmp_path):
    with ScriptedServer("openai") as server:
        worker = GridWorker(tmp_path / "run", tmp_path / "cache", GridConfig(models=("gpt-4o",)))
        worker._models["gpt-4o"] = gpt4o(server, max_cost_usd=GPT4O_ANSWER_USD / 2)
        with pytest.raises(SpendingCapReached):
            worker.run(Cell("gpt-4o", "crema_d", "base"))
        with pytest.raises(CellSkipped, match=r"^stopped: gpt-4o: its spending cap of \$0\.00"):
            worker.run(Cell("gpt-4o", "iemocap", "base"))
        worker.close()
    assert len(server.requests) == 1
    assert not list((tmp_path / "run").glob("cells/*.json"))  # no cell scored on a part


@needs_the_sdks
def test_a_cell_whose_last_answer_reaches_the_cap_is_recorded_and_the_next_sends_nothing(tmp_path):
    with ScriptedServer("openai") as server:
        grid = GridConfig(models=("gpt-4o",), limit=4)
        worker = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
        worker._models["gpt-4o"] = gpt4o(server, max_cost_usd=3.5 * GPT4O_ANSWER_USD)
        record, _ = worker.run(Cell("gpt-4o", "crema_d", "base"))
        assert record.metrics.n_valid == 4 and len(server.requests) == 4
        with pytest.raises(SpendingCapReached, match=r"spent by this process; what was answered"):
            worker.run(Cell("gpt-4o", "iemocap", "base"))
        with pytest.raises(CellSkipped, match="^stopped: gpt-4o: its spending cap"):
            worker.run(Cell("gpt-4o", "crema_d", "cot"))
        worker.close()
    assert len(server.requests) == 4


@needs_the_sdks
def test_gemini_stops_at_its_cap_too():
    with ScriptedServer("gemini") as server:
        model = get_model("gemini-2.0-flash", api_key="AIza" + "TESTPLANTEDKEY0123456789abcdefghij",
                          base_url=server.url, attempts=1, concurrency=1, max_cost_usd=1e-4)
        out = model.generate([Request(clip(), "p")] * 5, Decoding())
        assert [g.error is None for g in out] == [True, True, True, False, False]
        assert isinstance(model.stopped, SpendingCapReached) and len(server.requests) == 3


@needs_the_sdks
def test_under_pytest_the_cell_fails_naming_the_cap_not_with_a_traceback(pytester):
    pytester.makepyfile(test_grid="""
        from harness.runner import GridConfig
        GRID = GridConfig(models=("gpt-4o",), datasets=("crema_d",), strategies=("base", "cot"),
                          limit=4)

        def test_cell(cell, run_cell):
            run_cell(cell)
    """)
    pytester._monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ScriptedServer("openai") as server:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-rs", "--model-arg", f"gpt-4o.base_url={server.url}/v1",
            "--model-arg", f"gpt-4o.max_cost_usd={1.5 * GPT4O_ANSWER_USD}",
            "--model-arg", "gpt-4o.concurrency=1", "--model-arg", "gpt-4o.max_retries=0")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*gpt-4o-crema_d-*: gpt-4o: its spending cap of $0.00 (max_cost_usd) was reached: an "
        "estimated $0.0018 spent by this process, 2 request(s) not sent; *",
        "*stopped: gpt-4o: its spending cap of $0.00 (max_cost_usd) was reached*"])
    assert "Traceback" not in result.stdout.str() and "raise_if_stopped" not in result.stdout.str()
    assert len(server.requests) == 2
