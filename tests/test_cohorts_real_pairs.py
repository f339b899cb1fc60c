"""The real MIMIC cohort (MIMIC-IV labs with the same stay's MIMIC-CXR-JPG film), on a release in
the official file formats that tests/mimic_fixture.py writes: the selection, the splits, and a
bundle trained from it through the CLI that then scores a film."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mimic_fixture import N_OTHER, N_PNEUMONIA, score_a_test_case, subject_id, write_release
from pneumo.data.cohorts import real_pairs
from pneumo.errors import CohortError


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("mimic"))


@pytest.fixture(scope="module")
def cohort(release):
    return real_pairs.load(*release, seed=0)


def _row(cohort, i):
    rows = cohort.frame[cohort.frame["subject_id"] == subject_id(i)]
    return rows.iloc[0] if len(rows) else None


def test_each_case_is_one_patient_with_their_own_film_and_labs(cohort, release):
    frame = cohort.frame
    assert cohort.semi_real is False and cohort.description["pairing"] == real_pairs.PAIRING
    assert frame["patient_id"].is_unique and len(cohort.panel.keys) == 20
    assert "lab_case_id" not in frame                      # no pairing of other people's panels
    meta = pd.read_csv(release[1] / "mimic-cxr-2.0.0-metadata.csv.gz", dtype={"dicom_id": str})
    by_dicom = meta.set_index("dicom_id")
    for _, row in frame.iterrows():
        sid = str(row["subject_id"])
        assert re.search(rf"/files/p{sid[:2]}/p{sid}/s{row['cxr_study_id']}/{row['cxr_dicom_id']}\.jpg$", row["image_path"])
        assert by_dicom.loc[row["cxr_dicom_id"], "subject_id"] == row["subject_id"]   # the film is the patient's
        assert row["cxr_view"] in ("PA", "AP")
        assert row["case_id"] == f"mimic-hadm-{row['hadm_id']}"                   # the labs are that admission's
    # patients are split, never shared between splits; both classes in each
    assert frame.groupby("patient_id")["split"].nunique().max() == 1
    assert {(s, c) for s, c in zip(frame["split"], frame["label"])} == {(s, c) for s in ("train", "val", "test") for c in (0, 1)}


def test_the_selection_rules(cohort):
    assert _row(cohort, 0)["label"] == 1 and _row(cohort, 0)["hadm_id"] == 20_000_000    # pneumonia admission won
    assert _row(cohort, 1)["cxr_view"] in ("PA", "AP") and _row(cohort, 1)["cxr_study_id"] == 50_000_010
    assert _row(cohort, 2)["cxr_study_id"] == 50_000_020            # the film before the stay was not taken
    assert _row(cohort, 3) is None and cohort.description["n_films_not_on_disk"] == 1
    assert _row(cohort, 4) is None                                  # labs without a film: not a case
    assert len(cohort) == N_PNEUMONIA + N_OTHER - 2
    assert cohort.frame["label"].sum() == N_PNEUMONIA


def test_medians_come_from_the_cohorts_train_rows(cohort):
    train = cohort.frame[cohort.frame["split"] == "train"]
    for t in cohort.panel.tests:
        assert t.median == pytest.approx(float(train[t.key].median()))


def test_the_paper_sample_and_its_refusals(release):
    small = real_pairs.load(*release, seed=1, n_pos=6, n_neg=9)
    assert small.frame["label"].tolist().count(1) == 6 and len(small) == 15
    with pytest.raises(CohortError, match="asked for .* cases of class 1"):
        real_pairs.load(*release, preset="paper")                   # 50 pneumonia patients are not there
    with pytest.raises(CohortError, match="MIMIC-CXR-JPG folder not found"):
        real_pairs.load(release[0], release[1] / "absent")
    with pytest.raises(CohortError, match="has no mimic-cxr-2.0.0-metadata.csv.gz"):
        real_pairs.load(release[0], release[0])


@pytest.mark.slow
def test_a_bundle_trained_on_real_pairs_through_the_cli_scores_a_film(release, cohort, tmp_path, capsys):
    from pneumo.cli.main import main

    out = tmp_path / "bundle"
    rc = main(["train", "--cohort", "mimic-cxr", "--mimic-dir", str(release[0]), "--cxr-dir", str(release[1]),
               "--out", str(out), "--image-size", "64", "--epochs", "4", "--backbone", "none", "--bootstrap", "20",
               "--name", "mimic-real-fixture"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["semi_real"] is False and meta["training_data"]["pairing"] == real_pairs.PAIRING
    assert "root" not in json.dumps(meta["training_data"]) and str(release[1]) not in json.dumps(meta)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["semi_real"] is False and metrics["cohort"]["counts"]["test"]["total"] >= 8
    rc, answer = score_a_test_case(out, cohort, tmp_path, capsys)
    assert rc == 0 and 0 <= answer["probability"] <= 1 and answer["label"] in ("PNEUMONIA", "NORMAL")
    assert np.isfinite(answer["threshold"])


def test_the_experiment_configs_read_the_real_pairs(release):
    from pneumo import config
    from pneumo.experiments import config as experiment_config
    from pneumo.experiments.protocol import build_cohort

    shipped = experiment_config.load(config.REPO_ROOT / "configs" / "paper-mimic.toml")
    assert shipped.cohort.source == "mimic-cxr" and shipped.cohort.preset == "paper"
    cfg = experiment_config.from_dict({"name": "real", "cohort": {
        "source": "mimic-cxr", "preset": None, "n_pos": 6, "n_neg": 9, "mimic_dir": str(release[0]),
        "cxr_dir": str(release[1])}}, path=None)
    cohort = build_cohort(cfg)
    assert cohort.semi_real is False and len(cohort) == 15 and cohort.frame["patient_id"].is_unique
