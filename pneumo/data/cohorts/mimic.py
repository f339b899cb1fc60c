"""MIMIC-IV hosp tables -> one admission lab panel per admission, following the paper (sec. 2.1).

Selection, in order:
1. label 1 = the admission carries a pneumonia code: ICD-9 480-486 or 487.0 (stored without the
   dot: '486', '4821', '4870') or ICD-10 J12-J18; every other admission is 0 ("other").
2. lab rows with a numeric value (valuenum) charted in
   [admittime - lookback_hours, admittime + window_hours] (default 24 h each side, so ED labs
   drawn before the formal admission count); the first value by charttime of each test is kept. Admissions with no lab in the window are dropped.
3. tests present in >= min_presence of the admissions of EACH class are kept.
Splits are by patient (subject_id), stratified by label, seeded; imputation medians come from
the train split only."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pneumo import config
from pneumo.data.cohorts import mimic_cxr
from pneumo.data.cohorts.base import Cohort, counts_dict, split_groups
from pneumo.data.labs.catalogue import CATALOGUE, catalogue_by_itemid
from pneumo.data.labs.panel import LabPanel, LabTest
from pneumo.data.labs.units import to_panel_unit
from pneumo.errors import CohortError, LabError

TABLES = {
    "admissions": ("subject_id", "hadm_id", "admittime", "dischtime"),
    "patients": ("subject_id",),
    "d_labitems": ("itemid", "label"),
    "diagnoses_icd": ("hadm_id", "icd_code", "icd_version"),
    "labevents": ("hadm_id", "itemid", "charttime", "valuenum", "valueuom"),
}
ICD9_PNEUMONIA = tuple(str(c) for c in range(480, 487))
ICD10_PNEUMONIA = tuple(f"J{c}" for c in range(12, 19))


def read_table(root: Path, name: str, **kw) -> pd.DataFrame:
    """One hosp table (name.csv.gz, or name.csv), with its required columns checked."""
    for candidate in (root / f"{name}.csv.gz", root / f"{name}.csv"):
        if candidate.is_file():
            try:
                frame = pd.read_csv(candidate, **kw)
            except (OSError, ValueError, EOFError) as err:
                raise CohortError(f"cannot read MIMIC table {candidate.name}: {type(err).__name__}") from None
            absent = [c for c in TABLES[name] if c not in frame.columns]
            if absent:
                raise CohortError(f"MIMIC table {candidate.name} lacks columns {absent}")
            return frame
    raise CohortError(f"MIMIC table {name}.csv.gz not found in {root}")


def is_pneumonia_code(code: str, version: int) -> bool:
    """ICD-9 480-486 / 487.0 or ICD-10 J12-J18, codes stored without dots. ICD-9 codes that lost
    a leading zero (00845 -> 845) cannot collide: no 0-prefixed code becomes 48x."""
    code = str(code).strip().upper().replace(".", "")
    if int(version) == 9:
        return code[:3] in ICD9_PNEUMONIA or code == "4870"
    if int(version) == 10:
        return code[:3] in ICD10_PNEUMONIA
    return False


def pneumonia_admissions(diagnoses: pd.DataFrame) -> set:
    """hadm_ids carrying any pneumonia code."""
    hits = [is_pneumonia_code(c, v) for c, v in zip(diagnoses["icd_code"], diagnoses["icd_version"])]
    return set(diagnoses.loc[hits, "hadm_id"].astype(int))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "lab"


def _ad_hoc_test(itemid: int, d_labitems: pd.DataFrame, values: pd.Series, unit: str) -> LabTest:
    """A LabTest for an itemid the catalogue lacks: d_labitems label, observed unit, a wide range."""
    row = d_labitems[d_labitems["itemid"] == itemid]
    label = str(row["label"].iloc[0]) if len(row) else f"item {itemid}"
    loinc = row["loinc_code"].iloc[0] if len(row) and "loinc_code" in row else None
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, abs(hi), 1.0)
    # wide on purpose: unknown physiology, so only absurd values should be refused
    return LabTest(f"{_slug(label)}_{itemid}", label, int(itemid), None if pd.isna(loinc) else str(loinc),
                   unit or "", None, None, min(0.0, lo - 10 * span), hi + 10 * span)


def _window_labs(labs: pd.DataFrame, adm: pd.DataFrame, window_hours: float, lookback_hours: float) -> pd.DataFrame:
    labs = labs.dropna(subset=["hadm_id", "valuenum", "charttime"]).copy()
    labs["hadm_id"] = labs["hadm_id"].astype(int)
    labs = labs.merge(adm[["hadm_id", "admittime"]], on="hadm_id", how="inner")
    labs["charttime"] = pd.to_datetime(labs["charttime"], errors="coerce")
    end = labs["admittime"] + pd.Timedelta(hours=window_hours)
    start = labs["admittime"] - pd.Timedelta(hours=lookback_hours)
    return labs[(labs["charttime"] >= start) & (labs["charttime"] <= end)]


def _to_keys(labs: pd.DataFrame, d_labitems: pd.DataFrame, dropped: dict) -> tuple[pd.DataFrame, dict]:
    """Map each itemid to a LabTest key and convert values to its unit; returns rows + {key: LabTest}.
    dropped collects {key: message} for values whose unit cannot be converted."""
    tests: dict[str, LabTest] = {}
    item_key: dict[int, str] = {}
    for itemid, rows in labs.groupby("itemid"):
        uoms = rows["valueuom"].dropna()
        unit = str(uoms.mode().iloc[0]) if len(uoms) else ""
        test = catalogue_by_itemid(itemid) or _ad_hoc_test(int(itemid), d_labitems, rows["valuenum"], unit)
        tests.setdefault(test.key, test)
        item_key[int(itemid)] = test.key
    labs = labs.assign(key=labs["itemid"].astype(int).map(item_key), value=np.nan)
    for (key, uom), idx in labs.groupby(["key", labs["valueuom"].fillna("")]).groups.items():
        try:
            factor = to_panel_unit(1.0, uom or None, tests[key])   # conversions are linear
        except LabError:
            dropped[key] = f"{key}: {len(idx)} values in unit {uom!r} not convertible to {tests[key].unit}; dropped"
            continue
        labs.loc[idx, "value"] = labs.loc[idx, "valuenum"] * factor
    return labs.dropna(subset=["value"]), tests


def _order(keys: list[str], tests: dict[str, LabTest]) -> list[str]:
    """Catalogue order first (matches the shipped default panel), then ad-hoc tests by itemid."""
    cat = list(CATALOGUE)
    return sorted(keys, key=lambda k: (0, cat.index(k), 0) if k in CATALOGUE else (1, 0, tests[k].itemid or 0))


def load(root: str | os.PathLike | None = None, *, window_hours: float = 24, min_presence: float = 0.8,
         cxr_metadata: str | os.PathLike | None = None, cxr_root: str | os.PathLike | None = None,
         split_fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
         lookback_hours: float = 24) -> Cohort:
    """Load MIMIC-IV hosp tables as a lab Cohort (one row per admission with labs in the window).

    root: the hosp folder (default config.mimic_dir()), v1.0 column names, gzipped CSVs.
    window_hours: labs charted from admittime to admittime + window_hours count (first value).
    lookback_hours: also count labs charted up to this long BEFORE admittime; default 24, so
        emergency-department labs drawn before the formal admission count as admission labs
        (the window is [admittime - 24 h, admittime + 24 h]: 211 admissions on the demo).
    min_presence: keep a test present in at least this share of each class's admissions.
    cxr_metadata, cxr_root: optional MIMIC-CXR-JPG metadata CSV and image root; each admission then
        gets its earliest frontal image taken during the stay (see mimic_cxr.attach).
    split_fractions: train/val/test shares of patients (per class), seeded by `seed`."""
    root = Path(root) if root is not None else config.mimic_dir()
    if not root.is_dir():
        raise CohortError(f"MIMIC-IV hosp folder not found: {root}")
    if window_hours <= 0 or lookback_hours < 0 or not 0 < min_presence <= 1:
        raise CohortError(f"need window_hours > 0, lookback_hours >= 0 and 0 < min_presence <= 1, "
                          f"got {window_hours}, {lookback_hours}, {min_presence}")
    adm = read_table(root, "admissions")
    read_table(root, "patients")   # checked for completeness of the extract; not used further
    d_labitems = read_table(root, "d_labitems")
    diagnoses = read_table(root, "diagnoses_icd", dtype={"icd_code": str})
    labs = read_table(root, "labevents", usecols=lambda c: c in {"hadm_id", "itemid", "charttime", "valuenum",
                                                                 "valueuom", "labevent_id"})
    adm = adm.dropna(subset=["hadm_id", "admittime"]).copy()
    adm["hadm_id"] = adm["hadm_id"].astype(int)
    for col in ("admittime", "dischtime"):
        adm[col] = pd.to_datetime(adm[col], errors="coerce")
    positives = pneumonia_admissions(diagnoses)
    adm["label"] = adm["hadm_id"].isin(positives).astype(int)

    dropped: dict[str, str] = {}
    window = _window_labs(labs, adm, window_hours, lookback_hours)
    if window.empty:
        raise CohortError(f"no lab values within {window_hours} h of admission in {root}")
    window, tests = _to_keys(window, d_labitems, dropped)
    sort_cols = ["hadm_id", "key", "charttime"] + (["labevent_id"] if "labevent_id" in window else [])
    first = window.sort_values(sort_cols).drop_duplicates(["hadm_id", "key"], keep="first")
    wide = first.pivot(index="hadm_id", columns="key", values="value")
    cases = adm[adm["hadm_id"].isin(wide.index)].set_index("hadm_id")
    if cases["label"].nunique() < 2:
        raise CohortError("need admissions of both classes (pneumonia and other) with labs in the window")

    present = wide.notna().groupby(cases.loc[wide.index, "label"]).mean()
    kept = [k for k in present.columns if (present[k] >= min_presence).all()]
    if not kept:
        raise CohortError(f"no test is present in >= {min_presence:.0%} of both classes' admissions")
    kept = _order(kept, tests)
    warnings = [dropped[k] for k in kept if k in dropped]
    ad_hoc = [k for k in kept if catalogue_by_itemid(tests[k].itemid) is None]
    if ad_hoc:
        warnings.append(f"tests not in the catalogue, ranges guessed wide: {ad_hoc}")

    frame = pd.DataFrame({
        "case_id": [f"mimic-hadm-{h}" for h in cases.index],
        "patient_id": [f"mimic-subject-{int(s)}" for s in cases["subject_id"]],
        "image_path": None,
        "label": cases["label"].astype(int).to_numpy(),
        "split": None,
        "source": "mimic-iv",
        "hadm_id": cases.index.to_numpy(),
        "subject_id": cases["subject_id"].astype(int).to_numpy(),
    })
    for k in kept:
        frame[k] = wide.loc[cases.index, k].astype(float).to_numpy()
    # a patient with any pneumonia admission is stratified as positive
    assign = split_groups(frame.groupby("patient_id")["label"].max(), split_fractions, seed)
    frame["split"] = frame["patient_id"].map(assign)

    train = frame[frame["split"] == "train"]
    medians = {k: (float(train[k].median()) if train[k].notna().any() else None) for k in kept}
    panel = LabPanel([tests[k] for k in kept]).with_medians(medians)

    cxr = None
    if cxr_metadata is not None:
        frame, cxr = mimic_cxr.attach(frame, cases.reset_index(), cxr_metadata, cxr_root)

    demo = "demo" in str(root.resolve()).lower()
    description = {
        "source": "mimic-iv-demo" if demo else "mimic-iv",
        "title": "MIMIC-IV demo" if demo else "MIMIC-IV",
        "root": str(root),
        "params": {"window_hours": window_hours, "lookback_hours": lookback_hours,
                   "window": "admittime - lookback_hours to admittime + window_hours",
                   "min_presence": min_presence, "split_fractions": list(split_fractions), "seed": seed,
                   "value": "first valuenum by charttime", "split_by": "patient (subject_id), stratified"},
        "label": "1 = ICD-9 480-486 or 487.0, or ICD-10 J12-J18, on the admission; 0 = any other admission",
        "n_admissions_total": int(len(adm)),
        "n_pneumonia_total": int(adm["label"].sum()),
        "n_admissions": int(len(frame)),
        "n_pneumonia": int(frame["label"].sum()),
        "n_patients": int(frame["patient_id"].nunique()),
        "n_tests": len(kept),
        "tests": kept,
        "presence": {k: {"other": round(float(present.loc[0, k]), 3), "pneumonia": round(float(present.loc[1, k]), 3)}
                     for k in kept},
        "medians_from": "train split",
        "counts": counts_dict(frame, names=("other", "pneumonia")),
        "warnings": warnings,
        "semi_real": False,
    }
    if cxr is not None:
        description["cxr"] = cxr
    return Cohort(frame, panel, "mimic-demo" if demo else "mimic-iv", description, semi_real=False)
