"""Semi-real cohorts: real images paired class-conditionally with real lab panels of OTHER people.

Pairing is within (split, class): a train image only ever gets a train panel, a test image a test
panel, so nothing in test was seen in training by either modality. Panels are reused when there
are fewer of them than images (the normal case: the MIMIC-IV demo has ~20 pneumonia admissions);
reuse is balanced by cycling fresh shuffles of the panel list, not by iid draws."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pneumo.data.cohorts.base import PAPER_PRESETS, SPLITS, Cohort, counts_dict, cycle_draw, sample_by_split
from pneumo.errors import CohortError


def pair(images: Cohort, labs: Cohort, *, n_pos: int | None = None, n_neg: int | None = None, seed: int = 0,
         preset: str | None = None, split_fractions: Sequence[float] | None = None) -> Cohort:
    """Pair an image cohort with a lab cohort by class and by split (semi-real).

    images: a Cohort with image paths (e.g. kermany.load()); its patient ids are kept.
    labs: a Cohort with a panel (e.g. mimic.load()); its rows supply the lab columns.
    n_pos, n_neg: sample this many pneumonia / other images overall (default: use every image).
    preset: "paper" = 50 pneumonia + 500 other (explicit n_pos/n_neg win over the preset).
    split_fractions: train/val/test shares for sampled cases (default: the image cohort's split sizes).
    seed: seeds image sampling and panel assignment.
    Columns added: image_case_id, lab_case_id, lab_patient_id."""
    if preset is not None:
        if preset not in PAPER_PRESETS:
            raise CohortError(f"unknown pairing preset {preset!r}; known: {sorted(PAPER_PRESETS)}")
        n_pos = PAPER_PRESETS[preset]["n_pos"] if n_pos is None else n_pos
        n_neg = PAPER_PRESETS[preset]["n_neg"] if n_neg is None else n_neg
    if labs.panel is None:
        raise CohortError(f"cohort {labs.name!r} has no lab panel to pair with")
    img = images.frame[images.frame["image_path"].notna()]
    if img.empty:
        raise CohortError(f"cohort {images.name!r} has no images to pair")
    rng = np.random.default_rng(seed)
    if n_pos is not None or n_neg is not None:
        if n_pos is None or n_neg is None or n_pos < 0 or n_neg < 0:
            raise CohortError("give both n_pos and n_neg (non-negative), or neither")
        if split_fractions is None:
            sizes = img["split"].value_counts()
            split_fractions = [float(sizes.get(s, 0)) for s in SPLITS]
        if len(split_fractions) != len(SPLITS) or sum(split_fractions) <= 0:
            raise CohortError(f"split_fractions must be {len(SPLITS)} shares for {list(SPLITS)}")
        img = sample_by_split(img, n_pos, n_neg, split_fractions, rng)

    lab_frame = labs.frame
    rows, reuse = [], {}
    for split in SPLITS:
        for label in (0, 1):
            these = img[(img["split"] == split) & (img["label"] == label)]
            if these.empty:
                continue
            pool = np.flatnonzero(((lab_frame["split"] == split) & (lab_frame["label"] == label)).to_numpy())
            if len(pool) == 0:
                raise CohortError(f"lab cohort {labs.name!r} has no {split} panel of class {label} to pair with")
            drawn = lab_frame.iloc[cycle_draw(pool, len(these), rng)]
            reuse[f"{split}/{label}"] = {"images": len(these), "panels": int(len(pool)),
                                        "max_uses_per_panel": int(drawn["case_id"].value_counts().max())}
            part = pd.DataFrame({
                "case_id": these["case_id"].astype(str).to_numpy() + "|" + drawn["case_id"].astype(str).to_numpy(),
                "patient_id": these["patient_id"].to_numpy(),
                "image_path": these["image_path"].to_numpy(),
                "label": label,
                "split": split,
                "source": f"{_source(images)}+{_source(labs)}",
                "image_case_id": these["case_id"].to_numpy(),
                "lab_case_id": drawn["case_id"].to_numpy(),
                "lab_patient_id": drawn["patient_id"].to_numpy(),
            })
            for key in labs.panel.keys:
                part[key] = drawn[key].astype(float).to_numpy()
            rows.append(part)
    frame = pd.concat(rows, ignore_index=True)

    name = f"{images.name}+{labs.name} (semi-real)"
    description = {
        "source": name,
        "semi_real": True,
        "notes": (f"semi-real: real {_title(images)} images paired class-conditionally with real {_title(labs)} lab "
                  "panels of different people; pairing within split, so no test image or panel was seen in training"),
        "params": {"n_pos": n_pos, "n_neg": n_neg, "preset": preset, "seed": seed,
                   "split_fractions": None if split_fractions is None else [float(x) for x in split_fractions]},
        "n_cases": int(len(frame)),
        "n_pneumonia": int(frame["label"].sum()),
        "n_lab_panels_used": int(frame["lab_case_id"].nunique()),
        "panel_reuse": reuse,
        "counts": counts_dict(frame),
        "images": _summary(images),
        "labs": _summary(labs),
        "medians_from": "the lab cohort's train split",
    }
    return Cohort(frame, labs.panel, name, description, semi_real=True)


def _source(cohort: Cohort) -> str:
    return str(cohort.description.get("source", cohort.name))


def _title(cohort: Cohort) -> str:
    return str(cohort.description.get("title", cohort.name))


def _summary(cohort: Cohort) -> dict:
    keep = ("source", "title", "params", "counts", "n_admissions", "n_pneumonia", "tests", "official_counts", "notes")
    return {"name": cohort.name, **{k: cohort.description[k] for k in keep if k in cohort.description}}
