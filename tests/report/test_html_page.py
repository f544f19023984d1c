"""report.html opened from file:// in headless Chromium: the tables, a cell's items, an item's
candidates and distributions, the filters; a screenshot of each view in the test's folder."""

import contextlib
import json
import os
import time

import numpy as np
import pytest

import harness
from harness.data import load_dataset
from harness.record import read_summary, write_record
from harness.report.build import build_report
from harness.runner import stratified_subsample
from harness.strategies import StrategyConfig
from tests.fakes import ScriptedModel
from tests.report.browser import chromium_paths, headless_chromium

MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


def hostile(refused):
    """Answers that parse, a refusal for the items in ``refused``, and markup in every one."""
    def answer(request, decoding):
        if request.item_id in refused:
            return [(f"I cannot tell. {MARKUP}", -1.0)]
        return [(f'{MARKUP} {{"Anger": 0.6, "Disgust": 0.1, "Fear": 0.1, "Happiness": 0.1, '
                 f'"Neutral": 0.05, "Sadness": 0.05}}', -1.0)]
    return answer


def three_beams(request, decoding):
    """Three answers, each one label, which a verifier that gives all 0.9 leaves tied."""
    return [(f'{{"{label}": 1.0}}', -1.0 - i) for i, label in enumerate(("Anger", "Fear", "Sadness"))]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser, driver = chromium_paths()
    if not (browser and driver):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromium-driver (apt-get install, in .ci/run)")
        pytest.skip("chromium and chromium-driver are not installed")
    pytest.importorskip("selenium", reason="the test extra is not installed")
    run = tmp_path_factory.mktemp("run")
    dataset = stratified_subsample(load_dataset("crema_d"), 12)
    refused = {dataset[1].id, dataset[7].id}
    for model, strategy in ((ScriptedModel(hostile(refused), name="hostile"), "base"),
                            (ScriptedModel(hostile(refused), name="hostile"), "w-bon"),
                            ("uniform", "base")):
        write_record(harness.evaluate(model, dataset, strategy, n_resamples=10), run)
    write_record(harness.evaluate(ScriptedModel(hostile(refused), name="guessing"), dataset, "base",
                                  config=StrategyConfig(invalid="uniform"), n_resamples=10), run)
    alike = ScriptedModel(lambda request, decoding: [("0.9", -1.0)], name="alike")
    write_record(harness.evaluate(ScriptedModel(three_beams, name="tied"), dataset, "alm-v",
                                  verifier=alike, config=StrategyConfig(verifier_ties="mean"),
                                  n_resamples=10), run)
    damaged = run / "cells" / "uniform-crema_d-base.items.jsonl"  # one line no longer JSON
    lines = damaged.read_bytes().splitlines(keepends=True)
    odd = json.loads(lines[4])  # an id that is a number, a log-probability written as null
    odd["id"], odd["candidates"] = 12345, [{"label_logprobs": [None] + [-1.0] * 5, "valid": True}]
    not_lists = {**json.loads(lines[5]), "probs": {}}  # emptied the page's whole item list
    damaged.write_bytes(b"".join(lines[:3] + [b'{"id": 1e999}\n', json.dumps(odd).encode() + b"\n",
                                              json.dumps(not_lists).encode() + b"\n"] + lines[6:]))
    build_report(run)
    return run / "report.html", dataset


