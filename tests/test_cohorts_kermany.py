"""pneumo.data.cohorts.kermany (and the Cohort basics): a tiny fake folder written here, plus the real release."""
from __future__ import annotations

from pathlib import Path

import pytest

from pneumo.data.cohorts import Cohort, kermany
from pneumo.errors import CohortError

FAKE = {
    "train/NORMAL": ["IM-0001-0001.jpeg", "IM-0002-0001.jpeg", "IM-0003-0001.jpeg", "IM-0003-0002.jpeg",
                     "NORMAL2-IM-0004-0001.jpeg", "IM-0005-0001-0001.jpeg", "IM-0006-0001.jpeg"],
    "train/PNEUMONIA": [f"person{p}_bacteria_{i}.jpeg" for p in range(1, 9) for i in (1, 2)],
    "val/NORMAL": ["NORMAL2-IM-0099-0001.jpeg"],
    "val/PNEUMONIA": ["person99_virus_1.jpeg"],
    "test/NORMAL": ["IM-0001-0001.jpeg", "IM-0050-0001.jpeg"],
    "test/PNEUMONIA": ["person1_virus_6.jpeg", "person2_bacteria_3.jpeg"],
}


def write_fake(root: Path) -> Path:
    for folder, names in FAKE.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / folder / name).write_bytes(b"not decoded by the loader")
    (root / "train/NORMAL/.DS_Store").write_bytes(b"")
    return root


@pytest.mark.parametrize("name, patient", [
    ("person1000_bacteria_2931.jpeg", "person1000"), ("person447_virus_921_1.jpeg", "person447"),
    ("IM-0115-0001.jpeg", "IM-0115"), ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
    ("IM-0011-0001-0002.jpeg", "IM-0011"), ("odd.jpeg", "odd")])
def test_patient_of(name, patient):
    assert kermany.patient_of(name) == patient


def test_fake_layout(tmp_path):
    c = kermany.load(write_fake(tmp_path / "chest_xray"), val_fraction=0.3, seed=1)
    f = c.frame
    assert len(f) == sum(map(len, FAKE.values()))
    assert c.description["official_counts"]["train"] == {"NORMAL": 7, "PNEUMONIA": 16, "total": 23}
    assert (f.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(f.loc[f["official_split"] == "val", "split"]) == {"val"}
    assert (f.loc[f["official_split"] == "test", "split"] == "test").all()
    assert f.loc[f["official_split"] == "test", "patient_id"].str.startswith("test:").all()
    carved = f[(f["official_split"] == "train") & (f["split"] == "val")]
    assert set(carved["label"]) == {0, 1} and c.description["carved_from_train"] == len(carved)
    assert Path(f["image_path"].iloc[0]).is_absolute() and c.panel is None and not c.semi_real
    assert c.counts().loc["test", "total"] == 4


def test_carve_is_seeded(tmp_path):
    root = write_fake(tmp_path / "chest_xray")
    a, b = kermany.load(root, seed=5), kermany.load(root, seed=5)
    assert a.frame["split"].tolist() == b.frame["split"].tolist()
    none = kermany.load(root, val_fraction=0)
    assert (none.frame["split"] == none.frame["official_split"]).all()


def test_bad_input(tmp_path):
    with pytest.raises(CohortError, match="not found"):
        kermany.load(tmp_path / "missing")
    (tmp_path / "empty/train/NORMAL").mkdir(parents=True)
    with pytest.raises(CohortError, match="no images"):
        kermany.load(tmp_path / "empty")
    with pytest.raises(CohortError, match="val_fraction"):
        kermany.load(write_fake(tmp_path / "x"), val_fraction=1.0)


def test_cohort_basics(tmp_path):
    c = kermany.load(write_fake(tmp_path / "chest_xray"))
    test = c.split("test")
    assert set(test.frame["split"]) == {"test"} and len(test) == 4 and test.description["split"] == "test"
    with pytest.raises(CohortError, match="unknown split"):
        c.split("holdout")
    with pytest.raises(CohortError, match="lacks columns"):
        Cohort(c.frame.drop(columns=["label"]), None, "broken")
    assert c.lab_matrix().shape == (len(c), 0)


@pytest.mark.data
def test_real_kermany():
    c = kermany.load()
    before = c.description["official_counts"]
    got = [before[s][k] for s in ("train", "val", "test") for k in ("NORMAL", "PNEUMONIA")]
    print(f"\nKermany official counts {before}\nafter the carve {c.description['counts']}")
    assert got == [1263, 3583, 8, 8, 234, 390]
    f = c.frame
    assert (f.groupby("patient_id")["split"].nunique() == 1).all()
    after = c.counts()
    assert after.loc["test", 0] == 234 and after.loc["test", 1] == 390
    assert after["total"].sum() == 1263 + 3583 + 16 + 624
    val = after.loc["val", "total"]
    assert 0.07 * 4846 < val - 16 < 0.14 * 4846          # ~10% of train patients, images vary per patient
    carved = f[(f["official_split"] == "train") & (f["split"] == "val")]
    assert not set(carved["patient_id"]) & set(f.loc[f["split"] == "train", "patient_id"])
    assert not set(carved["patient_id"]) & set(f.loc[f["split"] == "test", "patient_id"])
