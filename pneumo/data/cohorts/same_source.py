"""The paper's cohort drawn from ONE film release: 50 pneumonia + 500 normal Kermany films, one per
patient, all from the same official split, split by patient at random, then paired with lab panels.

Why: in the official-test variant (paired.pair on kermany.load()) train/val films come from Kermany's
official train and test films from its official test, another release whose normal films are shifted
from train; the paper drew its 550 patients from one source and split them at random. Here every film
comes from `release` (default the official train), so train, val and test are exchangeable draws.

- one film per patient (its first by file name), as the paper kept one film per patient;
- patients drawn at random (seeded), then split stratified by class with the cohort's fractions
  (60/20/20 -> 30+300 / 10+100 / 10+100), ONCE: every run sees the same split, so runs differ in
  training randomness only and the test cases are paired across runs and regimes;
- labs paired as pneumo.data.cohorts.paired does: within (split, class), so a test film only ever
  gets a test lab panel (semi-real: the panel belongs to another person).
Because the per-run film network starts from ImageNet (pneumo.experiments.film_per_run), none of
these films has been seen by the network before its run's training."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pneumo.data.cohorts import paired
from pneumo.data.cohorts.base import PAPER_PRESETS, Cohort, counts_dict, split_groups
from pneumo.errors import CohortError

VARIANT = "same-source"
VARIANT_LINE = ("same-source: all 550 films from one Kermany release (official train), one per patient, "
                "split by patient at random; no film seen by the network before its run")


def draw(images: Cohort, labs: Cohort, *, release: str = "train", n_pos: int | None = None,
         n_neg: int | None = None, preset: str | None = "paper", seed: int = 0,
         split_fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> Cohort:
    """The same-source cohort: n_pos + n_neg patients of `release`, one film each, split by patient.

    images: kermany.load(...) (needs columns official_split and patient_id).
    labs: a lab Cohort with train/val/test splits (mimic.load()).
    release: the official split every film comes from ("train": 1263 normal + 3583 pneumonia films).
    preset "paper" = 50 + 500 (explicit n_pos / n_neg win)."""
    if preset is not None:
        if preset not in PAPER_PRESETS:
            raise CohortError(f"unknown preset {preset!r}; known: {sorted(PAPER_PRESETS)}")
        n_pos = PAPER_PRESETS[preset]["n_pos"] if n_pos is None else n_pos
        n_neg = PAPER_PRESETS[preset]["n_neg"] if n_neg is None else n_neg
    if n_pos is None or n_neg is None or n_pos < 1 or n_neg < 1:
        raise CohortError("the same-source cohort needs n_pos and n_neg >= 1 (or preset = 'paper')")
    frame = images.frame
    if "official_split" not in frame:
        raise CohortError(f"cohort {images.name!r} has no official_split column: pass kermany.load()")
    pool = frame[(frame["official_split"] == release) & frame["image_path"].notna()]
    if pool.empty:
        raise CohortError(f"no films of release {release!r} in {images.name!r}")
    mixed = pool.groupby("patient_id")["label"].nunique()
    if (mixed > 1).any():
        raise CohortError(f"{int((mixed > 1).sum())} patients have films of both classes")
    first = pool.sort_values("case_id").groupby("patient_id", sort=True).head(1)   # one film per patient
    rng = np.random.default_rng(seed)
    chosen = []
    for label, n in ((1, n_pos), (0, n_neg)):
        these = first[first["label"] == label]
        if n > len(these):
            raise CohortError(f"release {release!r} has {len(these)} patients of class {label}, asked for {n}")
        chosen.append(these.iloc[np.sort(rng.choice(len(these), n, replace=False))])
    films = pd.concat(chosen).reset_index(drop=True)
    assign = split_groups(films.set_index("patient_id")["label"], split_fractions, seed)
    films["split"] = films["patient_id"].map(assign)
    films = films.drop(columns=["official_split"]).assign(official_split=release)
    picked = Cohort(films, None, f"kermany-{release}", dict(images.description, title=f"Kermany official {release}",
                                                            source=f"kermany-{release}"))
    cohort = paired.pair(picked, labs, seed=seed)
    desc = dict(cohort.description)
    desc.update(variant=VARIANT, variant_line=VARIANT_LINE,
                notes=(f"{VARIANT_LINE}. Semi-real: each film paired class-conditionally with a real lab panel of "
                       "another person, within split, so no test film or panel is seen in training."),
                params={"release": release, "n_pos": n_pos, "n_neg": n_neg, "preset": preset, "seed": seed,
                        "split_fractions": [float(x) for x in split_fractions],
                        "one_film_per_patient": "first by file name", "split": "once, by patient, at random (seed)"},
                counts=counts_dict(cohort.frame))
    return Cohort(cohort.frame, cohort.panel, f"kermany-{release} (same-source) + {labs.name} (semi-real)",
                  desc, semi_real=True)
