"""Every field of an item's evidence line set to each odd value, against report.html in Chromium.

    python -m bench.fuzz_page --cell tiny-qwen2-audio-iemocap-w-bon
    python -m bench.fuzz_page --partly-invalid --cell guessing-crema_d-base --rule uniform_guess

Takes the run ``python -m bench.fuzz_files fields`` makes (every cell of the embedded default,
under ``--work``; with ``--partly-invalid``, its run with invalid items) and, for each field of
the cell's first item line (or the first of ``--rule``; of a list, its first two entries),
writes that cell's items file with eight copies of the item, the field set to each of
:data:`bench.fuzz_files.ODD_VALUES` and ``true``; builds the report, opens the page in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``), opens the cell and its first ten
items. The page must list the items and open each, with no error in the browser's console. Not
part of the tests (minutes; CI runs two cells'): ``docs/reliability.md`` says what it found.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from bench.fuzz_files import ODD_VALUES, json_paths, one_run, set_at
from bench.partly_invalid import partly_invalid_run

LISTED = "document.querySelectorAll('#item-list tbody tr').length > 0"


def odd_items(lines: list[str], where: tuple, line: int = 1) -> str:
    """The items file with its item on ``line`` (the first by default) copied once per odd value,
    ``where`` set to it, the copies first (among the items the page opens)."""
    copies = [json.dumps(set_at({**json.loads(lines[line]), "id": f"odd{k}"}, where, value))
              for k, value in enumerate([*ODD_VALUES, True])]
    return "\n".join([lines[0], *copies, *lines[1:line], *lines[line + 1:]])


def item_line(lines: list[str], rule: str | None) -> int:
    """The line of the first item whose parsing rule is ``rule`` (``"none"``: an item without
    one, whose call failed or whose answer gave no distribution); the first item's where ``rule``
    is None."""
    if rule is None:
        return 1
    wanted = None if rule == "none" else rule
    for number, line in enumerate(lines[1:], start=1):
        if line and json.loads(line).get("rule") == wanted:
            return number
    raise SystemExit(f"no item of rule {rule!r}")


def waited(driver, script: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(f"return {script}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.03)
    return True


def page_problems(driver, page: Path, cell: str) -> list[str]:
    """What went wrong opening ``cell`` and its first ten items on ``page``, console errors
    included."""
    from selenium.webdriver.common.by import By

    driver.get_log("browser")  # an earlier page's, dropped
    driver.get(page.as_uri())
    problems = []
    if not waited(driver, "window.harnessReady"):
        problems.append("the page never became ready")
    else:
        driver.find_element(By.ID, "tab-cells").click()
        driver.find_element(By.CSS_SELECTOR, f"#cell-list tr[data-cell={cell}]").click()
        if not waited(driver, LISTED):
            problems.append("no item listed: " + driver.find_element(By.ID, "item-count").text[:200])
        for row in driver.find_elements(By.CSS_SELECTOR, "#item-list tbody tr")[:10]:
            ident = row.get_attribute("data-item")
            row.click()
            title = f"document.getElementById('item-title').textContent.endsWith({json.dumps(ident)})"
            if not waited(driver, title, 3.0):
                problems.append(f"item {ident} did not open")
    return problems + [e["message"][:300] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def fuzz_page(run: Path, cell: str, rule: str | None = None) -> int:
    """Each field of ``cell``'s first item (of ``rule``: :func:`item_line`) against the page; the
    number of fields that broke it."""
    from harness.report.build import build_report
    from tests.report.browser import headless_chromium

    broke = 0
    with tempfile.TemporaryDirectory(prefix="harness-fuzz-") as work, headless_chromium() as driver:
        lines = (run / "cells" / f"{cell}.items.jsonl").read_text(encoding="utf-8").split("\n")
        line = item_line(lines, rule)
        paths = json_paths(json.loads(lines[line]))
        for where in paths:
            copy = Path(work) / "run"
            shutil.rmtree(copy, ignore_errors=True)
            (copy / "cells").mkdir(parents=True)
            for path in (run / "cells").glob(f"{cell}.*"):
                shutil.copy(path, copy / "cells")
            (copy / "cells" / f"{cell}.items.jsonl").write_text(odd_items(lines, where, line))
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                build_report(copy)
            if problems := page_problems(driver, copy / "report.html", cell):
                broke += 1
                print(f"{where}: {problems}")
    what = "first item" if rule is None else f"first item of rule {rule}"
    print(f"{len(paths)} fields of {cell}'s {what} ({json.loads(lines[line])['id']}): "
          f"{broke} broke the page")
    return broke


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="tiny-qwen2-audio-iemocap-w-bon")
    parser.add_argument("--rule", help="the first item whose parsing rule is this (none: "
                                       "an invalid item's) rather than the first item")
    parser.add_argument("--partly-invalid", action="store_true",
                        help="a cell of a run with invalid items (partly-crema_d-base or "
                             "guessing-crema_d-base), as fuzz_files fields --partly-invalid")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-fuzz")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    run = partly_invalid_run(args.work) if args.partly_invalid else one_run(args.work, whole=True)
    return 1 if fuzz_page(run, args.cell, args.rule) else 0


if __name__ == "__main__":
    sys.exit(main())
