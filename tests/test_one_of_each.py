"""One of each: the view and modality vocabularies, the manifest reader, the display names, the
one-line error text, the cache folders and the words about a missing lab each have one definition
that every user takes."""
from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pneumo import config
from pneumo.data import dicom_io, dicom_terms, image_cache
from pneumo.data.cohorts import manifest
from pneumo.data.cohorts.manifest_csv import check_manifest
from pneumo.data.labs import default_panel, parse_labs
from pneumo.data.labs.parse import display_rows
from pneumo.errors import one_line
from pneumo.inference import intended_use, validity
from pneumo.inference.intended_use import KERMANY_CHILDREN, OUTSIDE, WITHIN, FilmReading, assess
from pneumo.models.names import MODEL_NAMES, inputs_words, model_name, regime_name
from pneumo.service import dicom_node
from pneumo.service.batch import run_batch

CHILD = FilmReading(0.1, 0.2, adult=False, lateral=False)


# ---- views --------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["LAO", "RAO", "LPO", "RPO"])
def test_oblique_views_are_neither_lateral_nor_frontal_and_outside(view):
    assert dicom_terms.view_kind(view) == "oblique"
    assert view not in dicom_terms.LATERAL_VIEWS and view not in dicom_terms.FRONTAL_VIEWS
    use = assess(KERMANY_CHILDREN, has_image=True, view_position=view, header_age=3, film=CHILD)
    assert use.status == OUTSIDE and view in use.reason


def test_the_gate_and_the_intended_use_read_one_view_vocabulary():
    assert not hasattr(validity, "LATERAL_VIEWS") and intended_use.FRONTAL_VIEWS is dicom_terms.FRONTAL_VIEWS
    model_input = np.random.default_rng(0).uniform(0.2, 0.8, (64, 64, 1)).astype(np.float32)
    for view, warned in (("LL", True), ("LAO", True), ("PA", False), (None, False)):
        meta = SimpleNamespace(view_position=view, width=100, height=100)
        reasons = validity.cheap_checks(model_input[..., 0], meta, model_input).reasons
        assert any("trained on frontal films" in r for r in reasons) == warned, view


# ---- modalities ---------------------------------------------------------------------------

def test_the_decoder_names_every_accepted_modality_and_the_node_takes_a_named_subset():
    text = dicom_terms.accepted_text()
    assert all(code in text for code in dicom_terms.RADIOGRAPH_MODALITIES) and "DR" in text
    assert dicom_io.RADIOGRAPH_MODALITIES is dicom_terms.RADIOGRAPH_MODALITIES
    assert dicom_node.ACCEPTED_MODALITIES == dicom_terms.DIGITAL_MODALITIES <= dicom_terms.RADIOGRAPH_MODALITIES
    assert set(dicom_node.ACCEPTED_SOP_CLASSES.values()) == set(dicom_node.ACCEPTED_MODALITIES)


def test_film_kinds_are_checked_against_the_header_modality():
    # DR is vendors' DX; OT ("other", digitised films) and free text say nothing, so the film decides
    for modality, status in (("CR", WITHIN), ("dx", WITHIN), ("DR", WITHIN), (None, WITHIN), ("OT", WITHIN),
                             ("Doe^Jane", WITHIN), ("RG", OUTSIDE), ("CT", OUTSIDE)):
        use = assess(KERMANY_CHILDREN, has_image=True, header_age=3, film=CHILD, modality=modality)
        assert use.status == status, modality
    use = assess(KERMANY_CHILDREN, has_image=True, header_age=3, film=CHILD, modality="RG")
    assert "RG" in use.reason and "CR/DX" in use.reason and use.evidence == "dicom header"
    assert assess(KERMANY_CHILDREN, has_image=False, given_age=3, modality="RG").status == WITHIN


# ---- the manifest: one reader for training and for the batch --------------------------------

class _Predictor:
    panel = default_panel()

    def predict(self, case):
        p = float(case.image.pixels.mean())
        return SimpleNamespace(probability=p, label="NORMAL", threshold=0.5, band="clear", validity="accept",
                               warnings=[], intended_use=WITHIN, model={"version": "0"})


