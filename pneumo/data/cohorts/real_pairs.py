"""Real pairs, the paper's own data: MIMIC-IV admissions, each with a MIMIC-CXR-JPG film of the
same patient taken during that stay and that admission's own labs. No semi-real pairing here.

Selection (paper section 2.1: "images in the frontal position of the earliest registration"):
the labs of each admission as mimic.load reads them (first value in the window, tests present in
>= 80% of both classes), the earliest frontal (PA/AP) film of the stay (mimic_cxr.attach), then one
case per patient: their earliest pneumonia admission with a film, else their earliest admission
with one. Splits are mimic.load's, by patient; the panel's medians come from this cohort's train rows."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from pneumo import config
from pneumo.data.cohorts import mimic
from pneumo.data.cohorts.base import PAPER_PRESETS, SPLITS, Cohort, counts_dict, sample_by_split
from pneumo.errors import CohortError

METADATA_NAMES = ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv")
PAIRING = ("real pairs: each patient's earliest frontal (PA/AP) MIMIC-CXR-JPG film taken during an admission "
           "(a pneumonia admission first), with that same admission's MIMIC-IV labs")


def metadata_file(cxr_dir: str | os.PathLike) -> Path:
    """The MIMIC-CXR-JPG metadata CSV in cxr_dir (the release's own name, gzipped or not)."""
    d = Path(cxr_dir)
    for name in METADATA_NAMES:
        if (d / name).is_file():
            return d / name
    raise CohortError(f"MIMIC-CXR-JPG folder {d.name or d} has no {METADATA_NAMES[0]} (nor {METADATA_NAMES[1]})")


def load(mimic_dir: str | os.PathLike | None = None, cxr_dir: str | os.PathLike | None = None, *, seed: int = 0,
         split_fractions: Sequence[float] = (0.6, 0.2, 0.2), n_pos: int | None = None, n_neg: int | None = None,
         preset: str | None = None) -> Cohort:
    """The real paired cohort. mimic_dir: MIMIC-IV's hosp folder (default config.mimic_dir());
    cxr_dir: MIMIC-CXR-JPG's root, holding the metadata CSV and files/ (default config.mimic_cxr_dir()).
    n_pos / n_neg (or preset "paper": 50 / 500) sample that many patients, spread over the splits by
    split_fractions. CohortError when a folder, a file or a class in a split is missing."""
    cxr_dir = Path(cxr_dir) if cxr_dir is not None else config.mimic_cxr_dir()
    if not cxr_dir.is_dir():
        raise CohortError(f"MIMIC-CXR-JPG folder not found: {cxr_dir}")
    labs = mimic.load(mimic_dir, cxr_metadata=metadata_file(cxr_dir), cxr_root=cxr_dir,
                      split_fractions=split_fractions, seed=seed)
    frame = labs.frame[labs.frame["image_path"].notna()]
    on_disk = frame["image_path"].map(lambda p: Path(p).is_file()).astype(bool)
    frame = frame[on_disk].astype({"cxr_study_id": int})
    # one case per patient: the earliest pneumonia admission with a film, else the earliest with one
    frame = (frame.sort_values(["patient_id", "label", "cxr_study_datetime", "hadm_id"], ascending=[True, False, True, True])
             .drop_duplicates("patient_id", keep="first").reset_index(drop=True))
    frame["source"] = "mimic-iv+mimic-cxr-jpg"
    if preset is not None:
        if preset not in PAPER_PRESETS:
            raise CohortError(f"unknown preset {preset!r}; known: {sorted(PAPER_PRESETS)}")
        n_pos = PAPER_PRESETS[preset]["n_pos"] if n_pos is None else n_pos
        n_neg = PAPER_PRESETS[preset]["n_neg"] if n_neg is None else n_neg
    if n_pos is not None or n_neg is not None:
        if n_pos is None or n_neg is None or n_pos < 0 or n_neg < 0:
            raise CohortError("give both n_pos and n_neg (non-negative), or neither")
        frame = sample_by_split(frame, n_pos, n_neg, split_fractions, np.random.default_rng(seed)).reset_index(drop=True)
    for split in SPLITS:
        classes = set(frame.loc[frame["split"] == split, "label"])
        if classes != {0, 1}:
            raise CohortError(f"the real pairs' {split} split has no patient of class "
                              f"{sorted({0, 1} - classes)} with a film on disk ({len(frame)} patients in all)")
    train = frame[frame["split"] == "train"]
    panel = labs.panel.with_medians({k: float(train[k].median()) if train[k].notna().any() else None
                                     for k in labs.panel.keys})
    description = {
        "source": "mimic-iv+mimic-cxr-jpg", "title": "MIMIC-IV with MIMIC-CXR-JPG (real pairs)",
        "pairing": PAIRING, "semi_real": False,
        "labs": {k: labs.description[k] for k in ("source", "params", "label", "tests") if k in labs.description},
        "cxr": labs.description.get("cxr"),
        "params": {"seed": seed, "split_fractions": [float(x) for x in split_fractions], "n_pos": n_pos,
                   "n_neg": n_neg, "preset": preset},
        "n_admissions_with_labs": int(len(labs.frame)),
        "n_films_not_on_disk": int((~on_disk).sum()),
        "n_patients": int(len(frame)), "n_pneumonia": int(frame["label"].sum()),
        "counts": counts_dict(frame, names=("other", "pneumonia")),
        "medians_from": "this cohort's train split",
    }
    return Cohort(frame, panel, "mimic-cxr-pairs", description, semi_real=False)
