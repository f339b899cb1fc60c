"""pneumo.training.fit on the synthetic cohort: a short fit writes a bundle that loads and agrees."""
import json

import numpy as np
import pytest

import keras

from pneumo.data.cohorts import synthetic  # noqa: E402
from pneumo.errors import PneumoError  # noqa: E402
from pneumo.models.bundle import load_bundle  # noqa: E402
from pneumo.training import fit as T  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    cohort = synthetic.make(48, size=64, seed=0, tmpdir=root / "images")
    metrics = T.train(cohort, root / "bundle", image_size=64, alpha=0.35, backbone=None, epochs=1,
                      head_kw={"d_model": 8, "heads": 2, "fusion_units": 8}, n_boot=20, head_seeds=3, log=lambda s: None)
    return cohort, root / "bundle", metrics


def test_one_epoch_writes_a_valid_bundle(trained):
    cohort, out, metrics = trained
    b = load_bundle(out)
    assert b.panel.keys == cohort.lab_keys and b.image_size == 64
    assert all(t.median is not None for t in b.panel)
    assert 0 <= b.threshold <= 1 and b.temperature > 0
    assert set(b.meta["views"]) == {"fusion", "image_only", "labs_only"}
    assert "Youden" in b.meta["threshold_rule"]
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("val", "test", "test_ci", "test_gain_labs_over_image_only", "calibration", "timings_seconds"):
        assert key in saved
    assert saved["test"]["fusion"]["n"] == int((cohort.frame["split"] == "test").sum())
    assert "val_ece_before" in saved["calibration"]["fusion"]


def test_bundle_reproduces_the_reported_test_probabilities(trained):
    cohort, out, metrics = trained
    b = load_bundle(out)
    test = cohort.split("test").frame
    from pneumo.data.imaging import load_for_model
    images = np.stack([load_for_model(p, 64)[0] for p in test["image_path"]])
    p = b.predict_proba(images, test[cohort.lab_keys].to_numpy(float))
    assert np.allclose(p, metrics["test_probabilities"]["fusion"], atol=1e-4)


def test_the_kept_head_is_the_candidate_with_the_best_mean_val_auc(trained):
    _, out, metrics = trained
    choice = metrics["head_choice"]
    assert [c["seed"] for c in choice["candidates"]] == [0, 1, 2]
    means = [np.mean(list(c["val_roc_auc"].values())) for c in choice["candidates"]]
    best = choice["candidates"][int(np.argmax(means))]
    assert choice["chosen_seed"] == best["seed"]
    # the bundle's own val figures are the chosen candidate's (temperature does not move ROC AUC)
    for view, auc in best["val_roc_auc"].items():
        assert metrics["val"][view]["roc_auc"] == pytest.approx(auc, abs=1e-5)
    assert load_bundle(out).meta["training"]["head_choice"]["chosen_seed"] == best["seed"]


def test_train_refuses_a_cohort_without_val(tmp_path):
    cohort = synthetic.make(12, size=32, seed=1, tmpdir=tmp_path)
    cohort.frame["split"] = "train"
    with pytest.raises(PneumoError, match="val"):
        T.train(cohort, tmp_path / "b", image_size=32, backbone=None, epochs=1, log=lambda s: None)


def test_the_bundle_standardises_labs_with_train_rows_only(trained):
    cohort, out, _ = trained
    std = load_bundle(out).standardisation
    frame = cohort.frame
    train = frame[frame["split"] == "train"]
    for i, k in enumerate(cohort.lab_keys):
        assert std.mean[i] == pytest.approx(np.nanmean(train[k]))
        assert std.sd[i] == pytest.approx(np.nanstd(train[k]))
    # val and test rows move the statistics, so a fit that saw them would fail above
    assert not np.allclose(std.mean, np.nanmean(frame[cohort.lab_keys].to_numpy(float), axis=0))

