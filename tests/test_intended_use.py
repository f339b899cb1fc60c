"""Intended use, the decision rule and the one attribution story, on made-up cases and the tiny
bundle (the shipped model's figures are in test_trust_shipped.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.inference.film_features import FEATURES as FILM_FEATURES
from pneumo.inference.decision_rule import band_of, label_of
from pneumo.inference.intended_use import (
    KERMANY_CHILDREN,
    OUTSIDE,
    UNKNOWN,
    WITHIN,
    AdultRegression,
    FilmCheck,
    FilmReading,
    assess,
    frontal_score,
    parse_age,
)
from pneumo.training.threshold import single_threshold

CHILD = FilmReading(0.01, 0.3, adult=False, lateral=False)
ADULT = FilmReading(0.99, 0.3, adult=True, lateral=False)
LATERAL = FilmReading(0.2, -0.1, adult=False, lateral=True)


def test_header_age_is_the_strongest_evidence():
    use = assess(KERMANY_CHILDREN, has_image=True, header_age=45.0, film=CHILD)
    assert use.status == OUTSIDE and use.evidence == "dicom header"
    assert "45" not in use.reason                                  # an age is never quoted
    assert assess(KERMANY_CHILDREN, has_image=True, header_age=3.0, given_age=45, film=ADULT).status == WITHIN


def test_given_age_then_the_film_check():
    assert assess(KERMANY_CHILDREN, has_image=True, given_age=70, film=CHILD).status == OUTSIDE
    assert assess(KERMANY_CHILDREN, has_image=True, given_age=4, film=ADULT).status == WITHIN
    assert assess(KERMANY_CHILDREN, has_image=True, film=ADULT).status == OUTSIDE
    assert assess(KERMANY_CHILDREN, has_image=True, film=CHILD).status == WITHIN
    assert assess(KERMANY_CHILDREN, has_image=True, film=None).status == UNKNOWN


def test_ages_at_the_edges_of_1_to_5():
    for age, status in ((0.5, OUTSIDE), (1.0, WITHIN), (5.9, WITHIN), (6.0, OUTSIDE)):
        assert assess(KERMANY_CHILDREN, has_image=False, given_age=age).status == status, age


def test_lateral_views():
    assert assess(KERMANY_CHILDREN, has_image=True, view_position="LL", header_age=3, film=CHILD).status == OUTSIDE
    assert assess(KERMANY_CHILDREN, has_image=True, given_age=3, film=LATERAL).status == OUTSIDE
    # a header that says frontal outweighs the learned view check
    assert assess(KERMANY_CHILDREN, has_image=True, view_position="AP", given_age=3, film=LATERAL).status == WITHIN


def test_labs_only_without_age_is_unknown():
    use = assess(KERMANY_CHILDREN, has_image=False)
    assert use.status == UNKNOWN and "no film and no age" in use.reason
    assert assess(None, has_image=True, film=CHILD).status == UNKNOWN


def test_parse_age():
    assert parse_age(" 4 ") == 4.0 and parse_age("") is None and parse_age(None) is None
    for bad in ("four", "-1", "200", "nan", "inf"):
        with pytest.raises(PneumoError):
            parse_age(bad)


def test_frontal_score_tells_a_bright_midline_from_a_lopsided_film():
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    frontal = 0.3 + 0.5 * np.exp(-((xx - 0.5) / 0.08) ** 2)                # bright midline, dark lungs
    lateral = 0.2 + 0.6 * np.clip((xx - 0.55) / 0.45, 0, 1) ** 2            # spine at one edge
    assert frontal_score(frontal[..., None]) > 0.2
    assert frontal_score(lateral[..., None]) < 0.05


def _regression(rng, dims, at):
    return AdultRegression(rng.normal(size=dims), np.ones(dims), rng.normal(size=dims), 0.1, at)


def test_film_check_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    check = FilmCheck(_regression(rng, 8, 0.7), None, 0.05)
    loaded = FilmCheck.load(check.save(tmp_path / "c.npz"))
    assert loaded.inputs == "embedding" and loaded.shape is None
    x = rng.normal(size=(5, 8))
    np.testing.assert_allclose(loaded.adult_scores(x)["embedding"], check.adult_scores(x)["embedding"])
    assert (loaded.embedding.at, loaded.frontal_at) == (0.7, 0.05)


def test_a_combined_check_flags_when_either_regression_says_adult(tmp_path):
    rng = np.random.default_rng(2)
    emb, shape = _regression(rng, 8, 0.5), _regression(rng, 2020, 0.5)
    check = FilmCheck.load(FilmCheck(emb, shape, 0.0).save(tmp_path / "both.npz"))
    assert check.inputs == "both"
    np.testing.assert_allclose(check.shape.coef, shape.coef)
    e, s = rng.normal(size=(40, 8)), rng.normal(size=(40, 2020))
    p = check.adult_scores(e, s)
    np.testing.assert_array_equal(check.adult_flags(e, s), (p["embedding"] >= 0.5) | (p["shape"] >= 0.5))
    assert 0 < check.adult_flags(e, s).sum() < 40
    film = rng.random((224, 224, 1)).astype(np.float32)
    from pneumo.inference.film_features import film_features

    f = film_features(film)
    for emb_at, shape_at in ((0.0, 1.1), (1.1, 0.0), (1.1, 1.1)):    # embedding only, shape only, neither
        check.embedding.at, check.shape.at = emb_at, shape_at
        reading = check.read(e[:1], film)
        assert reading.adult == (emb_at < 1 or shape_at < 1)
        if shape_at == 0.0:
            assert reading.adult_score == pytest.approx(float(check.shape.scores(f)[0]))


def test_film_checks_saved_before_the_combined_format_load_as_they_were(tmp_path):
    rng = np.random.default_rng(3)
    mean, coef = rng.normal(size=8), rng.normal(size=8)
    np.savez(tmp_path / "old.npz", mean=mean, scale=np.ones(8), coef=coef, intercept=np.array(0.2),
             thresholds=np.array([0.6, 0.04]))                             # 1.5.0: no `inputs`
    old = FilmCheck.load(tmp_path / "old.npz")
    assert old.inputs == "embedding" and (old.embedding.at, old.frontal_at) == (0.6, 0.04)
    np.testing.assert_allclose(old.embedding.coef, coef)
    np.savez(tmp_path / "shape.npz", mean=mean, scale=np.ones(8), coef=coef, intercept=np.array(0.2),
             thresholds=np.array([0.6, 0.04]), inputs=np.array(FILM_FEATURES))   # a film-shape check, one regression
    shape = FilmCheck.load(tmp_path / "shape.npz")
    assert shape.inputs == "shape" and shape.embedding is None and shape.shape.at == 0.6
    np.savez(tmp_path / "bad.npz", mean=mean, scale=np.ones(8), coef=coef, intercept=np.array(0.2),
             thresholds=np.array([0.6, 0.04]), inputs=np.array("pixels"))
    with pytest.raises(PneumoError, match="unknown inputs"):
        FilmCheck.load(tmp_path / "bad.npz")
    with pytest.raises(PneumoError):
        FilmCheck(None, None, 0.0)


def test_one_threshold_is_youden_on_the_views_pooled():
    y = np.array([0, 0, 1, 1])
    p = {"fusion": np.array([0.1, 0.4, 0.6, 0.9]), "image_only": np.array([0.2, 0.45, 0.55, 0.8])}
    t = single_threshold(y, p)
    assert 0.45 < t <= 0.55
    assert label_of(t, t) == "PNEUMONIA" and label_of(t - 1e-9, t) == "NORMAL"


# --- through the Predictor (tiny bundle, the population stated) --------------------------

@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    from pneumo.inference.predictor import Predictor

    pred = Predictor.load(tiny_bundle)
    pred.population = KERMANY_CHILDREN
    return pred


def _dicom(age: str | None = None, view: str | None = None) -> bytes:
    """A chest-like DICOM with made-up identifiers, born 1980, studied 2025."""
    from pneumo.qa.hostile_bytes import dicom_bytes

    attrs = {"PatientName": "Doe^Jane", "PatientID": "MRN-778899", "PatientBirthDate": "19800102",
             "StudyDate": "20250301", **({"PatientAge": age} if age else {})}
    return dicom_bytes(128, 160, ViewPosition=view or "", **attrs)


def test_a_dicom_whose_header_says_45_is_outside_and_unlabelled_unless_allowed(predictor):
    case = Case.from_sources(_dicom("045Y"), None, panel=predictor.panel)
    assert case.image.meta.age_years == 45.0
    result = predictor.predict(case, allow_outside=False)
    assert result.intended_use == OUTSIDE and result.label == ""
    assert result.band == "caution" and result.warnings[0].startswith("outside the intended use")
    assert result.suggested_label in ("PNEUMONIA", "NORMAL")
    assert predictor.predict(case).label == ""                              # not asked is the default
    asked = predictor.predict(case, allow_outside=True)                      # asked for this case: labelled
    assert asked.label == result.suggested_label and asked.outside_allowed and not result.outside_allowed
    text = json.dumps(result.to_dict())
    assert "045" not in text and "Doe" not in text and "MRN" not in text and "1980" not in text


def test_birth_date_against_study_date_and_a_lateral_header(predictor):
    older = Case.from_sources(_dicom(), None, panel=predictor.panel)      # born 1980, study 2025
    assert predictor.predict(older).intended_use == OUTSIDE
    lateral = Case.from_sources(_dicom("003Y", "LL"), None, panel=predictor.panel)
    assert "LL view" in predictor.predict(lateral).intended_use_reason
    child = Case.from_sources(_dicom("003Y", "AP"), None, panel=predictor.panel)
    assert predictor.predict(child).intended_use == WITHIN


def test_a_given_age_and_a_case_with_labs_only(predictor):
    labs = {"wbc": 15.0, "sodium": 131}
    assert predictor.predict(Case.from_sources(None, labs, panel=predictor.panel)).intended_use == UNKNOWN
    adult = predictor.predict(Case.from_sources(None, labs, panel=predictor.panel, age=40), allow_outside=False)
    assert adult.intended_use == OUTSIDE and adult.label == ""
    assert predictor.predict(Case.from_sources(None, labs, panel=predictor.panel, age="3")).intended_use == WITHIN


def test_never_clear_when_a_warning_fires_or_members_disagree():
    assert band_of(0.98, 0.5, has_warning=True, members_agree=True) == "caution"
    assert band_of(0.98, 0.5, has_warning=False, members_agree=False) == "members disagree"
    assert band_of(0.55, 0.5, has_warning=False, members_agree=True) == "near threshold"
    assert band_of(0.98, 0.5, has_warning=False, members_agree=True) == "clear"


def test_an_unusual_film_is_not_clear(predictor, tmp_path):
    path = tmp_path / "wide.png"
    yy, xx = np.mgrid[0:100, 0:400] / 400.0                      # aspect 4: warned
    Image.fromarray(((0.4 + 0.3 * np.sin(5 * xx) * np.cos(9 * yy)) * 255).astype(np.uint8)).save(path)
    r = predictor.predict(Case.from_sources(path, None, panel=predictor.panel, age=3))
    assert any("aspect" in w for w in r.warnings) and r.band == "caution"


def test_the_cli_refuses_a_case_with_nothing_to_read(tmp_path):
    junk = tmp_path / "labs.csv"
    junk.write_text("foo,bar\n1,2\n")
    proc = subprocess.run([sys.executable, "-m", "pneumo", "predict", "--labs", str(junk), "--no-log",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "nothing to read" in proc.stderr and "Traceback" not in proc.stderr


def test_a_refused_cli_case_is_logged_as_refused(tmp_path):
    import os

    from pneumo.service.case_log import CaseLog

    junk = tmp_path / "labs.csv"
    junk.write_text("foo,bar\n1,2\n")
    env = dict(os.environ, PNEUMO_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "pneumo", "predict", "--labs", str(junk)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    log = CaseLog(tmp_path / "home" / "cases.sqlite").recent(5)
    assert list(log["outcome"]) == ["refused"] and "nothing to read" in log["warnings"].iloc[0][0]


# --- the age from every source the header has ------------------------------------------------

def _header(**attrs):
    from pydicom.dataset import Dataset

    ds = Dataset()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def test_the_header_age_from_each_source():
    import datetime as dt

    from pneumo.data.dicom_io import header_age

    assert header_age(_header(PatientAge="045Y", PatientBirthDate="20200101")).years == 45.0
    for film_date in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        age = header_age(_header(PatientBirthDate="20200301", **{film_date: "20230315"}))
        assert 3.0 <= age.years < 3.1 and age.source == "its birth date and film date", film_date
    assert header_age(_header(PatientBirthDate="20200301", StudyDate="20230315", ContentDate="20250101")).years < 3.1
    alone = header_age(_header(PatientBirthDate="19500607"), today=dt.date(2025, 6, 1))
    assert alone.years is None and 42.5 < alone.at_least < 42.6 and 74 < alone.at_most < 75
    assert alone.source == "its birth date alone"
    assert header_age(_header(PatientBirthDate="20300101"), today=dt.date(2025, 6, 1)) is None   # not born yet
    assert header_age(_header(PatientBirthDate="20200101", StudyDate="20190101")) is None        # film before birth
    assert header_age(_header(PatientBirthDate="garbage")) is None and header_age(_header()) is None


def test_a_birth_date_alone_bounds_the_age():
    older = assess(KERMANY_CHILDREN, has_image=True, header_age_bounds=(42.6, 75.0), film=CHILD)
    assert older.status == OUTSIDE and older.evidence == "dicom header"
    assert "birth date" in older.reason and "1950" not in older.reason and "42" not in older.reason
    baby = assess(KERMANY_CHILDREN, has_image=True, header_age_bounds=(0.0, 0.5), film=CHILD)
    assert baby.status == OUTSIDE
    # an interval that overlaps 1-5 decides nothing: the given age, then the film check, decide
    assert assess(KERMANY_CHILDREN, has_image=True, header_age_bounds=(0.0, 30.0), film=CHILD).status == WITHIN
    assert assess(KERMANY_CHILDREN, has_image=True, header_age_bounds=(0.0, 30.0), given_age=40,
                  film=CHILD).status == OUTSIDE


def _dicom_born(birth: str, **dates) -> bytes:
    from pneumo.qa.hostile_bytes import dicom_bytes

    return dicom_bytes(128, 160, PatientName="Doe^Jane", PatientID="MRN-778899", PatientBirthDate=birth, **dates)


def test_a_dicom_born_1950_with_no_film_date_is_outside(predictor):
    case = Case.from_sources(_dicom_born("19500607"), None, panel=predictor.panel)
    assert case.image.meta.age_years is None and case.image.meta.age_bounds[0] > 40
    r = predictor.predict(case)
    assert r.intended_use == OUTSIDE and r.label == ""
    assert "birth date" in r.intended_use_reason
    text = json.dumps(r.to_dict())
    assert "1950" not in text and "0607" not in text and "Doe" not in text


def test_birth_and_study_date_three_years_apart_is_within(predictor):
    case = Case.from_sources(_dicom_born("20200301", StudyDate="20230315"), None, panel=predictor.panel)
    assert 3.0 <= case.image.meta.age_years < 3.1
    r = predictor.predict(case)
    assert r.intended_use == WITHIN and "birth date and film date" in r.intended_use_reason
    assert "2020" not in r.intended_use_reason and "2023" not in r.intended_use_reason


@pytest.mark.data
def test_the_cli_reads_a_1950_birth_date_as_outside(tmp_path):
    """A real film (a made-up one is refused by the gate before the age is read) with a 1950 birth date."""
    from PIL import Image

    from pneumo import config
    first = sorted((config.kermany_dir() / "test" / "PNEUMONIA").glob("*.jpeg"))[0]
    pixels = np.asarray(Image.open(first).convert("L").resize((160, 128)), np.uint16) * 16
    film = tmp_path / "born1950.dcm"
    film.write_bytes(_dicom_born("19500607", pixels=pixels))
    proc = subprocess.run([sys.executable, "-m", "pneumo", "predict", "--image", str(film), "--no-log", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["intended_use"] == OUTSIDE and "birth date" in got["intended_use_reason"]
    assert got["label"] == "" and "1950" not in proc.stdout
