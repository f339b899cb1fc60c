"""pneumo.data.cohorts.paired: class- and split-conditional pairing, on hand-made cohorts and the real data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumo.data.cohorts import Cohort, paired
from pneumo.data.labs.catalogue import panel_of
from pneumo.errors import CohortError

KEYS = ["sodium", "wbc"]


def image_cohort(n_per=(20, 4, 6)) -> Cohort:
    rows = []
    for split, n in zip(("train", "val", "test"), n_per):
        for i in range(n):
            rows.append((f"{split}-img{i}", f"{split}-pat{i // 2}", f"/img/{split}/{i}.png", i % 2, split, "fake-img"))
    frame = pd.DataFrame(rows, columns=["case_id", "patient_id", "image_path", "label", "split", "source"])
    return Cohort(frame, None, "fake-images", {"source": "fake-images"})


def lab_cohort(n_per=(6, 2, 2)) -> Cohort:
    rows = []
    for split, n in zip(("train", "val", "test"), n_per):
        for i in range(n):
            rows.append((f"{split}-adm{i}", f"{split}-subj{i}", None, i % 2, split, "fake-labs", 130 + i, 5.0 + 10 * (i % 2)))
    frame = pd.DataFrame(rows, columns=["case_id", "patient_id", "image_path", "label", "split", "source"] + KEYS)
    return Cohort(frame, panel_of(KEYS), "fake-labs", {"source": "fake-labs"})


def check_no_leak(c: Cohort, labs: Cohort):
    f = c.frame
    assert (f.groupby("patient_id")["split"].nunique() == 1).all()
    assert (f.groupby("lab_case_id")["split"].nunique() == 1).all()
    lab = labs.frame.set_index("case_id")
    assert (lab.loc[f["lab_case_id"], "split"].to_numpy() == f["split"].to_numpy()).all()
    assert (lab.loc[f["lab_case_id"], "label"].to_numpy() == f["label"].to_numpy()).all()
    for key in labs.panel.keys:
        np.testing.assert_array_equal(lab.loc[f["lab_case_id"], key].to_numpy(), f[key].to_numpy())


def test_default_pairs_every_image():
    imgs, labs = image_cohort(), lab_cohort()
    c = paired.pair(imgs, labs, seed=1)
    assert len(c) == len(imgs) and c.semi_real and "(semi-real)" in c.name
    assert set(c.frame["image_case_id"]) == set(imgs.frame["case_id"])
    assert c.frame["case_id"].is_unique
    check_no_leak(c, labs)
    img = imgs.frame.set_index("case_id")
    assert (img.loc[c.frame["image_case_id"], "patient_id"].to_numpy() == c.frame["patient_id"].to_numpy()).all()
    assert "semi-real: real" in c.description["notes"] and "different people" in c.description["notes"]
    assert c.panel.keys == KEYS


def test_reuse_is_balanced():
    c = paired.pair(image_cohort((20, 4, 6)), lab_cohort((6, 2, 2)), seed=2)
    uses = c.frame[c.frame["split"] == "train"].groupby("label")["lab_case_id"].value_counts()
    for label in (0, 1):
        assert uses[label].max() - uses[label].min() <= 1       # 10 images over 3 panels: 4/3/3


def test_sampled_counts_and_seed():
    imgs, labs = image_cohort((200, 40, 60)), lab_cohort()
    a = paired.pair(imgs, labs, n_pos=30, n_neg=60, seed=3)
    assert a.frame["label"].sum() == 30 and (a.frame["label"] == 0).sum() == 60
    assert a.counts().loc["train", "total"] > a.counts().loc["test", "total"]
    assert a.frame.equals(paired.pair(imgs, labs, n_pos=30, n_neg=60, seed=3).frame)
    b = paired.pair(imgs, labs, n_pos=30, n_neg=60, split_fractions=(1, 0, 1), seed=3)
    assert set(b.frame["split"]) == {"train", "test"}
    check_no_leak(b, labs)


def test_bad_pairing():
    imgs, labs = image_cohort(), lab_cohort()
    with pytest.raises(CohortError, match="preset"):
        paired.pair(imgs, labs, preset="bogus")
    with pytest.raises(CohortError, match="no lab panel"):
        paired.pair(imgs, imgs)
    with pytest.raises(CohortError, match="asked for"):
        paired.pair(imgs, labs, n_pos=500, n_neg=5)
    with pytest.raises(CohortError, match="both n_pos and n_neg"):
        paired.pair(imgs, labs, n_pos=5)
    no_test = Cohort(labs.frame[labs.frame["split"] != "test"], labs.panel, "partial")
    with pytest.raises(CohortError, match="no test panel"):
        paired.pair(imgs, no_test)


@pytest.mark.data
def test_real_kermany_mimic():
    from pneumo.data.cohorts import kermany, mimic
    imgs, labs = kermany.load(), mimic.load()
    full = paired.pair(imgs, labs)
    assert len(full) == len(imgs) and full.name == "kermany+mimic-demo (semi-real)"
    check_no_leak(full, labs)
    paper = paired.pair(imgs, labs, preset="paper")
    print(f"\npaper preset counts:\n{paper.counts()}")
    assert paper.frame["label"].sum() == 50 and (paper.frame["label"] == 0).sum() == 500
    check_no_leak(paper, labs)
    assert paper.description["semi_real"] and paper.semi_real
    assert paper.description["notes"].startswith(
        "semi-real: real Kermany images paired class-conditionally with real MIMIC-IV demo lab panels of different people")
