"""The study page in headless Chromium against ``dkt study serve`` in a subprocess.

A rater answers with the arrow keys; the CSV must hold exactly what was on screen and what
was pressed, and a server killed with SIGKILL must lose none of it and resume the rater.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt_cli.app import app
from tests.serve.conftest import running
from tests.serve.study_data import make_study, read_log

keys = pytest.importorskip("selenium.webdriver.common.keys", reason="selenium is not installed")
by = pytest.importorskip("selenium.webdriver.common.by", reason="selenium is not installed")
ui = pytest.importorskip("selenium.webdriver.support.ui", reason="selenium is not installed")

LEFT, RIGHT, DOWN = keys.Keys.ARROW_LEFT, keys.Keys.ARROW_RIGHT, keys.Keys.ARROW_DOWN
#: A rater who presses all three keys in an irregular order.
PRESSES = [LEFT, RIGHT, DOWN, LEFT, LEFT, RIGHT, DOWN, RIGHT, RIGHT, LEFT] * 2
TOTAL = 20  # 18 design trials + 2 catch trials at the default --catch-rate 0.1


def study_args(design: Path, images: Path, out: Path) -> list[str]:
    return ["study", "serve", str(design), "--images", str(images), "--out", str(out)]


def state(browser) -> str:
    return browser.find_element(by.By.TAG_NAME, "body").get_attribute("data-state")


def wait_for(browser, condition, what: str, seconds: float = 20.0) -> None:
    ui.WebDriverWait(browser, seconds).until(lambda _: condition(), message=what)


def sign_in(browser, base: str, rater: str) -> None:
    browser.get(base + "/")
    wait_for(browser, lambda: state(browser) == "rater", "the page did not ask for a rater id")
    field = browser.find_element(by.By.ID, "rater-input")
    field.send_keys(rater)
    browser.find_element(by.By.ID, "start").click()
    wait_for(browser, lambda: state(browser) == "ready", "the first trial did not show")


def on_screen(browser, owners: dict[bytes, tuple[str, str]]) -> tuple[str, str, str]:
    """``(item, left method, right method)``, told from the bytes of the two pictures shown."""
    shown = []
    for side in ("left-img", "right-img"):
        src = browser.find_element(by.By.ID, side).get_attribute("src")
        with urllib.request.urlopen(src, timeout=10) as response:
            shown.append(owners[response.read()])
    (left, item), (right, item_right) = shown
    assert item == item_right
    return item, left, right


def progress(browser) -> str:
    return browser.find_element(by.By.ID, "progress").text


def answer(browser, owners, key: str, expected: list[tuple[str, str, str]]) -> None:
    """Press ``key`` on the trial shown, note what it must record, wait for the next one."""
    item, left, right = on_screen(browser, owners)
    position = int(progress(browser).split(" / ")[0])
    winner = {LEFT: left, RIGHT: right, DOWN: "tie"}[key]
    browser.find_element(by.By.TAG_NAME, "body").send_keys(key)
    expected.append((item, left, winner))
    wait_for(
        browser,
        lambda: (
            state(browser) == "done"
            or (state(browser) == "ready" and progress(browser) == f"{position + 1} / {TOTAL}")
        ),
        f"trial {position + 1} did not show after pressing a key on trial {position}",
    )


def recorded(out: Path) -> list[tuple[str, str, str]]:
    return [(r["item"], r["left"], r["winner"]) for r in read_log(out)]


def test_twenty_trials_by_key_press_land_in_the_csv(tmp_path: Path, browser) -> None:
    design, images, owners = make_study(tmp_path)
    out = tmp_path / "judgments.csv"
    expected: list[tuple[str, str, str]] = []
    with running(study_args(design, images, out), "/v1/health") as (base, _process):
        sign_in(browser, base, "R1")
        assert progress(browser) == f"1 / {TOTAL}"
        for key in PRESSES:
            answer(browser, owners, key, expected)
        assert state(browser) == "done"
        assert browser.find_element(by.By.ID, "done").is_displayed()
        assert f"all {TOTAL} comparisons" in browser.find_element(by.By.ID, "done-text").text
        browser.refresh()  # the rater id is remembered and the study stays finished
        wait_for(browser, lambda: state(browser) == "done", "a reload did not stay done")

    rows = read_log(out)
    assert len(rows) == TOTAL and recorded(out) == expected
    assert {r["rater"] for r in rows} == {"R1"} and all(int(r["ms"]) > 0 for r in rows)
    assert sorted(r["catch"] for r in rows if r["catch"]) == ["composite", "repeat"]

    fit = CliRunner().invoke(app, ["study", "fit", str(out), "--bootstrap", "50", "--json"])
    assert fit.exit_code == 0, fit.output
    data = json.loads(fit.stdout)
    assert data["judgments"] == TOTAL - 2 and data["items"] == 6
    assert {m["method"] for m in data["methods"]} == {"dkt", "reinhard", "adain"}
    assert data["ties"] == sum(r["winner"] == "tie" for r in rows if not r["catch"])
    assert [r["rater"] for r in data["catch"]["raters"]] == ["R1"]
    assert data["catch"]["catch_trials"] == 2


def test_a_killed_server_loses_no_answer_and_the_rater_resumes(tmp_path: Path, browser) -> None:
    design, images, owners = make_study(tmp_path)
    out = tmp_path / "judgments.csv"
    expected: list[tuple[str, str, str]] = []
    with running(study_args(design, images, out), "/v1/health") as (base, process):
        sign_in(browser, base, "R7")
        for key in PRESSES[:7]:
            answer(browser, owners, key, expected)
        process.kill()  # SIGKILL: no shutdown handler runs
        process.wait()
        browser.find_element(by.By.TAG_NAME, "body").send_keys(LEFT)
        wait_for(
            browser,
            lambda: "could not be sent" in browser.find_element(by.By.ID, "message").text,
            "the page did not say the answer was not sent",
        )
    assert recorded(out) == expected  # every confirmed answer, and nothing half-written

    with running(study_args(design, images, out), "/v1/health") as (base, _process):
        sign_in(browser, base, "R7")  # a new port is a new origin: the id is asked again
        assert progress(browser) == f"8 / {TOTAL}"
        item, left, _right = on_screen(browser, owners)
        # (item, left method) names a trial and its sides; a repeat swaps them, so a trial
        # already answered can never look like this unless it is being shown again
        assert (item, left) not in {(i, lf) for i, lf, _ in expected}
        for key in PRESSES[7:]:
            answer(browser, owners, key, expected)
        assert state(browser) == "done"
    rows = read_log(out)
    assert recorded(out) == expected and len({r["trial"] for r in rows}) == TOTAL
