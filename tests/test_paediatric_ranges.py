"""Paediatric reference ranges (children 1-5) for every test of the panel, and the page's use of them:
no adult range (WBC 4-11, Hb 12-17.5, creatinine 0.5-1.2) shown or flagged for a child of 1-5."""
from __future__ import annotations

import doctest

import pytest

from pneumo.data.labs import default_panel
from pneumo.data.labs import paediatric_ranges as pr
from pneumo.data.labs.healthy import healthy_value
from pneumo.present import lab_display

PANEL = default_panel()


def test_every_panel_test_has_a_range_for_every_age_1_to_5_inside_its_plausible_limits():
    for t in PANEL:
        for age in (1, 1.5, 2, 3, 4, 5, 5.99, None):
            lo, hi = pr.reference_range(t.key, age)
            assert t.plaus_low <= lo < hi <= t.plaus_high, (t.key, age)


def test_adult_ranges_are_replaced_for_children():
    for age in (2, 4, None):
        kids = pr.panel_for_age(PANEL, age)
        assert (kids["wbc"].ref_low, kids["wbc"].ref_high) != (4.0, 11.0)
        assert kids["hemoglobin"].ref_high <= 13.5 and kids["creatinine"].ref_high <= 0.5
    assert (pr.reference_range("wbc", 2), pr.reference_range("wbc", 5)) == ((6.0, 17.5), (5.5, 15.5))
    assert pr.reference_range("wbc", None) == (5.5, 17.5)           # unknown age: the span over 1-5
    assert pr.reference_range("wbc", 30) is None and pr.reference_range("wbc", 0.5) is None
    adult = pr.panel_for_age(PANEL, 30)
    assert (adult["wbc"].ref_low, adult["wbc"].ref_high) == (4.0, 11.0)   # outside 1-5: the panel's own
    assert PANEL["wbc"].ref_low == 4.0                                   # the panel itself is untouched


def test_flags_use_the_childs_range():
    wbc = pr.for_age(PANEL["wbc"], 3)
    assert lab_display.range_flag(wbc, 14.0) is None               # normal for a 3-year-old, high for an adult
    assert lab_display.range_flag(PANEL["wbc"], 14.0) == "high"
    assert lab_display.range_flag(pr.for_age(PANEL["creatinine"], 3), 0.8) == "high"
    assert "4–11" not in lab_display.ref_text(wbc) and "6–17.5" in lab_display.ref_text(wbc)


def test_healthy_value_is_the_midpoint_for_the_age():
    assert healthy_value(PANEL["hemoglobin"], 4) == 12.5
    assert healthy_value(PANEL["wbc"], 2) == 11.75
    assert healthy_value(PANEL["wbc"], 40) == 7.5                # an adult: the panel's range


def test_the_module_text_runs():
    failures, _ = doctest.testmod(pr, extraglobs={"panel": PANEL})
    assert failures == 0


def test_not_used_tests_say_why():
    lines = lab_display.not_used_lines(["crp", "CRP (mg/L)", "procalcitonin", "zzz"], PANEL)
    assert lines[0] == "CRP: not a model input (the model reads the 20 tests of its panel)"
    assert len(lines) == 3 and "Procalcitonin: not a model input" in lines[1] and "zzz: not a lab test" in lines[2]


# --- on the page -----------------------------------------------------------------------------

@pytest.fixture
def page(fake_predictor, home):
    from test_app import _app
    return _app()


from test_app import fake_predictor, home  # noqa: E402,F401  (fixtures)


def test_the_form_shows_childrens_ranges(page):
    from test_app import _texts
    at = page
    wbc = at.number_input(key="lab_wbc")
    assert wbc.placeholder == "5.5–17.5" and "4–11" not in wbc.help
    assert at.number_input(key="lab_hemoglobin").placeholder == "10.5–13.5"
    assert "children aged 1-5" in _texts(at, "caption")
    wbc.set_value(14.0).run()                                       # high for an adult, normal for a child
    assert "Outside the reference range" not in _texts(at, "markdown")
    at.number_input(key="age").set_value(30.0).run()                # an adult's age: the panel's ranges
    assert at.number_input(key="lab_wbc").placeholder == "4–11"
    assert "Outside the reference range" in _texts(at, "markdown")


def test_a_lab_file_says_crp_is_not_a_model_input(page):
    from test_app import _texts
    at = page
    at.radio(key="labs_mode").set_value("File (CSV or FHIR JSON)").run()
    at.file_uploader(key="labs_file").upload("labs.csv", b"wbc,hemoglobin,crp\n14,12,80\n", "text/csv").run()
    assert not at.exception, at.exception
    caps = _texts(at, "caption")
    assert "CRP: not a model input (the model reads the 20 tests of its panel)" in caps
    table = at.dataframe[0].value
    assert set(table["Reference"]) == {"5.5–17.5", "10.5–13.5"} and set(table["Note"]) == {""}
