"""The Streamlit app, page by page, with streamlit.testing's AppTest (no browser).

Two kinds of test: fast ones with a stand-in predictor (no TensorFlow; they check the pages'
wiring: refusal text, warnings, SHAP, what-if, downloads, the case log, a case outside the
intended use), and ones with the shipped model (committed: they fail without it)."""
from __future__ import annotations

import io
import types

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from pneumo import config

PAGES = ["pages/second_opinion.py", "pages/batch.py", "pages/metrics.py", "pages/model_card.py",
         "pages/history.py"]
needs_model = pytest.mark.usefixtures("shipped_bundle")   # committed: missing or broken fails, never skips


# --- images the tests make ---------------------------------------------------------------

def chest_like_png(size=(320, 256), seed=0) -> bytes:
    """A grayscale film-like picture: bright mediastinum and ribs-ish bands, dark lung fields."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    lungs = np.exp(-(((xx - 0.3) / 0.13) ** 2 + ((yy - 0.5) / 0.3) ** 2)) + \
        np.exp(-(((xx - 0.7) / 0.13) ** 2 + ((yy - 0.5) / 0.3) ** 2))
    img = 0.75 - 0.45 * lungs + 0.05 * np.sin(yy * 40) * lungs
    img += np.random.default_rng(seed).normal(0, 0.01, img.shape)
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


def colourful_png(size=(256, 256)) -> bytes:
    """A saturated RGB picture: no radiograph looks like this."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 255 // w), (yy * 255 // h), 255 - (xx * 255 // w)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "PNG")
    return buf.getvalue()


# --- a stand-in predictor (the page's contract, no TensorFlow) --------------------------

def _fake_module():
    """The page's contract with a stand-in model: the real Case, Result and Explanation."""
    from pneumo.data.imaging import pixel_digest
    from pneumo.data.labs import default_panel
    from pneumo.errors import NothingToReadError, UnsupportedImageError
    from pneumo.inference.case import Case, Explanation, Result
    from pneumo.inference.decision_rule import label_of
    from pneumo.inference.intended_use import KERMANY_CHILDREN, OUTSIDE, FilmReading, assess

    class Predictor:
        name, version, threshold = "fake", "0", 0.5
        population = KERMANY_CHILDREN

        def __init__(self):
            self.panel = default_panel()

        @classmethod
        def load(cls, bundle_dir=None):
            return cls()

        def _p(self, case, changes=None):
            wbc = dict(case.labs.values if case.labs else {}, **(changes or {})).get("wbc") or 7.0
            img = float(case.image.pixels.mean()) if case.image is not None else 0.5
            return float(np.clip(0.2 + 0.3 * img + 0.03 * (wbc - 7), 0.01, 0.99))

        def explain(self, case, allow_outside=True, **kw):
            if case.image is None and not case.has_labs:
                raise NothingToReadError("nothing to read: no film and no usable lab value")
            if case.image is not None and case.image.meta.was_color and case.image.meta.color_spread > 0.04:
                raise UnsupportedImageError("a colour image: radiographs are grayscale (a photograph?)")
            p = self._p(case)
            child_frontal = FilmReading(0.1, 0.9, adult=False, lateral=False)   # the learned check's "a child's film"
            meta = case.image.meta if case.image is not None else None
            use = assess(self.population, has_image=case.image is not None, given_age=case.age_years,
                         film=child_frontal if case.image is not None else None,
                         header_age=getattr(meta, "age_years", None), header_age_bounds=getattr(meta, "age_bounds", None),
                         header_age_source=getattr(meta, "age_source", None))
            r = Result(p, label_of(p, 0.5) if allow_outside or use.status != OUTSIDE else "", 0.5, "caution",
                       modalities={"image": case.image is not None, "labs": case.has_labs},
                       modality_contribution={"image": 0.3, "labs": p - 0.3 - (p - 0.35)},
                       warnings=["unusual aspect ratio 1.25 for a chest film"],
                       model={"name": "fake", "version": "0", "weights_sha256": "0" * 64},
                       image_digest=pixel_digest(case.image.pixels) if case.image is not None else None,
                       intended_use=use.status, intended_use_reason=use.reason,
                       baseline=p - 0.35, uncertainty={"members": [p], "agree": True, "spread": 0.0,
                                                       "words": "a single model: no spread to measure"})
            r.modality_contribution = {"image": 0.3, "labs": 0.05}
            heat = None
            if case.image is not None:
                h, w = case.image.pixels.shape
                heat = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
            shap, display = {}, []
            if case.labs is not None:
                shap = {k: (0.04 if k == "wbc" else 0.01) for k, v in case.labs.values.items() if v is not None}
                display = [{"key": t.key, "name": t.name, "value": case.labs.values.get(t.key),
                            "unit": t.display_unit, "ref_low": t.ref_low, "ref_high": t.ref_high,
                            "imputed": case.labs.values.get(t.key) is None, "out_of_range": False}
                           for t in self.panel]
            return Explanation(r, heat, None, shap, p - sum(shap.values()), display, r.modality_contribution)

        def predict(self, case, allow_outside=True, **kw):
            return self.explain(case, allow_outside=allow_outside).result

        def what_if(self, case, changes):
            p = self._p(case, changes)
            return {"probability": p, "label": label_of(p, 0.5), "threshold": 0.5, "view": "fusion"}

    mod = types.ModuleType("pneumo.inference.predictor")
    mod.Case, mod.Result, mod.Explanation, mod.Predictor = Case, Result, Explanation, Predictor
    return mod


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_predictor(monkeypatch, home):
    from pages.ui import model as common
    monkeypatch.setattr(common, "Predictor", _fake_module().Predictor)   # what the model loader builds
    common._loader.clear()
    yield
    common._loader.clear()


