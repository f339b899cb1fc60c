"""A case outside the intended use in a real browser: the reason, no number; "show the number
anyway" shows the number only (no label word, no verdict colour), and it is off again for the next
film. Screenshots in tests/e2e/artifacts/ (07-outside-*)."""
from __future__ import annotations

import re

import pytest

from pneumo import config

from test_browser import MODEL_WAIT, _open, _upload_film, _wait_drawn

pytestmark = [pytest.mark.e2e, pytest.mark.data, pytest.mark.usefixtures("shipped_bundle")]
ADULTS = "adult/covid-19-image-repository/png"
FIRST, SECOND = "00d96e05.png", "08d780ae.png"      # both flagged by the learned film check as adults'


def _toggle(page):
    return page.get_by_label(re.compile("Show the number anyway"))


def test_show_anyway_resets_when_a_new_film_is_uploaded(page, app_url, shot):
    root = config.data_dir() / ADULTS
    _open(page, app_url)
    _upload_film(page, root / FIRST)
    page.get_by_text("No second opinion: this case is outside the model's intended use").first.wait_for(timeout=MODEL_WAIT)
    _wait_drawn(page)
    assert not page.get_by_text("P(pneumonia)").count()
    assert not _toggle(page).is_checked()
    page.get_by_text("Show the number anyway").first.click()
    page.get_by_text("The number below is not a second opinion").first.wait_for(timeout=MODEL_WAIT)
    page.locator(".pneumo-result").first.wait_for(timeout=MODEL_WAIT)          # the number, on its own
    _wait_drawn(page)
    assert _toggle(page).is_checked()
    assert page.locator(".pneumo-result.PNEUMONIA, .pneumo-result.NORMAL").count() == 0   # no verdict colour
    assert not page.get_by_text(re.compile(r"With this value: (PNEUMONIA|NORMAL)")).count()
    shot(page, "07-outside-shown-anyway")

    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(root / SECOND))
    page.locator("[data-testid='stFileChipName']", has_text=SECOND).first.wait_for(state="attached", timeout=MODEL_WAIT)
    page.wait_for_function("() => !document.querySelector('.pneumo-result')", timeout=MODEL_WAIT)
    _wait_drawn(page)
    page.get_by_text("No second opinion: this case is outside the model's intended use").first.wait_for()
    assert not _toggle(page).is_checked()            # a new case: not asked
    assert not page.get_by_text("P(pneumonia)").count()
    assert not page.get_by_text("The number below is not a second opinion").count()
    shot(page, "07-outside-next-film")