def _film(path: Path, level: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:96, 0:96]
    Image.fromarray(((xx * 2 + yy + level) % 256).astype(np.uint8), mode="L").save(path)


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_a_semicolon_or_tab_manifest_loads_for_training_and_scores(tmp_path, delimiter):
    _film(tmp_path / "imgs" / "a.png", 10)
    _film(tmp_path / "imgs" / "b.png", 90)
    rows = [["image_path", "label", "wbc", "ward"], ["imgs/a.png", "PNEUMONIA", "15.5", "A"],
            ["imgs/b.png", "0", "", "B"], ["imgs/missing.png", "1", "7", "C"]]
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)

    cohort = manifest.load(path)
    f = cohort.frame
    assert list(f["ward"]) == ["A", "B", "C"] and f["label"].tolist()[:2] == [1, 0]
    assert f.loc[0, "error"] is None and f.loc[1, "error"] is None and "not found" in f.loc[2, "error"]
    assert "wbc" in cohort.panel.keys and f.loc[1, "wbc"] != f.loc[1, "wbc"]      # blank: NaN

    out = tmp_path / "out.csv"
    summary = run_batch(path, out, predictor=_Predictor(), progress=False)
    assert (summary.scored, summary.errors) == (2, 1)
    got = list(csv.DictReader(open(out, newline="")))
    assert [r["manifest_label"] for r in got] == ["PNEUMONIA", "0", "1"] and got[0]["probability"]
    assert check_manifest(path) == (rows[0], 3)


def test_a_row_with_more_cells_than_the_header_is_that_rows_error_in_training_too(tmp_path):
    _film(tmp_path / "a.png", 10)
    (tmp_path / "m.csv").write_text("image_path,label\na.png,1\na.png,0,extra\n")
    f = manifest.load(tmp_path / "m.csv").frame
    assert f.loc[0, "error"] is None and "more cells than the header" in f.loc[1, "error"]


# ---- names, one-line text, cache folders, missing labs ----------------------------------------

def test_display_names_come_from_one_table():
    from pneumo.experiments import paper_tables, results
    from pneumo.present import case_words, model_card

    assert model_card.VIEW_NAMES == {v: MODEL_NAMES[v].holds for v in ("fusion", "image_only", "labs_only")}
    assert results.curve_label({"model": "image_only", "regime": "adasyn"}) == \
        f"{model_name('image_only')} · {regime_name('adasyn')}"
    table = paper_tables.table1({"entries": [{"model": "fusion", "regime": "adasyn", "summary": {"test": {}}}]})
    assert f"{model_name('fusion', paper=True)}, {regime_name('adasyn', paper=True)}" in table
    result = SimpleNamespace(modalities={"image": True, "labs": False})
    assert case_words.inputs_given(result) == inputs_words(True, False) == "film only"
    assert inputs_words(False, False) == "none" and model_name("new_kind") == "new kind"


def test_one_line():
    assert one_line("a\n b\t\tc") == "a b c"
    assert one_line("x" * 400) == "x" * 297 + "..." and len(one_line("y" * 50, 20)) == 20
    assert one_line("z" * 400, None) == "z" * 400


def test_cache_folders_are_configs(monkeypatch, tmp_path):
    assert image_cache.CACHE_DIR == config.cache_dir() == config.REPO_ROOT / "cache"
    monkeypatch.delenv("PNEUMO_CACHE_DIR", raising=False)
    assert config.embedding_cache_dir() == config.cache_dir() / "embeddings"
    monkeypatch.setenv("PNEUMO_CACHE_DIR", str(tmp_path))
    assert config.embedding_cache_dir() == tmp_path


def test_a_missing_lab_is_described_as_the_model_reads_it():
    from pneumo.present import app_support, model_card

    panel = default_panel()
    columns = list(app_support.panel_table(panel).columns)
    assert not any("imput" in c.lower() for c in columns) and "Training median" in columns
    assert "not measured" in model_card.MISSING_LABS and "no median" in model_card.MISSING_LABS
    rows = display_rows(parse_labs({"wbc": 12.0}, panel, fmt="dict"), panel)
    assert [r["key"] for r in rows] == panel.keys and sum(not r["imputed"] for r in rows) == 1
    assert all(r["imputed"] for r in display_rows(None, panel))
