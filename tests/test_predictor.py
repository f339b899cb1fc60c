"""The Predictor's contracts on an untrained tiny bundle: shapes, identities, refusals."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pneumo.errors import BundleError, NothingToReadError, UnsupportedImageError
from pneumo.inference.predictor import Case, Predictor


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return Predictor.load(tiny_bundle)


def film(tmp_path, w=320, h=256, name="film.png"):
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = 0.45 + 0.25 * np.sin(4 * xx) * np.cos(3 * yy) + 0.1 * np.exp(-((xx - .5) ** 2) * 20)
    path = tmp_path / name
    Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(path)
    return path


LABS = {"wbc": 16.0, "sodium": 131, "glucose": 140, "hemoglobin": 12.1, "creatinine": 1.1}


def test_predict_result_fields(predictor, tmp_path):
    case = Case.from_sources(film(tmp_path), LABS, panel=predictor.panel)
    result = predictor.predict(case)
    assert 0 <= result.probability <= 1
    assert result.label == ("PNEUMONIA" if result.probability >= result.threshold else "NORMAL")
    assert result.modalities == {"image": True, "labs": True}
    assert "wbc" not in result.imputed and "rdw" in result.imputed
    assert len(result.image_digest) == 64
    d = result.to_dict()
    assert {"probability", "label", "threshold", "modality_contribution", "warnings", "model"} <= set(d)
    assert all(isinstance(w, str) for w in d["warnings"])


def test_contributions_are_the_steps_from_the_baseline(predictor, tmp_path):
    """Baseline (neither input) -> film alone -> film and labs: the steps add up to P, and the
    labs' step is what the labs moved the film-alone answer."""
    case = Case.from_sources(film(tmp_path), LABS, panel=predictor.panel)
    result = predictor.predict(case)
    empty = predictor.what_if(Case(labs=None), {})["probability"]
    film_alone = predictor.predict(Case.from_sources(film(tmp_path), None, panel=predictor.panel)).probability
    c = result.modality_contribution
    assert result.baseline == pytest.approx(empty, abs=1e-5)
    assert result.baseline + c["image"] + c["labs"] == pytest.approx(result.probability, abs=1e-5)
    assert c["labs"] == pytest.approx(result.probability - film_alone, abs=1e-5)


def test_single_modality_cases(predictor, tmp_path):
    image_only = predictor.predict(Case.from_sources(film(tmp_path), None, panel=predictor.panel))
    assert image_only.modalities == {"image": True, "labs": False}
    assert image_only.modality_contribution["labs"] == pytest.approx(0, abs=1e-6)
    labs_only = predictor.predict(Case.from_sources(None, LABS, panel=predictor.panel))
    assert labs_only.modalities == {"image": False, "labs": True}
    assert any("no film" in n for n in labs_only.notes) and not any("no film" in w for w in labs_only.warnings)
    with pytest.raises(NothingToReadError):
        predictor.predict(Case())
    unrecognised = Case.from_sources(None, {"foo": 1, "bar": 2}, panel=predictor.panel)
    with pytest.raises(NothingToReadError, match="nothing to read"):
        predictor.predict(unrecognised)


def test_explain_shap_adds_up_and_gradcam_at_original_resolution(predictor, tmp_path):
    """The lab bars start from the same tests at healthy values (the film as read), add up to the
    answer, and a test not given has no bar at all; 'back to normal' is the what-if's change."""
    from pneumo.data.labs.healthy import healthy_value

    case = Case.from_sources(film(tmp_path, 300, 200), LABS, panel=predictor.panel)
    exp = predictor.explain(case)
    total = exp.shap_base + sum(exp.shap_values.values())
    assert total == pytest.approx(exp.result.probability, abs=1e-5)
    healthy = {k: healthy_value(predictor.panel[k]) for k in LABS}
    assert exp.lab_reference == healthy
    assert exp.shap_base == pytest.approx(predictor.what_if(case, healthy)["probability"], abs=1e-5)
    for k in LABS:
        back = exp.result.probability - predictor.what_if(case, {k: healthy[k]})["probability"]
        assert exp.back_to_normal[k] == pytest.approx(back, abs=1e-5)
    assert set(exp.shap_values) == set(LABS)
    assert exp.gradcam.shape == (200, 300) and exp.overlay.shape == (200, 300, 3)
    assert 0 <= exp.gradcam.min() and exp.gradcam.max() <= 1
    assert len(exp.lab_display) == len(predictor.panel)
    assert exp.to_dict()["result"]["probability"] == exp.result.probability


def test_what_if_moves_with_labs_and_reuses_the_embedding(predictor, tmp_path):
    case = Case.from_sources(film(tmp_path), LABS, panel=predictor.panel)
    base = predictor.predict(case).probability
    calls = predictor.runner._embed.calls
    assert predictor.what_if(case, {})["probability"] == pytest.approx(base, abs=1e-6)
    moved = predictor.what_if(case, {"wbc": 35.0, "sodium": 120.0, "glucose": 400.0})
    assert moved["probability"] != pytest.approx(base, abs=1e-6)          # the labs reach the answer
    assert moved["label"] == ("PNEUMONIA" if moved["probability"] >= moved["threshold"] else "NORMAL")
    assert moved["threshold"] == predictor.threshold
    assert predictor.runner._embed.calls == calls                        # the film was not embedded again


