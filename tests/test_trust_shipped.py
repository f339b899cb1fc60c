"""The shipped model on real films: intended use on children, adults and laterals, and the one
decision rule on every Kermany test film. These are checks on films the choices never saw (the
Kermany official test split, the adults' held-out patients), not regression bounds tuned to them:
the targets are the issue's (<= 2% of children flagged, >= 95% of adult frontal films)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pneumo import config

pytestmark = [pytest.mark.data, pytest.mark.slow]

EXTRA_LABS = ({"wbc": 16.2}, {"wbc": 7.0}, {"sodium": 131.0})


@pytest.fixture(scope="module")
def shipped():
    from pneumo.inference.predictor import Predictor

    return Predictor.load(config.default_model_dir())


@pytest.fixture(scope="module")
def kermany_test_films(data_dir):
    root = Path(data_dir) / "kermany" / "chest_xray" / "test"
    films = sorted(root.glob("*/*.jpeg"))
    assert len(films) == 624
    return films


@pytest.fixture(scope="module")
def test_results(shipped, kermany_test_films):
    """Every Kermany test film alone and with each extra lab, in one predict_many call."""
    from pneumo.inference.case import Case

    images = [Case.from_sources(f, None, panel=shipped.panel).image for f in kermany_test_films]
    cases = [Case(image) for image in images]
    for labs in EXTRA_LABS:
        reading = Case.from_sources(None, labs, panel=shipped.panel).labs
        cases += [Case(image, reading) for image in images]
    results = shipped.predict_many(cases)
    assert not any(isinstance(r, Exception) for r in results)
    n = len(images)
    return [results[k * n:(k + 1) * n] for k in range(1 + len(EXTRA_LABS))]


def test_the_bundle_states_its_population_and_one_threshold(shipped):
    assert shipped.population is not None and shipped.population.age_min == 1 and shipped.population.age_max == 5
    assert shipped.film_check is not None
    assert {v["threshold"] for v in shipped.meta["views"].values()} == {shipped.threshold}


def test_kermany_test_films_are_within_the_intended_use(test_results):
    alone = test_results[0]
    flagged = np.mean([r.intended_use != "within" for r in alone])
    assert flagged <= 0.02, f"{flagged:.3f} of the 624 Kermany test films flagged"
    assert alone[0].intended_use == "within" and alone[0].label in ("PNEUMONIA", "NORMAL")


def test_adding_a_lab_never_moves_the_label_against_the_probability(test_results):
    """For every Kermany test film and each of three single labs: the label may change only the
    way the probability moved (one threshold, one rule)."""
    alone = test_results[0]
    against = 0
    for with_lab in test_results[1:]:
        for a, b in zip(alone, with_lab):
            assert b.threshold == a.threshold
            if b.probability >= a.probability and a.label == "PNEUMONIA":
                against += b.label != "PNEUMONIA"
            if b.probability <= a.probability and a.label == "NORMAL":
                against += b.label != "NORMAL"
    assert against == 0


def test_held_out_adult_films_without_a_header_are_outside(shipped, data_dir):
    from pneumo.inference.case import Case
    from pneumo.training.intended_use_fit import adult_films

    adults = adult_films(Path(data_dir))
    test = adults[adults["split"] == "test"]
    assert len(test) > 100
    cases = [Case.from_sources(p, None, panel=shipped.panel) for p in test["path"]]
    results = shipped.predict_many(cases, allow_outside=False)
    outside = [r.intended_use == "outside" for r in results if not isinstance(r, Exception)]
    assert np.mean(outside) >= 0.95, f"{np.mean(outside):.3f} of {len(outside)} held-out adult films flagged"
    first = next(r for r in results if not isinstance(r, Exception) and r.intended_use == "outside")
    assert first.label == "" and first.band == "caution"


def test_a_kermany_film_in_a_dicom_whose_header_says_45_is_outside(shipped, kermany_test_films):
    from PIL import Image

    from pneumo.inference.case import Case
    from pneumo.qa.hostile_bytes import dicom_bytes

    pixels = np.asarray(Image.open(kermany_test_films[0]).convert("L"), np.uint16) * 16   # 12-bit
    film = dicom_bytes(*pixels.shape, modality="CR", pixels=pixels, PatientAge="045Y", ViewPosition="AP")
    as_child = shipped.predict(Case.from_sources(kermany_test_films[0], None, panel=shipped.panel))
    as_adult = shipped.predict(Case.from_sources(film, None, panel=shipped.panel), allow_outside=False)
    assert as_child.intended_use == "within"
    assert as_adult.intended_use == "outside" and as_adult.label == "" and "DICOM header" in as_adult.intended_use_reason
