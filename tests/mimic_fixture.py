"""A tiny MIMIC-IV + MIMIC-CXR-JPG release in the official file formats, written by the tests
themselves (no real data): hosp/*.csv.gz with the official columns, mimic-cxr-2.0.0-metadata.csv.gz,
mimic-cxr-2.0.0-split.csv.gz and small JPEGs under files/pXX/pNNNNNNNN/sNNNNNNNN/.

The cases that test the selection, by subject index:
  0  pneumonia; an earlier admission for something else, with its own film and labs (the pneumonia one must win)
  1  a lateral film earlier in the stay than the frontal one (the frontal one must win)
  2  a frontal film taken before the admission (outside the stay: ignored) and one during it
  3  other; its film is listed in the metadata but not on disk (dropped, and counted)
  4  other; labs but no film at all (not a case)"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pneumo.data.labs import default_panel

N_PNEUMONIA, N_OTHER = 18, 30
FILM_SIDE = 96


def is_pneumonia(i: int) -> bool:
    return i in (0, 1, 2) or 5 <= i < N_PNEUMONIA + 2          # N_PNEUMONIA subjects in all; 3 and 4 are other


def subject_id(i: int) -> int:
    return 10_000_000 + 1_000_003 * (i % 3) + 37 * i      # p10, p11 and p12 folders


def write_release(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the release under root; returns (hosp folder, MIMIC-CXR-JPG folder)."""
    rng = np.random.default_rng(seed)
    hosp, cxr = root / "mimic-iv" / "hosp", root / "mimic-cxr-jpg"
    hosp.mkdir(parents=True)
    cxr.mkdir(parents=True)
    panel = default_panel()
    admissions, diagnoses, labs, meta, patients = [], [], [], [], []
    start = datetime(2150, 1, 1, 8, 0)

    def admit(i, hadm, when, pneumonia):
        admissions.append({"subject_id": subject_id(i), "hadm_id": hadm, "admittime": when.isoformat(timespec="seconds"),
                           "dischtime": (when + timedelta(days=5)).isoformat(timespec="seconds"), "deathtime": "",
                           "admission_type": "URGENT", "admission_location": "EMERGENCY ROOM",
                           "discharge_location": "HOME", "insurance": "Other", "language": "ENGLISH",
                           "marital_status": "SINGLE", "ethnicity": "UNKNOWN", "edregtime": "", "edouttime": "",
                           "hospital_expire_flag": 0})
        code, version = (("J189", 10) if i % 2 else ("486", 9)) if pneumonia else ("4139", 9)
        diagnoses.append({"subject_id": subject_id(i), "hadm_id": hadm, "seq_num": 1, "icd_code": code,
                          "icd_version": version})
        for t in panel.tests:
            shift = 1.6 if pneumonia and t.key in ("wbc", "bun", "glucose") else 1.0
            value = round(float(t.impute_value() * shift * rng.normal(1.0, 0.08)), 2)
            labs.append({"labevent_id": len(labs) + 1, "subject_id": subject_id(i), "hadm_id": hadm,
                         "specimen_id": 30_000_000 + len(labs), "itemid": t.itemid,
                         "charttime": (when + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
                         "storetime": (when + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S"),
                         "value": str(value), "valuenum": value, "valueuom": t.unit, "ref_range_lower": "",
                         "ref_range_upper": "", "flag": "", "priority": "ROUTINE", "comments": ""})

    def film(i, study, when, view, pneumonia, on_disk=True):
        dicom_id = f"{study:08d}-{len(meta):04d}-{view.lower()}"
        meta.append({"dicom_id": dicom_id, "subject_id": subject_id(i), "study_id": study,
                     "PerformedProcedureStepDescription": f"CHEST ({view})", "ViewPosition": view,
                     "Rows": FILM_SIDE, "Columns": FILM_SIDE, "StudyDate": when.strftime("%Y%m%d"),
                     "StudyTime": when.strftime("%H%M%S") + ".000", "ProcedureCodeSequence_CodeMeaning": "CHEST",
                     "ViewCodeSequence_CodeMeaning": "postero-anterior" if view == "PA" else view.lower(),
                     "PatientOrientationCodeSequence_CodeMeaning": "Erect"})
        if on_disk:
            s = str(subject_id(i))
            folder = cxr / "files" / f"p{s[:2]}" / f"p{s}" / f"s{study}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_film(rng, pneumonia, lateral=view == "LATERAL")).save(folder / f"{dicom_id}.jpg", quality=90)
        return dicom_id

    for i in range(N_PNEUMONIA + N_OTHER):
        pneumonia = is_pneumonia(i)
        when = start + timedelta(days=3 * i)
        patients.append({"subject_id": subject_id(i), "gender": "F" if i % 2 else "M", "anchor_age": 40 + i % 40,
                         "anchor_year": 2150, "anchor_year_group": "2011 - 2013", "dod": ""})
        hadm, study = 20_000_000 + 10 * i, 50_000_000 + 10 * i
        admit(i, hadm, when, pneumonia)
        if i == 0:          # an earlier admission for something else, with a film and labs
            admit(i, hadm + 1, when - timedelta(days=200), False)
            film(i, study + 1, when - timedelta(days=199), "PA", False)
        if i == 1:          # a lateral film before the frontal one, in the same stay
            film(i, study + 2, when + timedelta(hours=2), "LATERAL", pneumonia)
        if i == 2:          # a frontal film before the admission: not of this stay
            film(i, study + 3, when - timedelta(days=30), "PA", pneumonia)
        if i == 4:          # labs, no film
            continue
        film(i, study, when + timedelta(hours=6), "AP" if i % 3 else "PA", pneumonia, on_disk=i != 3)

    def gz(frame, path):
        pd.DataFrame(frame).to_csv(path, index=False, compression="gzip")

    gz(admissions, hosp / "admissions.csv.gz")
    gz(patients, hosp / "patients.csv.gz")
    gz(diagnoses, hosp / "diagnoses_icd.csv.gz")
    gz(labs, hosp / "labevents.csv.gz")
    gz([{"itemid": t.itemid, "label": t.name, "fluid": "Blood", "category": "Chemistry", "loinc_code": t.loinc or ""}
        for t in panel.tests],
       hosp / "d_labitems.csv.gz")
    gz(meta, cxr / "mimic-cxr-2.0.0-metadata.csv.gz")
    gz([{"dicom_id": m["dicom_id"], "study_id": m["study_id"], "subject_id": m["subject_id"],
         "split": ("train", "validate", "test")[m["subject_id"] % 3]} for m in meta],
       cxr / "mimic-cxr-2.0.0-split.csv.gz")
    return hosp, cxr


def score_a_test_case(bundle: Path, cohort, folder: Path, capsys) -> tuple[int, dict]:
    """`python -m pneumo predict` on the cohort's first test film with its own labs -> (rc, answer)."""
    import json

    from pneumo.cli.main import main
    test = cohort.frame[cohort.frame["split"] == "test"].iloc[0]
    labs = folder / "labs.csv"
    labs.write_text(",".join(cohort.panel.keys) + "\n" + ",".join(f"{test[k]:g}" for k in cohort.panel.keys) + "\n")
    capsys.readouterr()
    rc = main(["predict", "--model", str(bundle), "--image", test["image_path"], "--labs", str(labs), "--json",
               "--no-log", "--allow-outside"])
    return rc, json.loads(capsys.readouterr().out)


def _film(rng, pneumonia: bool, lateral: bool = False) -> np.ndarray:
    """A film-like 8-bit image: a bright mediastinum between two dark lung fields; pneumonia adds
    an opacity in the right lower field."""
    s = FILM_SIDE
    yy, xx = np.mgrid[0:s, 0:s] / s
    img = 0.55 - 0.25 * (np.exp(-((xx - 0.3) / 0.12) ** 2) + np.exp(-((xx - 0.7) / 0.12) ** 2)) * (yy > 0.15)
    img += 0.3 * np.exp(-((xx - 0.5) / 0.07) ** 2)
    if lateral:
        img = 0.4 + 0.4 * xx
    if pneumonia:
        img += 0.3 * np.exp(-(((xx - 0.32) / 0.1) ** 2 + ((yy - 0.65) / 0.1) ** 2))
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)
