"""Kermany et al. 2018 chest X-rays (chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg).

Splits: the official test is "test", complete. The official val holds only 16 images, so a
patient-disjoint validation set is carved out of the official train (`val_fraction` of the
patients of each class, seeded); the 16 official val images are folded into "val" as well
(their patients appear nowhere else). Column `official_split` keeps the release's split."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from pneumo import config
from pneumo.data.cohorts.base import Cohort, counts_dict, split_groups
from pneumo.errors import CohortError

OFFICIAL_SPLITS = ("train", "val", "test")
CLASSES = {"NORMAL": 0, "PNEUMONIA": 1}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_NORMAL = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)-", re.IGNORECASE)


def patient_of(filename: str) -> str:
    """Patient id from a Kermany file name: person1000_bacteria_2931.jpeg -> person1000,
    IM-0115-0001.jpeg -> IM-0115, NORMAL2-IM-1427-0001.jpeg -> NORMAL2-IM-1427.
    An unrecognised name is its own patient (its stem)."""
    for pattern in (_PERSON, _NORMAL):
        m = pattern.match(filename)
        if m:
            return m.group(1)
    return Path(filename).stem


def _scan(root: Path) -> pd.DataFrame:
    rows = []
    for split in OFFICIAL_SPLITS:
        for cls, label in CLASSES.items():
            folder = root / split / cls
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                    rows.append((split, label, p))
    return pd.DataFrame(rows, columns=["official_split", "label", "path"])


def load(root: str | os.PathLike | None = None, *, val_fraction: float = 0.1, seed: int = 0) -> Cohort:
    """Load the Kermany chest X-ray release as an image-only Cohort.

    root: the `chest_xray` folder (default: config.kermany_dir()).
    val_fraction: share of the official-train patients of each class moved to "val" (0 <= f < 1).
    seed: seeds the carve.
    Patient ids: the official test numbers its children independently of train (person1 in
    train and person1 in test are different children, per the release), so test ids carry a
    "test:" prefix; official train and val share one numbering and keep the bare prefix."""
    root = Path(root) if root is not None else config.kermany_dir()
    if not root.is_dir():
        raise CohortError(f"Kermany folder not found: {root} (expected chest_xray/{{train,val,test}}/{{NORMAL,PNEUMONIA}})")
    if not 0 <= val_fraction < 1:
        raise CohortError(f"val_fraction must be in [0, 1), got {val_fraction}")
    found = _scan(root)
    if found.empty:
        raise CohortError(f"no images under {root} (expected chest_xray/{{train,val,test}}/{{NORMAL,PNEUMONIA}}/*.jpeg)")
    if not (found["official_split"] == "test").any():
        raise CohortError(f"Kermany folder {root} has no test images")
    names = found["path"].map(lambda p: p.name)
    pid = names.map(patient_of)
    frame = pd.DataFrame({
        "case_id": found["official_split"] + "/" + found["label"].map({0: "NORMAL", 1: "PNEUMONIA"}) + "/" + names,
        "patient_id": pid.where(found["official_split"] != "test", "test:" + pid),
        "image_path": found["path"].map(lambda p: str(p.resolve())),
        "label": found["label"].astype(int),
        "split": found["official_split"],
        "source": "kermany",
        "official_split": found["official_split"],
    })
    before = counts_dict(frame)

    # carve a patient-disjoint validation set out of official train, stratified by class
    train = frame[frame["official_split"] == "train"]
    groups = train.groupby("patient_id")["label"].max()
    carved = 0
    if val_fraction > 0 and len(groups) > 1:
        assign = split_groups(groups, (1 - val_fraction, val_fraction), seed, names=("train", "val"))
        to_val = train["patient_id"].map(assign) == "val"
        frame.loc[to_val[to_val].index, "split"] = "val"
        carved = int(to_val.sum())
    overlap = _shared_patients(frame)
    if overlap:
        raise CohortError(f"Kermany splits share {overlap} patient ids; the folder layout is not the official one")

    description = {
        "source": "kermany",
        "title": "Kermany",
        "citation": "Kermany et al., Cell 2018; Mendeley Data v2 (CC BY 4.0)",
        "root": str(root),
        "params": {"val_fraction": val_fraction, "seed": seed},
        "official_counts": before,
        "counts": counts_dict(frame),
        "n_images": int(len(frame)),
        "n_patients": int(frame["patient_id"].nunique()),
        "carved_from_train": carved,
        "notes": ("test = official test, complete; val = a patient-disjoint carve of "
                  f"{val_fraction:.0%} of official-train patients per class (seed {seed}) plus the "
                  "official val images; official test patient ids are prefixed 'test:' (independent numbering)"),
        "semi_real": False,
    }
    return Cohort(frame.reset_index(drop=True), None, "kermany", description, semi_real=False)


def _shared_patients(frame: pd.DataFrame) -> int:
    per = frame.groupby("patient_id")["split"].nunique()
    return int((per > 1).sum())