def test_predict_many_matches_predict(predictor, tmp_path):
    cases = [Case.from_sources(film(tmp_path, 300 + 20 * i, 256, f"f{i}.png"), LABS,
                               panel=predictor.panel) for i in range(3)]
    many = predictor.predict_many(cases)
    for case, result in zip(cases, many):
        assert result.probability == pytest.approx(predictor.predict(case).probability, abs=1e-5)


def test_colour_photo_refused(predictor, tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "photo.png"
    Image.fromarray((rng.random((200, 200, 3)) * 255).astype(np.uint8)).save(path)
    with pytest.raises(UnsupportedImageError, match="refused"):
        predictor.predict(Case.from_sources(path, None, panel=predictor.panel))


def test_strict_labs_raise(predictor):
    from pneumo.errors import LabError

    with pytest.raises(LabError, match="glucose"):
        Case.from_sources(None, {"glucose": "abc"}, panel=predictor.panel, strict=True)
    lenient = Case.from_sources(None, {"glucose": "abc", "wbc": 9}, panel=predictor.panel)
    assert any("glucose" in w for w in predictor.predict(lenient).warnings)


def test_tampered_bundle_refused(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    weights = copy / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(BundleError, match="sha256"):
        Predictor.load(copy)


def test_head_for_one_image_matches_head_across_chunk_edges(predictor):
    """SHAP's many lab rows beside one image go through the head in chunks; the answers are the
    head's own, row for row, whatever the chunk size (1, 7, one chunk) and with no rows."""
    runner = predictor.runner
    rng = np.random.default_rng(0)
    early = rng.normal(size=(1, runner.early_dim)).astype("float32")
    late = rng.normal(size=(1, runner.late_dim)).astype("float32")
    rows = runner.background[:20].astype("float32").copy()
    rows[::3, 1] = np.nan                                         # some tests not measured
    whole = runner.head(np.repeat(early, 20, 0), np.repeat(late, 20, 0), np.ones(20, np.float32), rows)
    for chunk in (1, 7, 1024):
        np.testing.assert_allclose(runner.head_for_one_image(early, late, 1.0, rows, chunk=chunk), whole,
                                   rtol=1e-5, atol=1e-6)
    no_image = runner.head(np.zeros((20, runner.early_dim), np.float32), np.zeros((20, runner.late_dim), np.float32),
                           np.zeros(20, np.float32), rows)
    np.testing.assert_allclose(runner.head_for_one_image(early, late, 0.0, rows, chunk=7), no_image, rtol=1e-5, atol=1e-6)
    assert runner.head_for_one_image(early, late, 1.0, rows[:0]).shape == (0,)


def test_each_case_is_read_at_its_own_views_temperature_and_one_threshold(tiny_bundle, tmp_path):
    """A film-only case is calibrated as the image-only view was on validation, a labs-only case
    as the labs-only view, a case with both as fusion; all three are labelled by ONE threshold,
    even in a bundle whose views carry thresholds of their own."""
    pred = Predictor.load(tiny_bundle)
    views = {"fusion": {"temperature": 1.0, "threshold": 0.5},
             "image_only": {"temperature": 1.0, "threshold": 0.3},
             "labs_only": {"temperature": 1.0, "threshold": 0.7}}
    pred.bundle.meta["views"] = views
    both = Case.from_sources(film(tmp_path), LABS, panel=pred.panel)
    image_only = Case.from_sources(film(tmp_path), None, panel=pred.panel)
    labs_only = Case.from_sources(None, LABS, panel=pred.panel)
    assert {pred.predict(c).threshold for c in (both, image_only, labs_only)} == {pred.threshold}
    before = [pred.predict(c).probability for c in (both, image_only, labs_only)]
    views["image_only"]["temperature"] = 4.0                     # only film-only answers soften
    after = [pred.predict(c).probability for c in (both, image_only, labs_only)]
    assert after[0] == before[0] and after[2] == before[2]
    assert abs(after[1] - 0.5) < abs(before[1] - 0.5) or before[1] == pytest.approx(0.5, abs=1e-3)
    r = pred.predict(image_only)
    c = r.modality_contribution
    assert r.baseline + c["image"] + c["labs"] == pytest.approx(r.probability, abs=1e-5)   # still adds up


def test_explain_of_a_very_large_film_keeps_its_maps_small(predictor, tmp_path):
    """A film near the pixel budget gets Grad-CAM at a long side of EXPLAIN_MAX_SIDE, not at full
    size (a 49 MP film once took 2.3 GB in explain); the film's aspect is kept."""
    from pneumo.inference.predictor import EXPLAIN_MAX_SIDE

    exp = predictor.explain(Case.from_sources(film(tmp_path, 4000, 3000, "big.png"), LABS, panel=predictor.panel),
                            shap=False)
    assert max(exp.gradcam.shape) == EXPLAIN_MAX_SIDE and exp.gradcam.shape == (1536, 2048)
    assert exp.overlay.shape == (1536, 2048, 3)
