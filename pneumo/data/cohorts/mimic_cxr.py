"""MIMIC-CXR-JPG metadata -> the earliest frontal (PA/AP) image of each MIMIC-IV admission.

A study counts for an admission when the same subject's study datetime (StudyDate YYYYMMDD +
StudyTime HHMMSS.fff) lies in [admittime, dischtime]; the earliest such frontal image is kept
(the paper uses the first film, before treatment changes the lungs). PA wins a same-time tie."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pneumo.data.dicom_terms import FRONTAL_VIEWS
from pneumo.errors import CohortError

METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime")


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """The metadata CSV (mimic-cxr-2.0.0-metadata.csv[.gz]) with a `study_datetime` column added."""
    path = Path(path)
    try:
        meta = pd.read_csv(path, dtype={"dicom_id": str, "StudyDate": str, "StudyTime": str, "ViewPosition": str})
    except (OSError, ValueError, EOFError) as err:
        raise CohortError(f"cannot read MIMIC-CXR metadata {path.name}: {type(err).__name__}") from None
    absent = [c for c in METADATA_COLUMNS if c not in meta.columns]
    if absent:
        raise CohortError(f"MIMIC-CXR metadata {path.name} lacks columns {absent}")
    meta = meta.dropna(subset=["dicom_id", "subject_id", "study_id", "StudyDate"]).copy()
    meta["subject_id"] = meta["subject_id"].astype(int)
    meta["study_id"] = meta["study_id"].astype(int)
    meta["study_datetime"] = study_datetime(meta["StudyDate"], meta["StudyTime"])
    return meta


def study_datetime(dates: pd.Series, times: pd.Series) -> pd.Series:
    """StudyDate 'YYYYMMDD' + StudyTime 'HHMMSS.fff' (leading zeros may be lost: '93512.5')."""
    whole = times.fillna("0").astype(str).str.split(".").str[0].str.zfill(6)
    frac = times.fillna("0").astype(str).str.split(".").str[1].fillna("0")
    stamp = dates.astype(str).str.strip() + whole + "." + frac
    return pd.to_datetime(stamp, format="%Y%m%d%H%M%S.%f", errors="coerce")


def image_path(cxr_root: str | os.PathLike, subject_id: int, study_id: int, dicom_id: str) -> str:
    """files/p{first 2 digits}/p{subject}/s{study}/{dicom}.jpg under cxr_root, absolute."""
    subject = str(int(subject_id))
    return str(Path(cxr_root).resolve() / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{int(study_id)}"
               / f"{dicom_id}.jpg")


def earliest_frontal(admissions: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """Per hadm_id the earliest frontal study image during the stay: hadm_id, dicom_id, study_id,
    subject_id, ViewPosition, study_datetime (admissions without one are absent)."""
    frontal = meta[meta["ViewPosition"].astype(str).str.upper().isin(FRONTAL_VIEWS)].dropna(subset=["study_datetime"])
    adm = admissions[["hadm_id", "subject_id", "admittime", "dischtime"]].copy()
    adm["subject_id"] = adm["subject_id"].astype(int)
    joined = adm.merge(frontal, on="subject_id", how="inner")
    during = joined[(joined["study_datetime"] >= joined["admittime"]) & (joined["study_datetime"] <= joined["dischtime"])]
    during = during.assign(_ap=(during["ViewPosition"].str.upper() != "PA").astype(int))
    during = during.sort_values(["hadm_id", "study_datetime", "_ap", "dicom_id"])
    cols = ["hadm_id", "subject_id", "study_id", "dicom_id", "ViewPosition", "study_datetime"]
    return during.drop_duplicates("hadm_id", keep="first")[cols].reset_index(drop=True)


def attach(frame: pd.DataFrame, admissions: pd.DataFrame, metadata: str | os.PathLike,
           cxr_root: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """Set frame.image_path (None where no frontal image was taken during the stay) and add
    cxr_study_id / cxr_dicom_id / cxr_view / cxr_study_datetime; cxr_root defaults to the metadata file's folder.
    frame needs hadm_id; admissions needs hadm_id, subject_id, admittime, dischtime."""
    meta = read_metadata(metadata)
    root = Path(cxr_root) if cxr_root is not None else Path(metadata).resolve().parent
    adm = admissions.copy()
    for col in ("admittime", "dischtime"):
        adm[col] = pd.to_datetime(adm[col], errors="coerce")
    first = earliest_frontal(adm, meta).set_index("hadm_id")
    frame = frame.copy()
    hit = frame["hadm_id"].isin(first.index)
    rows = first.reindex(frame["hadm_id"])
    paths = [image_path(root, s, st, d) if h else None
             for h, s, st, d in zip(hit, rows["subject_id"], rows["study_id"], rows["dicom_id"])]
    frame["image_path"] = pd.Series(paths, index=frame.index, dtype=object)
    frame["cxr_study_id"] = rows["study_id"].to_numpy()
    frame["cxr_dicom_id"] = rows["dicom_id"].to_numpy()
    frame["cxr_view"] = rows["ViewPosition"].to_numpy()
    frame["cxr_study_datetime"] = rows["study_datetime"].to_numpy()
    info = {"metadata": Path(metadata).name, "cxr_root": str(root),
            "rule": "earliest frontal (PA/AP) study between admittime and dischtime; PA wins ties",
            "n_with_image": int(hit.sum()), "n_without_image": int((~hit).sum())}
    return frame, info
