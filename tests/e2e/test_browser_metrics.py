"""The metrics page at a researcher's width (1440 px): the metrics table fits (its F1 column is not
cut off), the paired differences show, and adding the shipped bundle keeps the filters and legends readable.
Screenshots: tests/e2e/artifacts/metrics-1440*.png."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e
WIDE = {"width": 1440, "height": 900}


def _open_metrics(page, url):
    page.set_viewport_size(WIDE)
    page.goto(f"{url}/metrics")
    page.get_by_role("heading", level=1).first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    _settled(page)


def _settled(page) -> None:
    """Wait out the rerun a click starts: until Streamlit's running indicator is gone and every
    section (metrics, fusion vs others, regimes, Tables 1 and 2) is drawn, so nothing is measured mid-draw."""
    page.wait_for_timeout(300)      # the rerun's indicator appears a moment after the click
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stStatusWidget'] [data-testid='stStatusWidgetRunningIcon'], [data-testid='stSkeleton']\")"
                           " && document.querySelectorAll(\"[data-testid='stDataFrame']\").length >= 5", timeout=90_000)


def _overflow(page, frame_index: int = 0) -> dict:
    """How far the nth table's grid reaches past its own box, and past the main column (px)."""
    return page.evaluate("""(i) => {
        const frame = document.querySelectorAll("[data-testid='stDataFrame']")[i];
        const main = document.querySelector("[data-testid='stMain']").getBoundingClientRect();
        const box = frame.getBoundingClientRect();
        const scroller = frame.querySelector('.dvn-scroller') || frame;
        return {scroll: scroller.scrollWidth - scroller.clientWidth, right: box.right - main.right,
                width: box.width};
    }""", frame_index)


def _hidden_chips(page) -> list[str]:
    """The filter pills a reader cannot read whole: text cut short, or a pill past its filter's column."""
    return page.evaluate("""() => [...document.querySelectorAll("[data-testid='stButtonGroup']")]
        .flatMap(group => { const col = group.closest("[data-testid='stColumn']").getBoundingClientRect();
            return [...group.querySelectorAll('button')].filter(b => { const r = b.getBoundingClientRect();
                return b.scrollWidth > b.clientWidth + 1 || r.left < col.left - 1 || r.right > col.right + 1; })
                .map(b => b.textContent); })""")


def test_metrics_table_fits_and_differences_show(page, app_url, shot):
    _open_metrics(page, app_url)
    frame = page.locator("[data-testid='stDataFrame']").first
    frame.wait_for()
    over = _overflow(page)
    assert not _hidden_chips(page)
    assert over["scroll"] <= 1 and over["right"] <= 1, over
    # the paired differences: fusion vs the other models, a figure and a table
    page.get_by_text("Fusion vs the other models").first.wait_for()
    page.get_by_text("Fusion − Image only").first.wait_for(timeout=60_000)     # after the bootstrap's spinner
    page.wait_for_function("() => document.querySelectorAll(\"[data-testid='stDataFrame']\").length >= 5",
                           timeout=60_000)   # metrics, fusion vs others, regimes, Tables 1 and 2
    for i in range(page.locator("[data-testid='stDataFrame']").count()):   # every table fits, not only the first
        assert _overflow(page, i)["scroll"] <= 1, (i, _overflow(page, i))
    assert page.get_by_text("Read the paper's Table 2 with care").first.is_visible()   # its F1 read against its accuracy
    shot(page, "metrics-1440")


def test_adding_the_shipped_bundle_stays_readable(page, app_url, shot):
    _open_metrics(page, app_url)
    option = page.locator("[data-testid='stButtonGroup'] button").filter(has_text="(shipped)")
    if not option.count():
        pytest.skip("no shipped bundle in models/")
    option.first.click()
    page.get_by_text("shipped pneumo-fusion").first.wait_for(timeout=60_000)
    _settled(page)
    page.locator(".js-plotly-plot").first.wait_for()
    assert not _hidden_chips(page)
    assert page.get_by_text("shipped pneumo-fusion").first.is_visible()
    assert _overflow(page)["scroll"] <= 1, _overflow(page)
    page.wait_for_function("() => document.querySelectorAll(\"[data-testid='stDataFrame']\").length >= 5",
                           timeout=60_000)   # every section drawn before the picture
    shot(page, "metrics-1440-bundle")
