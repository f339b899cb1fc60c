"""pneumo.data.cohorts.mimic / mimic_cxr: a made-up hosp folder and CXR metadata written here, plus the real demo."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pneumo.data.cohorts import mimic, mimic_cxr
from pneumo.errors import CohortError

# made-up admissions: (subject, hadm, admittime, dischtime, [(icd_code, version)])
ADMISSIONS = [
    (10000001, 20000001, "2150-01-01T10:00:00", "2150-01-05T12:00:00", [("486", 9), ("4821", 9)]),
    (10000002, 20000002, "2151-02-01T10:00:00", "2151-02-04T12:00:00", [("J189", 10)]),
    (10000003, 20000003, "2152-03-01T10:00:00", "2152-03-04T12:00:00", [("4870", 9), ("4019", 9)]),
    (10000004, 20000004, "2153-04-01T10:00:00", "2153-04-04T12:00:00", [("4019", 9)]),
    (10000005, 20000005, "2154-05-01T10:00:00", "2154-05-04T12:00:00", [("845", 9)]),     # lost its leading 0
    (10000006, 20000006, "2155-06-01T10:00:00", "2155-06-04T12:00:00", [("J449", 10)]),   # COPD, not pneumonia
    (10000007, 20000007, "2156-07-01T10:00:00", "2156-07-04T12:00:00", [("4871", 9)]),    # 487.1 is not 487.0
    (10000008, 20000008, "2157-08-01T10:00:00", "2157-08-04T12:00:00", [("4019", 9)]),    # labs only late
    (10000009, 20000009, "2158-09-01T10:00:00", "2158-09-04T12:00:00", [("J15211", 10)]),  # labs only late
]
ITEMS = {51301: ("White Blood Cells", "K/uL"), 50983: ("Sodium", "mEq/L"), 50931: ("Glucose", "mg/dL"),
         50912: ("Creatinine", "mg/dL"), 99999: ("Fakeium", "mg/dL")}


def write_fake_hosp(folder: Path) -> Path:
    """Write admissions/patients/d_labitems/diagnoses_icd/labevents .csv.gz with made-up rows."""
    folder.mkdir(parents=True, exist_ok=True)
    adm = pd.DataFrame([(s, h, a, d) for s, h, a, d, _ in ADMISSIONS],
                       columns=["subject_id", "hadm_id", "admittime", "dischtime"])
    adm["admission_type"] = "URGENT"
    pats = pd.DataFrame({"subject_id": adm["subject_id"], "gender": "F", "anchor_age": 50, "dod": ""})
    dx = pd.DataFrame([(s, h, i + 1, c, v) for s, h, _, _, codes in ADMISSIONS for i, (c, v) in enumerate(codes)],
                      columns=["subject_id", "hadm_id", "seq_num", "icd_code", "icd_version"])
    items = pd.DataFrame([(i, lab, "Blood", "Chemistry", "") for i, (lab, _) in ITEMS.items()],
                         columns=["itemid", "label", "fluid", "category", "loinc_code"])
    rows = []

    def lab(subject, hadm, admit, hours, itemid, value, unit=None):
        t = pd.Timestamp(admit) + pd.Timedelta(hours=hours)
        rows.append((len(rows) + 1, subject, hadm, itemid, t.strftime("%Y-%m-%d %H:%M:%S"),
                     "" if value is None else str(value), value, unit or ITEMS[itemid][1]))

    for k, (s, h, a, _, codes) in enumerate(ADMISSIONS[:7]):
        pos = k < 3
        lab(s, h, a, 1, 51301, 14.0 + k if pos else 7.0 + k)
        lab(s, h, a, 1, 50983, 138 + k)
        lab(s, h, a, 2, 50931, 5.5 if k == 4 else 100 + k, "mmol/L" if k == 4 else None)
        lab(s, h, a, 2, 99999, 1.0 + k)
        if pos or k == 3:
            lab(s, h, a, 3, 50912, 1.0)            # creatinine: all positives, 1 of 4 others -> dropped
    lab(10000001, 20000001, ADMISSIONS[0][2], 5, 51301, 20.0)      # a later wbc: the first one wins
    lab(10000002, 20000002, ADMISSIONS[1][2], -2, 51301, 99.0)     # before admittime: outside by default
    lab(10000003, 20000003, ADMISSIONS[2][2], 1.5, 50983, None)    # text result, no valuenum: ignored
    lab(10000008, 20000008, ADMISSIONS[7][2], 30, 51301, 8.0)      # after the 24 h window
    lab(10000009, 20000009, ADMISSIONS[8][2], 48, 51301, 8.0)
    labs = pd.DataFrame(rows, columns=["labevent_id", "subject_id", "hadm_id", "itemid", "charttime", "value",
                                       "valuenum", "valueuom"])
    for name, frame in [("admissions", adm), ("patients", pats), ("diagnoses_icd", dx), ("d_labitems", items),
                        ("labevents", labs)]:
        frame.to_csv(folder / f"{name}.csv.gz", index=False, compression="gzip")
    return folder


@pytest.fixture
def hosp(tmp_path):
    return write_fake_hosp(tmp_path / "hosp")


def test_pneumonia_codes():
    assert mimic.is_pneumonia_code("486", 9) and mimic.is_pneumonia_code("4870", 9)
    assert mimic.is_pneumonia_code("48241", 9) and mimic.is_pneumonia_code("4809", 9)
    assert mimic.is_pneumonia_code("J189", 10) and mimic.is_pneumonia_code("J12.0", 10)
    assert not mimic.is_pneumonia_code("4871", 9) and not mimic.is_pneumonia_code("487", 9)
    assert not mimic.is_pneumonia_code("J449", 10) and not mimic.is_pneumonia_code("J20", 10)
    assert not mimic.is_pneumonia_code("486", 10) and not mimic.is_pneumonia_code("845", 9)


def test_fake_hosp_selection(hosp):
    c = mimic.load(hosp, lookback_hours=0)   # window opens at admittime: pre-admission labs out
    f = c.frame.set_index("hadm_id")
    assert sorted(f.index) == [20000001 + i for i in range(7)]          # late-lab admissions dropped
    assert f["label"].to_dict() == {20000001 + i: int(i < 3) for i in range(7)}
    assert "creatinine" not in c.panel.keys                              # present in 1/4 of others
    assert {"wbc", "sodium", "glucose"} <= set(c.panel.keys)
    ad_hoc = [k for k in c.panel.keys if k.endswith("_99999")]
    assert ad_hoc and any("not in the catalogue" in w for w in c.description["warnings"])
    assert c.panel[ad_hoc[0]].plaus_high > 7 and c.panel[ad_hoc[0]].plaus_low <= 0
    assert f.loc[20000001, "wbc"] == 14.0                                # first by charttime
    assert f.loc[20000002, "wbc"] == 15.0                                # pre-admission 99 ignored
    assert f.loc[20000005, "glucose"] == pytest.approx(5.5 * 18.016)      # mmol/L -> mg/dL
    assert c.panel.keys.index("sodium") < c.panel.keys.index("wbc")       # catalogue order
    assert c.frame["image_path"].isna().all() and not c.semi_real
    d = c.description
    assert d["n_admissions"] == 7 and d["n_pneumonia"] == 3 and d["params"]["window_hours"] == 24


def test_fake_hosp_splits_and_medians(hosp):
    c = mimic.load(hosp, seed=3)
    assert (c.frame.groupby("patient_id")["split"].nunique() == 1).all()
    counts = c.counts()
    assert list(counts.index) == ["train", "val", "test"] and (counts[1] >= 1).all()
    train = c.frame[c.frame["split"] == "train"]
    for key in c.panel.keys:
        assert c.panel[key].median == pytest.approx(train[key].median())
    assert len(train) < len(c.frame)


def test_fake_hosp_lookback_and_window(hosp):
    c = mimic.load(hosp, lookback_hours=3)
    assert c.frame.set_index("hadm_id").loc[20000002, "wbc"] == 99.0
    late = mimic.load(hosp, window_hours=72, min_presence=0.5)
    assert {20000008, 20000009} <= set(late.frame["hadm_id"])


def test_bad_hosp(tmp_path, hosp):
    with pytest.raises(CohortError, match="not found"):
        mimic.load(tmp_path / "nowhere")
    (hosp / "labevents.csv.gz").unlink()
    with pytest.raises(CohortError, match="labevents"):
        mimic.load(hosp)
    bad = write_fake_hosp(tmp_path / "bad")
    pd.DataFrame({"hadm_id": [1]}).to_csv(bad / "admissions.csv.gz", index=False, compression="gzip")
    with pytest.raises(CohortError, match="lacks columns"):
        mimic.load(bad)
    with gzip.open(bad / "admissions.csv.gz", "wb") as fh:
        fh.write(b"")
    with pytest.raises(CohortError, match="cannot read"):
        mimic.load(bad)
    with pytest.raises(CohortError, match="min_presence"):
        mimic.load(hosp.parent / "bad", min_presence=0)


# ---- MIMIC-CXR-JPG metadata (made-up ids) ----
META_COLUMNS = ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
                "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"]


def write_fake_metadata(path: Path) -> Path:
    def row(dicom, subject, study, view, date, time):
        return [dicom, subject, study, "CHEST (PA AND LAT)", view, 3056, 2544, date, time, "CHEST (PA AND LAT)",
                "postero-anterior", "Erect"]
    rows = [
        row("d-before", 10000001, 50000001, "PA", "21500101", "090000.000"),    # before admittime
        row("d-ap", 10000001, 50000002, "AP", "21500102", "80503.5"),           # lost leading zero
        row("d-ll", 10000001, 50000002, "LL", "21500102", "80503.5"),           # lateral: never
        row("d-late", 10000001, 50000003, "PA", "21500103", "120000.000"),
        row("d-ap2", 10000002, 50000004, "AP", "21510202", "101010.000"),
        row("d-pa2", 10000002, 50000005, "PA", "21510202", "101010.000"),        # same time: PA wins
        row("d-lat3", 10000003, 50000006, "LATERAL", "21520302", "101010.000"),
        row("d-after4", 10000004, 50000007, "PA", "21530405", "101010.000"),      # after dischtime
    ]
    pd.DataFrame(rows, columns=META_COLUMNS).to_csv(path, index=False)
    return path


def test_cxr_attach(hosp, tmp_path):
    meta = write_fake_metadata(tmp_path / "mimic-cxr-2.0.0-metadata.csv")
    c = mimic.load(hosp, cxr_metadata=meta, cxr_root=tmp_path / "cxr")
    paths = c.frame.set_index("hadm_id")["image_path"]
    root = (tmp_path / "cxr").resolve()
    assert paths[20000001] == str(root / "files/p10/p10000001/s50000002/d-ap.jpg")
    assert paths[20000002].endswith("s50000005/d-pa2.jpg")
    assert paths[20000003] is None and paths[20000004] is None
    assert c.description["cxr"]["n_with_image"] == 2


def test_cxr_helpers(tmp_path):
    dt = mimic_cxr.study_datetime(pd.Series(["21500102"]), pd.Series(["80503.5"]))
    assert dt[0] == pd.Timestamp("2150-01-02 08:05:03.5")
    assert mimic_cxr.image_path("/x", 19876543, 5, "abc").endswith("files/p19/p19876543/s5/abc.jpg")
    bad = tmp_path / "meta.csv"
    pd.DataFrame({"dicom_id": ["a"]}).to_csv(bad, index=False)
    with pytest.raises(CohortError, match="lacks columns"):
        mimic_cxr.read_metadata(bad)
    with pytest.raises(CohortError, match="cannot read"):
        mimic_cxr.read_metadata(tmp_path / "absent.csv")


@pytest.mark.data
def test_real_mimic_demo():
    c = mimic.load()
    d = c.description
    print(f"\nMIMIC demo: {d['n_admissions']} admissions, {d['n_pneumonia']} pneumonia, {d['n_tests']} tests "
          f"{d['tests']}, counts {d['counts']}")
    assert 200 <= d["n_admissions"] <= 215
    assert 18 <= d["n_pneumonia"] <= 27
    assert 15 <= d["n_tests"] <= 25
    assert {"sodium", "wbc", "hemoglobin", "creatinine", "platelets"} <= set(d["tests"])
    assert (c.frame.groupby("patient_id")["split"].nunique() == 1).all()
    train = c.frame[c.frame["split"] == "train"]
    for key in c.panel.keys:
        assert c.panel[key].median == pytest.approx(train[key].median())
    assert (c.counts()[1] >= 1).all()
    assert np.isfinite(c.lab_matrix()).mean() > 0.8
    assert (d["n_admissions"], d["n_pneumonia"], d["n_tests"]) == (211, 20, 20)  # data README
    strict = mimic.load(lookback_hours=0)
    print(f"without ED labs (window opens at admittime): {strict.description['n_admissions']} "
          f"admissions, {strict.description['n_pneumonia']} pneumonia")
    assert strict.description["n_admissions"] <= d["n_admissions"]