def _app() -> AppTest:
    at = AppTest.from_file(str(config.REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _no_age(at) -> AppTest:
    """Tick "Age not known": a film with no header age is scored only once the age is answered."""
    at.checkbox(key="age_unknown").check()
    return at


def _texts(at, kind) -> str:
    return " | ".join(str(e.value) for e in getattr(at, kind))


# --- every page loads; empty states ------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads(page, home, monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMO_RESULTS_DIR", str(tmp_path / "no-results"))
    at = _app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title, f"{page} has no title"
    # the shared frame ran too (a pages/ folder must not make Streamlit skip app.py)
    assert "not a diagnosis" in _texts(at, "markdown")


def test_empty_states(home, monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMO_RESULTS_DIR", str(tmp_path / "no-results"))
    monkeypatch.setenv("PNEUMO_MODELS_DIR", str(tmp_path / "no-models"))
    at = _app()
    assert "Upload a chest X-ray" in _texts(at, "info")
    at.switch_page("pages/metrics.py").run()
    assert "python -m pneumo experiment configs/paper.toml" in _texts(at, "info")
    at.switch_page("pages/history.py").run()
    assert "No cases scored yet" in _texts(at, "info")


def test_missing_model_is_one_error_line(home, monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMO_MODEL_DIR", str(tmp_path / "no-model"))
    from pages.ui import model as common
    common._loader.clear()
    at = _app()
    at.file_uploader[0].upload("film.png", chest_like_png(), "image/png")
    at.run()
    assert not at.exception
    assert "No model available" in _texts(at, "error")
    common._loader.clear()


# --- the second-opinion page with a stand-in predictor ----------------------------------

def test_second_opinion_scores_a_film_with_labs(fake_predictor, home):
    at = _no_age(_app())
    at.file_uploader[0].upload("film.png", chest_like_png(), "image/png")
    at.radio(key="labs_mode").set_value("File (CSV or FHIR JSON)").run()
    labs = (config.REPO_ROOT / "assets" / "example_labs_pneumonia.csv").read_bytes()
    at.file_uploader(key="labs_file").upload("labs.csv", labs, "text/csv")
    at.run()
    assert not at.exception, at.exception
    assert not at.error, _texts(at, "error")
    md = _texts(at, "markdown")
    assert "P(pneumonia)" in md and "the film takes it to" in md and "(+0.05)" in md
    assert "Within the intended use" in _texts(at, "caption") and "for every case" in _texts(at, "caption")
    assert "unusual aspect ratio" in _texts(at, "warning")
    assert len(at.get("imgs")) >= 1 or len(at.get("image")) >= 1
    assert at.metric and at.metric[0].label.startswith("With this value: ")
    # one film is one case: its row is added once (film alone) and updated when the labs come
    from pneumo.service.case_log import CaseLog
    assert CaseLog().count() == 1
    assert CaseLog().recent()["labs"].iloc[0]["wbc"] is not None   # the row holds the labs of the last answer
    at.select_slider(key="whatif_wbc").set_value(20.0).run()     # the what-if reruns: nothing logged again
    assert CaseLog().count() == 1
    assert CaseLog().recent()["origin"].tolist() == ["app"]
    at.number_input(key="age").set_value(3.0).run()              # an age for the same film: the same row
    assert CaseLog().count() == 1
    at.file_uploader[0].upload("film2.png", chest_like_png(seed=1), "image/png").run()   # another film: a row
    assert CaseLog().count() == 2


def test_a_case_outside_the_intended_use_gives_no_opinion_unless_asked(fake_predictor, home):
    """An adult's age: no verdict and no number, the reason first; the number only behind "show anyway"."""
    at = _app()
    at.file_uploader[0].upload("film.png", chest_like_png(), "image/png")
    at.number_input(key="age").set_value(45.0).run()
    assert not at.exception, at.exception
    assert "No second opinion" in _texts(at, "error") and "an age outside" in _texts(at, "error")
    assert "P(pneumonia)" not in _texts(at, "markdown") and "class='pneumo-result" not in _texts(at, "markdown")
    from pneumo.service.case_log import CaseLog
    assert CaseLog().recent()["intended_use"].tolist() == ["outside"]
    at.toggle(key=next(t.key for t in at.toggle if t.key.startswith("show_outside"))).set_value(True).run()
    assert not at.exception, at.exception
    assert "Not validated" in _texts(at, "warning") and "P(pneumonia)" in _texts(at, "markdown")
    at.number_input(key="age").set_value(3.0).run()       # a child's age: the opinion, no warning of it
    assert "No second opinion" not in _texts(at, "error") and "Not validated" not in _texts(at, "warning")
    assert "Within the intended use" in _texts(at, "caption")


def test_a_film_without_an_age_is_not_scored_until_the_age_or_unknown_is_given(fake_predictor, home):
    from pneumo.service.case_log import CaseLog

    at = _app()
    at.file_uploader[0].upload("film.png", chest_like_png(), "image/png").run()
    assert not at.exception, at.exception
    assert "How old is the patient?" in _texts(at, "info")
    assert "P(pneumonia)" not in _texts(at, "markdown") and CaseLog().count() == 0
    at.number_input(key="age").set_value(3.0).run()             # a given age: scored, within
    assert "P(pneumonia)" in _texts(at, "markdown") and "How old" not in _texts(at, "info")
    assert "the age given is an age within" in _texts(at, "caption")
    at.number_input(key="age").set_value(None).run()            # no age again: the prompt again
    assert "How old is the patient?" in _texts(at, "info")
    at.checkbox(key="age_unknown").check().run()                # "not known": the film check decides
    assert "P(pneumonia)" in _texts(at, "markdown") and "learned check" in _texts(at, "caption")


def test_a_dicom_born_1950_with_no_film_date_is_outside_without_asking(fake_predictor, home):
    from pneumo.qa.hostile_bytes import dicom_bytes

    at = _app()
    film = dicom_bytes(256, 320, PatientName="Doe^Jane", PatientBirthDate="19500607")
    at.file_uploader[0].upload("film.dcm", film, "application/dicom").run()
    assert not at.exception, at.exception
    assert "How old" not in _texts(at, "info")
    err = _texts(at, "error")
    assert "No second opinion" in err and "birth date" in err and "1950" not in err
    assert "P(pneumonia)" not in _texts(at, "markdown")
    assert "1950" not in _texts(at, "markdown") + _texts(at, "caption")


def test_a_labs_only_answer_is_weak_evidence_in_words_not_a_verdict(fake_predictor, home):
    at = _app()
    at.number_input(key="lab_wbc").set_value(19.0).run()
    assert not at.exception, at.exception
    md = _texts(at, "markdown")
    assert "Labs only: weak evidence (P 0." in md and "pneumo-weak" in md
    assert "class='pneumo-result" not in md and ">PNEUMONIA<" not in md and ">NORMAL<" not in md
    assert all("PNEUMONIA" not in m.label and "NORMAL" not in m.label for m in at.metric)


def test_what_if_moves_the_probability(fake_predictor, home):
    at = _no_age(_app())
    at.file_uploader[0].upload("film.png", chest_like_png(), "image/png").run()
    at.number_input(key="lab_wbc").set_value(9.0).run()    # applies at once: no submit step
    assert not at.exception, at.exception
    at.selectbox(key="whatif_lab").set_value("wbc").run()
    base = float(at.metric[0].value.split()[-1])
    assert at.metric[0].delta == "no change"              # the case's own value: no coloured arrow
    slider = at.select_slider(key="whatif_wbc")
    assert slider.value == 9.0 and max(slider.options, key=float) == "500"   # the schema's plausible range
    slider.set_value(17.0).run()
    assert float(at.metric[0].value.split()[-1]) > base and at.metric[0].delta.startswith("+")
    assert at.metric[0].label in ("With this value: PNEUMONIA", "With this value: NORMAL")
    for value in (0.5, 40.0, 500.0):                      # clinical extremes are on the scale
        at.select_slider(key="whatif_wbc").set_value(value).run()
        assert not at.exception, at.exception
    assert "Back to normal (11.5)" in _texts(at, "caption")        # age not known: a child 1-5 (5.5-17.5)
    at.selectbox(key="whatif_lab").set_value("sodium").run()   # a test not given starts at normal
    assert at.select_slider(key="whatif_sodium").value == 140.0
    assert min(float(o) for o in at.select_slider(key="whatif_sodium").options) <= 115


def test_colour_photo_is_refused_without_a_probability(fake_predictor, home):
    at = _app()
    at.file_uploader[0].upload("photo.png", colourful_png(), "image/png").run()
    assert not at.exception, at.exception
    assert "colour image" in _texts(at, "error")
    assert "P(pneumonia)" not in _texts(at, "markdown")


def test_out_of_range_lab_is_flagged(fake_predictor, home):
    at = _app()
    at.number_input(key="lab_wbc").set_value(19.0).run()        # high for a child of 1-5 (5.5-17.5) too
    assert not at.exception, at.exception
    assert "Outside the reference range" in _texts(at, "markdown")
    assert "WBC" in _texts(at, "markdown")
    assert "1 of 20 values entered" in _texts(at, "caption")


@pytest.mark.data
def test_example_case_loads_with_semi_real_label(fake_predictor, home):
    at = _app()
    at.button[0].click().run()  # "Load an example case" (the first button on the page)
    assert not at.exception, at.exception
    md = _texts(at, "markdown")
    assert "Semi-real example" in md and "P(pneumonia)" in md


# --- with the shipped model -----------------------------------------------------------------

@needs_model
@pytest.mark.slow
@pytest.mark.data
def test_real_model_reads_a_kermany_film_as_the_library_does(home):
    """The page's verdict is the library's for the same film: label, probability, intended use."""
    from pages.ui import model as common
    from pneumo.present import app_support as sup
    common._loader.clear()
    film = sup.example_images()["pneumonia"]
    at = _no_age(_app())
    at.file_uploader[0].upload("film.jpeg", film.read_bytes(), "image/jpeg").run()
    assert not at.exception, at.exception
    assert not at.error, _texts(at, "error")
    expected = common.loader().wait().predict(
        __import__("pneumo.inference.case", fromlist=["Case"]).Case.from_sources(film, None, panel=common.panel()))
    md = _texts(at, "markdown")
    assert f"pneumo-result {expected.label}'>{expected.label}<" in md
    assert f"<b>{expected.probability:.2f}</b>" in md
    assert "Within the intended use" in _texts(at, "caption") and expected.intended_use == "within"


@needs_model
@pytest.mark.slow
def test_real_model_refuses_a_colour_photo(home):
    at = _app()
    at.file_uploader[0].upload("photo.png", colourful_png(), "image/png").run()
    assert not at.exception, at.exception
    assert at.error, "a colour photo must be refused"
    assert "P(pneumonia)" not in _texts(at, "markdown")


@needs_model
def test_model_card_with_the_shipped_bundle(home):
    at = _app()
    at.switch_page("pages/model_card.py").run()
    assert not at.exception, at.exception
    assert "semi-real" in _texts(at, "markdown")
    assert len(at.dataframe) >= 3
    assert "Robustness to framing" in [h.value for h in at.subheader]
    framing = next(d.value for d in at.dataframe if "film shown" in d.value.columns)
    assert len(framing) == 3 and framing["specificity"].between(0, 1).all()
    views = next(d.value for d in at.dataframe if "case holds" in d.value.columns)
    assert list(views["case holds"]) == ["film + labs", "film only", "labs only"]
    assert views["ROC AUC [95% CI]"].str.match(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]").all()
    assert "When it will not read a film" in [h.value for h in at.subheader]
    assert "Robustness to acquisition changes" in [h.value for h in at.subheader]
    changes = next(d.value for d in at.dataframe if "film" in d.value.columns)
    assert changes["film"].iloc[0] == "as given" and changes["AUC change"].iloc[0] == 0
    assert len(changes) >= 8 and changes["ROC AUC"].between(0, 1).all()


def test_batch_page_scores_an_uploaded_zip(fake_predictor, home):
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("imgs/a.png", chest_like_png())
        zf.writestr("../evil.png", b"x")
    manifest = b"image_path,wbc,note\nimgs/a.png,16.2,=cmd\nimgs/missing.png,,b\n"
    # the page on its own: AppTest drops a button click on a page reached by switch_page
    at = AppTest.from_file(str(config.REPO_ROOT / "pages" / "batch.py"), default_timeout=180)
    at.run()
    at.file_uploader(key="batch_manifest").upload("manifest.csv", manifest, "text/csv")
    at.file_uploader(key="batch_images").upload("images.zip", buf.getvalue(), "application/zip")
    at.run()
    at.button(key="batch_go").click().run()
    assert not at.exception, at.exception
    assert "unsafe paths" in _texts(at, "warning")
    frame = at.dataframe[0].value
    assert len(frame) == 2 and frame["error"].iloc[0] == "" and frame["error"].iloc[1] != ""
    assert "1 scored, 1 with errors" in _texts(at, "success")
