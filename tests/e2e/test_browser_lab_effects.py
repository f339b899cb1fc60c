"""The labs' bars and what-if in a real browser (issue 27 item 4): the measured example (a Kermany
pneumonia film, WBC 16.2, sodium 131) shows bars against normal values on an axis that does not
exaggerate, says the labs hardly moved the answer only when its own figures say so, and the what-if
keeps up with arrow-key presses. Screenshot: artifacts/09-lab-effects.png."""
from __future__ import annotations

import re

import pytest

from pneumo.present import app_support as sup
from test_browser import MODEL_WAIT, _open, _upload_film

pytestmark = [pytest.mark.e2e, pytest.mark.data, pytest.mark.usefixtures("shipped_bundle")]


def test_the_example_bars_and_a_what_if_that_keeps_up_with_the_keys(page, app_url, shot):
    _open(page, app_url)
    _upload_film(page, sup.example_images()["pneumonia"])
    page.get_by_text("Where the film drove the answer").first.wait_for(timeout=MODEL_WAIT)
    for label, value in ((r"^WBC", "16.2"), (r"^Sodium", "131")):
        box = page.get_by_label(re.compile(label)).first
        box.fill(value)
        box.press("Tab")
    page.get_by_text("2 of 20 values entered").first.wait_for(timeout=MODEL_WAIT)
    page.get_by_text("Each bar: what moving one test from a normal value").first.wait_for(timeout=MODEL_WAIT)
    main = page.locator("[data-testid='stMain']")
    page.get_by_text(re.compile(r"^At WBC 16\.2: ")).first.wait_for(timeout=MODEL_WAIT)
    text = main.inner_text()
    assert "WBC 16.2 10³/µL (normal 11.5)" in text and "Sodium 131 mEq/L (normal 140)" in text   # a child 1-5
    assert "no change" in text            # the what-if starts at the patient's own value
    # the "labs hardly moved it" line appears exactly when the page's own two figures say so
    step = float(re.search(r"the labs then take it to [0-9.]+ \(([-+][0-9.]+)\)", text).group(1))
    versus_normal = float(re.search(r"the bars add up to the difference \(([-+][0-9.]+)\)", text).group(1))
    said = "labs moved P by less than 0.01" in text
    if abs(step) >= 0.02 or abs(versus_normal) >= 0.02:
        assert not said, text
    elif step == 0 and abs(versus_normal) < 0.005:
        assert said, text
    page.get_by_text("Download the case report").first.scroll_into_view_if_needed()
    shot(page, "09-lab-effects")
    # the what-if: press the arrow key quickly, several times; the answer follows the last value
    thumb = page.get_by_role("slider").last        # the Grad-CAM opacity slider is inside its iframe
    thumb.focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight", delay=30)
    shown = thumb.get_attribute("aria-valuetext")
    assert shown == "20.2" or float(shown) > 16.2
    page.get_by_text(re.compile(rf"^At WBC {re.escape(shown)}: ")).first.wait_for(timeout=10_000)
    assert "no change" not in main.inner_text().split("What if a lab were different?")[1].split("Back to normal")[0]
    shot(page, "10-what-if-after-keys")
