"""pneumo.data.cohorts.manifest: users' CSVs, per-row refusals of paths outside the root; synthetic cohort."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pneumo.data.cohorts import manifest, resolve_inside, synthetic
from pneumo.data.labs.catalogue import panel_of
from pneumo.errors import CohortError, ManifestError


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "study"
    (root / "imgs").mkdir(parents=True)
    (root / "imgs" / "a.png").write_bytes(b"x")
    (root / "imgs" / "b.png").write_bytes(b"x")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    os.symlink(outside, root / "imgs" / "link_out.png")
    os.symlink(root / "imgs" / "a.png", root / "imgs" / "link_in.png")
    return root, outside


def write(root: Path, rows: list[dict], name="manifest.csv") -> Path:
    path = root / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_resolve_inside(layout):
    root, outside = layout
    assert resolve_inside(root, "imgs/a.png") == (root / "imgs/a.png").resolve()
    assert resolve_inside(root, "imgs/link_in.png") == (root / "imgs/a.png").resolve()
    assert resolve_inside(root, str((root / "imgs/b.png").resolve())) == (root / "imgs/b.png").resolve()
    for bad in ("../secret.png", "../../etc/passwd", "/etc/hostname", "imgs/link_out.png", "imgs/../../secret.png"):
        with pytest.raises(ManifestError, match="outside"):
            resolve_inside(root, bad)
    for empty in ("", "  ", None):
        with pytest.raises(ManifestError, match="empty"):
            resolve_inside(root, empty)
    with pytest.raises(ManifestError, match="resolved"):
        resolve_inside(root, "imgs/a\x00.png")


def test_rows_refused_one_by_one(layout):
    root, _ = layout
    rows = [
        {"image_path": "imgs/a.png", "label": "PNEUMONIA", "wbc": "15.2", "ward": "A"},
        {"image_path": "../../etc/passwd", "label": "0", "wbc": "", "ward": "B"},
        {"image_path": "/etc/hostname", "label": "1", "wbc": "7", "ward": "C"},
        {"image_path": "imgs/link_out.png", "label": "normal", "wbc": "8", "ward": "D"},
        {"image_path": "imgs/missing.png", "label": "", "wbc": "abc", "ward": "E"},
        {"image_path": "imgs/b.png", "label": "maybe", "wbc": "9", "ward": "F"},
    ]
    c = manifest.load(write(root, rows))
    f = c.frame
    assert len(f) == 6 and f["case_id"].tolist()[:2] == ["row1", "row2"]
    assert f.loc[0, "error"] is None and f.loc[0, "image_path"] == str((root / "imgs/a.png").resolve())
    for i in (1, 2, 3):
        assert "outside" in f.loc[i, "error"] and f.loc[i, "image_path"] is None
    assert "not found" in f.loc[4, "error"] and "wbc value is not a number" in f.loc[4, "error"]
    assert "label" in f.loc[5, "error"] and f.loc[5, "image_path"] is not None
    assert f["label"].tolist()[:4] == [1, 0, 1, 0] and pd.isna(f.loc[4, "label"])
    assert f.loc[0, "wbc"] == 15.2 and pd.isna(f.loc[1, "wbc"])
    assert f["ward"].tolist() == list("ABCDEF") and f.loc[1, "image_path_given"] == "../../etc/passwd"
    assert c.panel is not None and "wbc" in c.panel.keys and (f["split"] == "test").all()
    assert c.description["n_errors"] == 5


def test_root_and_columns(layout, tmp_path):
    root, _ = layout
    elsewhere = write(tmp_path, [{"image_path": "imgs/a.png", "case_id": "c1", "patient_id": "p1", "split": "train",
                                  "sodium": 140}], name="m2.csv")
    c = manifest.load(elsewhere, root=root, panel=panel_of(["sodium", "wbc"]))
    f = c.frame
    assert f.loc[0, "error"] is None and f.loc[0, "case_id"] == "c1" and f.loc[0, "split"] == "train"
    assert f.loc[0, "sodium"] == 140 and pd.isna(f.loc[0, "wbc"]) and c.panel.keys == ["sodium", "wbc"]
    plain = manifest.load(write(root, [{"image_path": "imgs/a.png"}], name="m3.csv"))
    assert plain.panel is None and plain.frame.loc[0, "error"] is None


def test_bad_files(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        manifest.load(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ManifestError, match="cannot read"):
        manifest.load(tmp_path / "empty.csv")
    (tmp_path / "nocol.csv").write_text("path,label\na.png,1\n")
    with pytest.raises(ManifestError, match="no image_path column"):
        manifest.load(tmp_path / "nocol.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x00garbage\x00\x81")
    with pytest.raises(ManifestError):
        manifest.load(tmp_path / "binary.csv")
    (tmp_path / "ok.csv").write_text("image_path\na.png\n")
    with pytest.raises(ManifestError, match="root"):
        manifest.load(tmp_path / "ok.csv", root=tmp_path / "missing")
    assert issubclass(ManifestError, CohortError)


def test_synthetic(tmp_path):
    c = synthetic.make(24, size=32, seed=4, tmpdir=tmp_path / "syn")
    assert len(c) == 24 and c.name == "synthetic (test only)" and not c.semi_real
    assert all(Path(p).is_file() for p in c.frame["image_path"])
    assert set(c.frame["split"]) == {"train", "val", "test"} and (c.counts()[1] >= 1).all()
    assert c.frame.groupby("label")["wbc"].mean()[1] > c.frame.groupby("label")["wbc"].mean()[0]
    train = c.frame[c.frame["split"] == "train"]
    assert c.panel["wbc"].median == pytest.approx(train["wbc"].median())
    for t in c.panel:
        assert c.frame[t.key].between(t.plaus_low, t.plaus_high).all()
    from PIL import Image
    pos = c.frame[c.frame["label"] == 1]["image_path"].iloc[0]
    neg = c.frame[c.frame["label"] == 0]["image_path"].iloc[0]
    with Image.open(pos) as a, Image.open(neg) as b:
        assert a.size == (32, 32) and a.mode == "L"
        assert max(a.getdata()) > max(b.getdata())
    same = synthetic.make(24, size=32, seed=4, tmpdir=tmp_path / "syn2")
    assert c.frame["wbc"].tolist() == same.frame["wbc"].tolist()
    with pytest.raises(CohortError):
        synthetic.make(2, tmpdir=tmp_path)