def wait_for(driver, script, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not driver.execute_script(f"return {script}"):
        assert time.monotonic() < deadline, f"timed out waiting for {script}"
        time.sleep(0.05)


@contextlib.contextmanager
def opened(path, cell=None):
    """The page in headless Chromium, ready; with ``cell``, that cell's items listed. No error
    may reach the browser's console meanwhile."""
    from selenium.webdriver.common.by import By

    with headless_chromium() as driver:
        driver.get(path.as_uri())
        wait_for(driver, "window.harnessReady")
        if cell:
            driver.find_element(By.ID, "tab-cells").click()
            driver.find_element(By.CSS_SELECTOR, f"#cell-list tr[data-cell={cell}]").click()
            wait_for(driver, "document.querySelectorAll('#item-list tbody tr').length > 0")
        yield driver
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def listed(driver):
    """The ids of the items the list shows."""
    from selenium.webdriver.common.by import By

    return [r.get_attribute("data-item")
            for r in driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")]


def test_the_tables_say_what_their_numbers_compare_with(page, tmp_path):
    from selenium.webdriver.common.by import By

    path, _ = page
    with opened(path) as driver:
        tables = driver.find_elements(By.CSS_SELECTOR, "table.report-table")
        assert len(tables) >= 6 and "main" in {t.get_attribute("data-table") for t in tables}
        assert " [0." in driver.find_element(By.CSS_SELECTOR, "table[data-table=main]").text  # CIs
        said = driver.find_element(By.ID, "comparable").text  # what the numbers compare with
        assert said.startswith("Items: ") and "ties to the first label" in said
        driver.save_screenshot(str(tmp_path / "tables.png"))


def test_each_cell_lists_its_means_and_its_items_in_corpus_order(page, tmp_path):
    from selenium.webdriver.common.by import By

    path, dataset = page
    with opened(path, "hostile-crema_d-base") as driver:
        cells = driver.find_elements(By.CSS_SELECTOR, "#cell-list tbody tr")
        assert {c.get_attribute("data-cell") for c in cells} == {
            "hostile-crema_d-base", "hostile-crema_d-w-bon", "tied-crema_d-alm-v",
            "uniform-crema_d-base", "guessing-crema_d-base"}
        for c in cells:  # each cell's means, as its record has them
            m = read_summary(path.parent / "cells" / f"{c.get_attribute('data-cell')}.json").metrics
            assert c.text.split()[-4:] == [f"{m.mean(k):.4f}" for k in ("js", "bc", "r2", "acc")]
        assert listed(driver) == [item.id for item in dataset]
        driver.save_screenshot(str(tmp_path / "cell.png"))


def test_an_item_shows_both_distributions_and_its_candidates_markup_as_text(page, tmp_path):
    from selenium.webdriver.common.by import By

    path, dataset = page
    with opened(path, "hostile-crema_d-base") as driver:
        driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")[0].click()
        wait_for(driver, "document.querySelectorAll('#candidates tbody tr').length > 0")
        assert driver.execute_script("return chart.data.datasets.map(s => s.label)") == [
            "annotators", "prediction"]
        first = dataset[0]
        human = driver.execute_script("return chart.data.datasets[0].data")
        assert human == pytest.approx(list(first.soft))
        candidate = driver.find_element(By.CSS_SELECTOR, "#candidates tbody tr").text
        assert MARKUP in candidate  # shown as text ...
        assert driver.execute_script("return window.pwned") is None  # ... never run as markup
        assert first.transcript in driver.find_element(By.ID, "item-transcript").text
        assert candidate.split()[:2] == ["1", "✓"]  # base's one answer, chosen
        assert "candidate chosen" in driver.find_element(By.ID, "candidates-how").text
        driver.save_screenshot(str(tmp_path / "item.png"))


def test_a_mixture_s_item_marks_no_candidate_chosen_and_shows_each_one_s_weight(page):
    from selenium.webdriver.common.by import By

    path, _ = page
    with opened(path, "hostile-crema_d-w-bon") as driver:
        driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")[0].click()
        wait_for(driver, "document.querySelectorAll('#candidates tbody tr').length > 0")
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#candidates tbody td")]
        assert cells[:2] == ["1", ""] and cells[6] == "1.0000", cells  # # chosen α ... weight
        how = driver.find_element(By.ID, "candidates-how").text
        assert how == "the prediction mixes the valid candidates, each by its weight: none is chosen"


def test_an_alm_v_item_that_averaged_its_tied_candidates_marks_each_of_them(page):
    from selenium.webdriver.common.by import By

    path, _ = page
    with opened(path, "tied-crema_d-alm-v") as driver:
        driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")[0].click()
        wait_for(driver, "document.querySelectorAll('#candidates tbody tr').length > 0")
        rows = driver.find_elements(By.CSS_SELECTOR, "#candidates tbody tr")
        assert [row.text.split()[:2] for row in rows] == [["1", "✓"], ["2", "✓"], ["3", "✓"]]
        how = driver.find_element(By.ID, "candidates-how").text
        assert how == ("the prediction is the mean of the 3 candidates chosen (✓), which shared "
                       "the verifier's top score")


def test_the_filters_show_the_invalid_items_or_an_id(page, tmp_path):
    from selenium.webdriver.common.by import By

    path, dataset = page
    with opened(path, "hostile-crema_d-base") as driver:
        invalid = [dataset[1].id, dataset[7].id]
        driver.find_element(By.ID, "f-invalid").click()
        assert listed(driver) == invalid
        driver.find_element(By.ID, "f-invalid").click()
        driver.find_element(By.ID, "f-id").send_keys(dataset[3].id)
        assert listed(driver) == [dataset[3].id]
        driver.save_screenshot(str(tmp_path / "filtered.png"))


def test_answers_scored_as_uniform_guesses_are_listed_and_marked_as_invalid(page):
    from selenium.webdriver.common.by import By

    path, dataset = page
    with opened(path, "guessing-crema_d-base") as driver:
        driver.find_element(By.ID, "f-invalid").click()
        assert listed(driver) == [dataset[1].id, dataset[7].id]
        rows = driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")
        assert all("invalid" in r.get_attribute("class").split() for r in rows)
        assert all("uniform_guess" in r.text for r in rows)


def test_the_confusion_of_the_top_emotion_counts_and_lists_its_items(page, tmp_path):
    from selenium.webdriver.common.by import By

    path, dataset = page
    with opened(path, "hostile-crema_d-base") as driver:  # the hostile model always answers Anger
        labels, invalid = list(dataset.labels), {dataset[1].id, dataset[7].id}
        anger, valid = labels.index("Anger"), [it for it in dataset if it.id not in invalid]
        tops = [labels.index(it.majority or labels[int(np.argmax(it.votes))]) for it in valid]
        rows = driver.find_elements(By.CSS_SELECTOR, "#confusion tr")[1:]
        counts = [[int(td.text) for td in r.find_elements(By.TAG_NAME, "td")[:-1]] for r in rows]
        assert counts == [[tops.count(t) if p == anger else 0 for p in range(len(labels))]
                          for t in range(len(labels))]
        recall = rows[anger].find_elements(By.TAG_NAME, "td")[-1].text
        assert recall == ("1.0000" if anger in tops else "–")
        top = max(set(tops), key=tops.count)
        driver.find_element(By.CSS_SELECTOR, f"#confusion td[data-pick='{top},{anger}']").click()
        assert listed(driver) == [it.id for it, t in zip(valid, tops) if t == top]
        assert labels[top] in driver.find_element(By.ID, "confusion-pick").text
        driver.save_screenshot(str(tmp_path / "confusion.png"))
        driver.find_element(By.ID, "unpick").click()
        assert len(listed(driver)) == len(dataset)


def test_a_damaged_items_line_costs_its_item_and_odd_items_still_show(page):
    from selenium.webdriver.common.by import By

    path, dataset = page
    with opened(path, "uniform-crema_d-base") as driver:
        wait_for(driver, "document.getElementById('item-count').textContent.includes('left out')")
        count = driver.find_element(By.ID, "item-count").text  # each damaged line costs its item
        assert count.startswith(f"{len(dataset) - 2} of {len(dataset) - 2} items shown"), count
        assert "left out, 2 unreadable: " in count and ".items.jsonl, line 4: " in count, count
        assert ".items.jsonl, line 6: item " in count and "'probs' is not a list of numbers" in count
        driver.find_element(By.ID, "f-id").send_keys("2345")  # found, and shown, all the same
        [odd] = driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")
        odd.click()
        wait_for(driver, "document.getElementById('item-title').textContent.endsWith('12345')")
        said = driver.find_element(By.CSS_SELECTOR, "#candidates tbody tr").text
        assert "label log-probabilities: Anger –, Disgust -1.000" in said, said


def test_an_item_s_level_is_numbered_as_the_ambiguity_table_numbers_it(page):
    """The records keep levels 0-4; the page, like the tables' ``level 1`` to ``level 5``, says
    1-5, in the item list, its filter and an item's own view."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from harness.record import read_items

    path, dataset = page
    _, items = read_items(path.parent / "cells" / "hostile-crema_d-base.items.jsonl")
    level = {item["id"]: item["level"] + 1 for item in items}
    with opened(path, "hostile-crema_d-base") as driver:
        header = driver.find_element(By.CSS_SELECTOR, "table[data-table=ambiguity] tr"
                                     ).get_attribute("textContent")  # on the hidden tab
        assert "level 1" in header and "level 5" in header and "level 0" not in header
        rows = driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")
        assert {r.get_attribute("data-item"): int(r.find_elements(By.TAG_NAME, "td")[1].text)
                for r in rows} == level
        choices = [o.get_attribute("value") for o in
                   driver.find_elements(By.CSS_SELECTOR, "#f-level option")][1:]
        assert choices == sorted(str(n) for n in set(level.values()))
        top = max(level.values())
        chooser = driver.find_element(By.ID, "f-level")
        Select(chooser).select_by_value(str(top))  # a person's choice fires "input" too
        driver.execute_script("arguments[0].dispatchEvent(new Event('input'))", chooser)
        assert listed(driver) == [i for i in dataset.ids if level[i] == top]
        driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")[0].click()
        wait_for(driver, "document.querySelectorAll('#item-metrics tbody tr').length > 0")
        said = driver.find_element(By.ID, "item-metrics").text
        assert said.rstrip().endswith(f"({top})"), said
