"""The lab bars and the what-if agree on the shipped model (issue 27 item 4): a bar is what moving a
test from a healthy value to the patient's did, so setting that test back to healthy moves P the
other way. Checked on the page's example (a Kermany pneumonia film, WBC 16.2, sodium 131) and on
random panels, with and without a film, wherever both effects are above the noise floor."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo import config
from pneumo.data.labs.healthy import healthy_value
from pneumo.present import app_support as sup
from pneumo.present.lab_effects import disagreeing, interaction_line

pytestmark = [pytest.mark.data, pytest.mark.slow]
FLOOR = 0.001          # below this a bar reads "negligible" on the page and a sign means nothing


@pytest.fixture(scope="module")
def shipped(shipped_bundle):
    from pneumo.inference.predictor import Predictor

    return Predictor.load(config.default_model_dir())


@pytest.fixture(scope="module")
def films():
    found = sup.example_images()
    assert set(found) == {"pneumonia", "normal"}, "the Kermany example films are missing"
    return {k: p.read_bytes() for k, p in found.items()}


def _agreement(pred, case):
    """(test, bar, P - P(test at healthy), what_if P at healthy) for each measured test."""
    e = pred.explain(case, gradcam=False)
    p = e.result.probability
    out = []
    for k, bar in e.shap_values.items():
        at_healthy = pred.what_if(case, {k: healthy_value(pred.panel[k])})["probability"]
        assert e.back_to_normal[k] == pytest.approx(p - at_healthy, abs=2e-6)   # the page's line is the what-if's
        out.append((k, bar, p - at_healthy, e.shap_noise[k]))
    return e, out


def test_the_example_case_bars_and_what_if_agree(shipped, films):
    from pneumo.inference.case import Case

    case = Case.from_sources(image=films["pneumonia"], labs={"wbc": 16.2, "sodium": 131.0}, panel=shipped.panel)
    e, rows = _agreement(shipped, case)
    bars = {k: bar for k, bar, _, _ in rows}
    # hyponatraemia and a high white count both push towards pneumonia against a normal panel
    assert bars["sodium"] > 0 and bars["wbc"] > 0
    assert shipped.what_if(case, {"sodium": 140.0})["probability"] < e.result.probability
    assert e.shap_base + sum(bars.values()) == pytest.approx(e.result.probability, abs=2e-6)
    assert e.lab_reference == {"sodium": 140.0, "wbc": 11.5}        # a child of 1-5 (no age given): 5.5-17.5
    for k, bar, back, _ in rows:
        assert np.sign(bar) == np.sign(back), (k, bar, back)
    assert disagreeing(e) == [] and interaction_line(e, shipped.panel) is None


@pytest.mark.parametrize("film", ["pneumonia", "normal", None])
def test_random_panels_bars_and_what_if_agree_in_sign(shipped, films, film):
    from pneumo.data.labs.paediatric_ranges import for_age
    from pneumo.inference.case import Case

    rng = np.random.default_rng({"pneumonia": 1, "normal": 2, None: 3}[film])
    checked, differ = 0, 0
    for _ in range(6):
        keys = rng.choice(shipped.panel.keys, size=int(rng.integers(2, 9)), replace=False)
        labs = {}
        for k in keys:       # a value up to a range's width beyond the range the bars read against (a child's)
            t = for_age(shipped.panel[k], None)
            span = t.ref_high - t.ref_low
            labs[str(k)] = float(np.clip(rng.uniform(t.ref_low - span, t.ref_high + span), t.plaus_low, t.plaus_high))
        case = Case.from_sources(image=films[film] if film else None, labs=labs, panel=shipped.panel)
        e, rows = _agreement(shipped, case)
        named = disagreeing(e)
        for k, bar, back, noise in rows:
            floor = FLOOR + 3 * noise
            if abs(bar) > floor and abs(back) > floor:
                checked += 1
                if np.sign(bar) != np.sign(back):     # an interaction: the page must say so, for this test
                    differ += 1
                    assert k in named and interaction_line(e, shipped.panel), (film, labs, k, bar, back)
        if not named:
            assert interaction_line(e, shipped.panel) is None
    assert checked >= 5 and differ <= checked // 5, (checked, differ)
