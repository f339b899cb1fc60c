"""The labs' bars and what-if as a screen shows them (pneumo.present.lab_effects): the what-if's
values from the schema's plausible range, 'no change' for what rounds to 0, an axis that does not
exaggerate, the negligible-labs line and the interaction line."""
from types import SimpleNamespace

import pytest

from pneumo.data.labs import default_panel
from pneumo.data.labs.healthy import healthy_row, healthy_value
from pneumo.present import figures, lab_effects as fx


def _expl(values, back, *, p=0.99, base=0.985, labs_step=-0.003, image=True, noise=None):
    result = SimpleNamespace(probability=p, modalities={"image": image, "labs": True},
                             modality_contribution={"image": 0.6, "labs": labs_step})
    display = [{"key": k, "name": default_panel()[k].name, "value": v} for k, v in
               {"wbc": 16.2, "sodium": 131.0, "glucose": 148.0}.items() if k in values]
    return SimpleNamespace(result=result, shap_values=values, shap_base=base, lab_display=display,
                           lab_reference={k: healthy_value(default_panel()[k]) for k in values},
                           back_to_normal=back, shap_noise=noise or {})


@pytest.mark.parametrize("test", list(default_panel()))
def test_what_if_spans_the_plausible_range_finely_near_normal(test):
    v = fx.what_if_values(test, None)
    assert v[0] == test.plaus_low and v[-1] == test.plaus_high and v == sorted(set(v))
    assert healthy_value(test) in v
    near = [x for x in v if test.ref_low <= x <= test.ref_high]
    assert len(near) >= 10                        # fine steps across the reference range
    assert len(v) <= 250                          # an arrow key walks it in a sensible number of steps


def test_what_if_reaches_clinical_extremes_and_holds_the_patients_value():
    panel = default_panel()
    wbc, na = fx.what_if_values(panel["wbc"], 16.2), fx.what_if_values(panel["sodium"], 131.0)
    assert 16.2 in wbc and 0.5 in wbc and max(wbc) >= 40 and 131.0 in na
    assert min(na) <= 115 and max(na) >= 160 and {115.0, 125.0, 160.0} <= set(na)
    assert fx.nearest(na, 131.2) == 131.0


def test_a_change_that_rounds_to_zero_is_no_change():
    assert fx.change_text(0.0004) is None and fx.change_text(-0.00049) is None
    assert fx.change_text(0.0006) == "+0.001" and fx.change_text(-0.0123) == "-0.012"


def test_tiny_bars_sit_on_an_axis_of_at_least_five_hundredths():
    assert fx.axis_reach([0.001, -0.003]) == fx.MIN_REACH
    assert fx.axis_reach([0.2]) == pytest.approx(0.27)
    e = _expl({"wbc": 0.003, "sodium": 0.002}, {"wbc": 0.003, "sodium": 0.002})
    fig = figures.shap_figure(fx.effects_frame(e))
    assert fig.layout.xaxis.tickvals[0] == -0.05 and fig.layout.xaxis.tickvals[-1] == 0.05
    assert list(fig.data[0].y) == ["Sodium 131 (normal 140)", "WBC 16.2 (normal 11.5)"]   # a child 1-5: paediatric WBC


def test_negligible_labs_are_said_to_be_negligible():
    e = _expl({"wbc": 0.003, "sodium": 0.002}, {"wbc": 0.003, "sodium": 0.002})
    line = fx.negligible_line(e)
    assert line.startswith("The labs moved P by less than 0.01") and "this answer is the film's" in line
    big = _expl({"wbc": 0.05}, {"wbc": 0.05}, p=0.6, base=0.55, labs_step=0.04)
    assert fx.negligible_line(big) is None
    assert "P would be 0.550" in fx.caption(big) and "+0.05" in fx.caption(big)


def test_a_bar_and_its_what_if_pointing_opposite_ways_is_named():
    panel = default_panel()
    agree = _expl({"wbc": 0.03, "sodium": 0.01}, {"wbc": 0.02, "sodium": 0.012})
    assert fx.disagreeing(agree) == [] and fx.interaction_line(agree, panel) is None
    tiny = _expl({"wbc": 0.03, "sodium": 0.0005}, {"wbc": 0.02, "sodium": -0.0008})   # under the floor
    assert fx.disagreeing(tiny) == []
    noisy = _expl({"wbc": 0.03, "sodium": 0.004}, {"wbc": 0.02, "sodium": -0.004}, noise={"sodium": 0.002})
    assert fx.disagreeing(noisy) == []
    differ = _expl({"wbc": 0.03, "sodium": 0.01}, {"wbc": 0.02, "sodium": -0.01})
    assert fx.disagreeing(differ) == ["sodium"]
    assert fx.interaction_line(differ, panel).startswith("For Sodium the bar and the what-if point opposite ways")


def test_the_reference_row_is_normal_where_measured_and_not_measured_elsewhere():
    import numpy as np
    panel = default_panel()
    row = np.full(len(panel), np.nan)
    row[panel.keys.index("sodium")] = 131.0
    ref = healthy_row(panel, row)
    assert ref[panel.keys.index("sodium")] == 140.0 and np.isnan(np.delete(ref, panel.keys.index("sodium"))).all()
