"""The shipped model on real films: intended use on children, adults and laterals, and each view's
calibration on the whole path through the CLI (a partial lab panel; film + labs, film only, labs
only). These are checks on films the choices never saw (the Kermany official test split, the
adults' held-out patients), not regression bounds tuned to them: the targets are the issue's
(<= 2% of children flagged, >= 95% of adult frontal films)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pneumo import config

pytestmark = [pytest.mark.data, pytest.mark.slow]


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
    """Every Kermany test film alone, in one predict_many call."""
    from pneumo.inference.case import Case

    results = shipped.predict_many([Case.from_sources(f, None, panel=shipped.panel) for f in kermany_test_films])
    assert not any(isinstance(r, Exception) for r in results)
    return results


def test_the_bundle_states_its_population_and_one_threshold(shipped):
    assert shipped.population is not None and shipped.population.age_min == 1 and shipped.population.age_max == 5
    assert shipped.film_check is not None
    assert {v["threshold"] for v in shipped.meta["views"].values()} == {shipped.threshold}


def test_kermany_test_films_are_within_the_intended_use(test_results):
    alone = test_results
    flagged = np.mean([r.intended_use != "within" for r in alone])
    assert flagged <= 0.02, f"{flagged:.3f} of the 624 Kermany test films flagged"
    assert alone[0].intended_use == "within" and alone[0].label in ("PNEUMONIA", "NORMAL")


PARTIAL_PANEL = {"wbc": 16.2, "sodium": 131.0, "glucose": 148.0}   # 3 of the 20 tests: the rest not measured


@pytest.fixture(scope="module")
def cli_views(kermany_test_films, tmp_path_factory):
    """`python -m pneumo predict --json` on one Kermany test film and a partial lab panel, read
    three ways (film + labs, film only, labs only): {view: (JSON output, film or None, labs or None)}."""
    from test_cli import run_cli

    home = tmp_path_factory.mktemp("cli-home")
    labs = home / "partial.csv"
    labs.write_text(",".join(PARTIAL_PANEL) + "\n" + ",".join(map(str, PARTIAL_PANEL.values())) + "\n")
    film = kermany_test_films[-1]          # a pneumonia film (sorted: NORMAL/ then PNEUMONIA/)
    out = {}
    for view, args in (("fusion", ("--image", film, "--labs", labs)), ("image_only", ("--image", film)),
                       ("labs_only", ("--labs", labs))):
        proc = run_cli("predict", *args, "--json", "--no-log", home=home)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[view] = (json.loads(proc.stdout), film if "--image" in args else None,
                     PARTIAL_PANEL if "--labs" in args else None)
    return out


@pytest.mark.parametrize("view", ["fusion", "image_only", "labs_only"])
def test_the_cli_calibrates_each_view_by_the_bundles_own_temperature(cli_views, view):
    """The CLI's probability is the head's raw answer for this view scaled by the temperature that
    bundle.json records for it (read here from the file, not through the Predictor); no other
    view's temperature would give it."""
    from pneumo.data.imaging import preprocess, read_image
    from pneumo.inference.lite_runner import load_runner
    from pneumo.models.calibration import apply_temperature

    out, film, labs = cli_views[view]
    views = json.loads((config.default_model_dir() / "bundle.json").read_text())["views"]
    runner = load_runner(config.default_model_dir())
    x = preprocess(read_image(film).pixels, runner.image_size)[None] if film is not None else None
    row = np.array([[labs.get(k, np.nan) if labs else np.nan for k in runner.panel.keys]], np.float32)
    raw = float(runner.predict_proba(x, row if labs else None, n=1, calibrated=False)[0])
    assert out["view"] == view and out["modalities"] == {"image": film is not None, "labs": labs is not None}
    assert out["probability"] == pytest.approx(float(apply_temperature(raw, views[view]["temperature"])), abs=2e-6)
    for other, setting in views.items():
        if setting["temperature"] != views[view]["temperature"]:
            assert abs(float(apply_temperature(raw, setting["temperature"])) - out["probability"]) > 1e-4, other
    assert out["threshold"] == pytest.approx(views[view]["threshold"])
    assert out["label"] == ("PNEUMONIA" if out["probability"] >= out["threshold"] else "NORMAL")
    if labs:   # the partial panel: the tests not given are listed as not measured, none invented
        assert sorted(out["imputed"]) == sorted(set(runner.panel.keys) - set(PARTIAL_PANEL))


def test_the_cli_gives_what_the_predictor_gives_for_each_view(cli_views, shipped):
    """The CLI and the library read the same case the same way, view by view."""
    from pneumo.inference.case import Case

    for view, (out, film, labs) in cli_views.items():
        expected = shipped.predict(Case.from_sources(film, labs, panel=shipped.panel))
        assert expected.view == view
        assert out["probability"] == pytest.approx(expected.probability, abs=1e-6), view
        assert (out["label"], out["intended_use"]) == (expected.label, expected.intended_use), view
        assert out["modality_contribution"] == pytest.approx(expected.modality_contribution, abs=1e-6), view


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
