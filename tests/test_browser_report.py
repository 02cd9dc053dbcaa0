"""The report in a real browser: headless Chromium loads it cleanly, shows its plots, and runs no injected script."""

from __future__ import annotations

import re

import pytest
from test_report import PAYLOAD, make_run

from longscope.report import browser
from longscope.report.commands import build_report

pytestmark = pytest.mark.skipif(
    not browser.CHROMIUM.exists(), reason=f"{browser.CHROMIUM} is missing; install with `{browser.INSTALL}`"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LONGSCOPE_CACHE", str(root / "cache"))
        folder = make_run(root / "run", tiny_model_dir, lengths=[512, 768], depths=[0.0, 1.0])
        return build_report(folder).path


def test_report_loads_without_errors_and_shows_its_plots(report):
    with browser.headless(1280, 900) as driver:
        driver.get(report.resolve().as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        images = driver.find_elements("css selector", "figure img")
        assert len(images) >= 5
        for image in images:
            driver.execute_script("arguments[0].scrollIntoView()", image)
            assert image.is_displayed()
            assert (
                driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
            )
        # Every figure says what it shows.
        captions = driver.find_elements("css selector", "figure figcaption")
        assert len(captions) == len(images) and all(c.text.strip() for c in captions)
        severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert severe == []


def test_every_interval_is_shown_with_its_rule_in_sight(report):
    with browser.headless(1280, 900) as driver:
        driver.get(report.resolve().as_uri())
        tables = driver.find_elements("css selector", "table.scores")
        assert tables
        for table in tables:
            # Each printed interval (or "no interval") carries a mark that the legend right under the table
            # spells out, visibly: a hover title alone would be lost on a phone.
            marks = {m.text for m in table.find_elements("css selector", ".ci sup")}
            legend = table.find_element("xpath", "../following-sibling::ul[contains(@class, 'legend')][1]")
            assert legend.is_displayed()
            spelled = {item.text.split(" ", 1)[0] for item in legend.find_elements("tag name", "li")}
            assert marks and marks <= spelled
            shortest = table.find_elements("css selector", "tbody tr td:nth-child(2) .ci")
            assert shortest
            for ci in shortest:
                assert re.fullmatch(r"(\[\d+\.\d+, \d+\.\d+\]|no interval)[a-z]+ n=\d+", ci.text), ci.text


def test_injected_script_in_a_prediction_does_not_run(report):
    with browser.headless(1280, 900) as driver:
        driver.get(report.resolve().as_uri())
        assert driver.execute_script("return window.__pwned === undefined")
        assert driver.title != "pwned" and driver.title.startswith("longscope")
        # The output is on the page as text, where a reader can see what the model said.
        driver.execute_script("document.getElementById('predictions-list').open = true")
        table = driver.find_element("id", "predictions-table")
        assert PAYLOAD in table.text
        assert driver.execute_script("return document.querySelectorAll('script').length") == 0


def test_report_fits_a_phone_screen(report):
    with browser.headless() as driver:
        browser.emulate_phone(driver, 390, 844)
        driver.get(report.resolve().as_uri())
        assert driver.execute_script("return window.innerWidth") == 390
        # Wide tables scroll inside their own boxes; the page itself never scrolls sideways.
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        widths = driver.execute_script(
            "return [...document.querySelectorAll('figure img')].map(i => i.getBoundingClientRect().right)"
        )
        assert widths and max(widths) <= driver.execute_script("return window.innerWidth") + 1
