"""Bundle save/load: round trip, verified digests, refused foreign or broken bundles, and the
shipped bundle on real Kermany test images."""
import json
import shutil

import numpy as np
import pytest

import keras

from pneumo.data.labs.catalogue import panel_of
from pneumo.errors import BundleError  # noqa: E402
from pneumo.models import bundle as B  # noqa: E402
from pneumo.models.features import VIEWS
from pneumo.models.network import build_fusion_model  # noqa: E402

S = 64
KEYS = ["wbc", "sodium", "creatinine"]
HEAD = {"d_model": 8, "heads": 2, "layers_n": 1, "pooled_dim": 4, "fusion_units": 8, "dropout": 0.1}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(0)
    panel = panel_of(KEYS)
    model = build_fusion_model(size=S, n_tests=len(KEYS), alpha=0.35, **HEAD)
    meta = {"name": "toy", "version": "0.0.1", "image_size": S,
            "architecture": {"kind": "fusion", "image_size": S, "alpha": 0.35, "n_tests": len(KEYS), "head": HEAD},
            "lab_panel": panel.to_dict(),
            "lab_standardisation": {"mean": {"wbc": 8.0, "sodium": 140.0, "creatinine": 1.0},
                                    "sd": {"wbc": 3.0, "sodium": 4.0, "creatinine": 0.0}},
            "threshold": 0.4, "threshold_rule": "toy", "temperature": 1.5, "training_data": {"source": "none"},
            "views": {v: {"temperature": 1.5, "threshold": 0.4} for v in VIEWS}}
    d = tmp_path_factory.mktemp("b") / "toy"
    B.save_bundle(d, model, meta, {"val": {}})
    rng = np.random.default_rng(0)
    images = rng.random((3, S, S, 1)).astype("float32")
    labs = np.array([[12.0, 135.0, np.nan], [np.nan] * 3, [5.0, 141.0, 0.9]])
    return d, model, images, labs


@pytest.fixture(scope="module")
def loaded(saved):
    """The saved toy bundle read back by load_bundle once (tests that change it change a copy)."""
    return B.load_bundle(saved[0])


def _copy(saved, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(saved[0], d)
    return d


def test_round_trip_identical_predictions(saved, loaded):
    d, model, images, labs = saved
    b = loaded
    assert (b.name, b.version, b.image_size, b.threshold, b.temperature) == ("toy", "0.0.1", S, 0.4, 1.5)
    assert b.panel.keys == KEYS and b.standardisation.sd[2] == 1.0            # sd 0 guarded
    z, m = b.lab_inputs(labs)
    x = {"image": images, "image_present": np.ones((3, 1), "float32"), "labs": z, "lab_missing": m}
    assert np.array_equal(b.model.predict(x, verbose=0), model.predict(x, verbose=0))
    assert np.allclose(b.predict_proba(images, labs, calibrated=False), model.predict(x, verbose=0)[:, 1])
    p_img = b.predict_proba(images, None)
    assert p_img.shape == (3,) and np.isfinite(p_img).all()
    assert b.image_encoder.name == "image_encoder" and b.fusion_head.name == "fusion_head"
    meta = json.loads((d / "bundle.json").read_text())
    assert meta["weights"][B.WEIGHTS_FILE] == B.sha256_file(d / B.WEIGHTS_FILE)
    assert (d / "metrics.json").is_file() and "squash" in meta["preprocessing"]


def test_digest_mismatch_is_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    data = bytearray((d / B.WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / B.WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        B.load_bundle(d)


def test_truncated_weights_are_refused(saved, tmp_path):
    d = _copy(saved, tmp_path)
    data = (d / B.WEIGHTS_FILE).read_bytes()
    (d / B.WEIGHTS_FILE).write_bytes(data[: len(data) // 3])
    with pytest.raises(BundleError):
        B.load_bundle(d)


def test_missing_weights_and_missing_folder(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / B.WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match="missing"):
        B.load_bundle(d)
    with pytest.raises(BundleError, match="no bundle.json"):
        B.load_bundle(tmp_path / "nowhere")


@pytest.mark.parametrize("edit", [
    lambda m: m.pop("architecture"),
    lambda m: m.update(format="other-model/3"),
    lambda m: m["architecture"].pop("alpha"),
    lambda m: m["architecture"].update(n_tests=5),                  # disagrees with the panel
    lambda m: m["architecture"].update(alpha=1.0),                  # another network: weights do not fit
    lambda m: m["architecture"]["head"].update(d_model=16),
])
def test_wrong_bundle_json_is_refused(saved, tmp_path, edit):
    d = _copy(saved, tmp_path)
    meta = json.loads((d / "bundle.json").read_text())
    edit(meta)
    (d / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError):
        B.load_bundle(d)


def test_unreadable_bundle_json(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="unreadable"):
        B.load_bundle(d)


@pytest.mark.data
def test_shipped_bundle_scores_kermany_test_images():
    from sklearn.metrics import roc_auc_score

    from pneumo import config
    from pneumo.data.cohorts import kermany
    from pneumo.data.imaging import load_for_model
    if not (config.default_model_dir() / "bundle.json").is_file():
        pytest.fail("the shipped bundle models/pneumo-fusion is missing")
    b = B.load_bundle()
    test = kermany.load().split("test").frame
    import pandas as pd
    rows = pd.concat([test[test["label"] == c].sample(16, random_state=0) for c in (0, 1)])
    images = np.stack([load_for_model(p, b.image_size)[0] for p in rows["image_path"]])
    p = b.predict_proba(images, None)
    # full-test AUC is ~0.94; a 32-image AUC has sd ~0.04, so 0.85 tests "works", not luck
    assert roc_auc_score(rows["label"], p) > 0.85


def test_intensity_is_part_of_the_architecture(saved, loaded, tmp_path):
    """A bundle says whether its films are equalised in-model; one without the key (older) means none."""
    d, model, images, labs = saved
    legacy = loaded
    assert "equalize" not in [layer.name for layer in legacy.image_encoder.layers]
    keras.utils.set_random_seed(0)
    eq_model = build_fusion_model(size=S, n_tests=len(KEYS), alpha=0.35, intensity="equalize", **HEAD)
    meta = json.loads((d / "bundle.json").read_text())
    for k in ("format", "created", "weights", "preprocessing"):
        meta.pop(k)
    meta["architecture"]["intensity"] = "equalize"
    B.save_bundle(tmp_path / "eq", eq_model, meta)
    b = B.load_bundle(tmp_path / "eq")
    assert b.image_encoder.get_layer("equalize") is not None
    assert "histogram equalisation" in b.meta["preprocessing"]
    brighter = np.clip(0.1 + 0.8 * images, 0, 1)           # same films, other exposure: same answer
    assert np.allclose(b.predict_proba(images, labs), b.predict_proba(brighter, labs), atol=1e-6)


def test_predict_proba_calibrates_each_case_by_what_it_holds(saved, loaded):
    """Film + labs rows take fusion's temperature, film-only rows image_only's, labs-only rows
    labs_only's: the same rule the app's predictor applies."""
    import dataclasses

    from pneumo.models.calibration import apply_temperature
    d, _, images, labs = saved
    labs = np.nan_to_num(np.asarray(labs, "float64"), nan=1.0)      # every row has labs (an all-NaN row is film only)
    views = {"fusion": {"temperature": 1.0, "threshold": 0.5},
             "image_only": {"temperature": 3.0, "threshold": 0.5},
             "labs_only": {"temperature": 0.5, "threshold": 0.5}}
    b = dataclasses.replace(loaded, meta={**loaded.meta, "views": views})   # the shared bundle keeps its meta
    for imgs, lab, view in ((images, labs, "fusion"), (images, None, "image_only"), (None, labs, "labs_only")):
        raw = b.predict_proba(imgs, lab, n=3, calibrated=False)
        np.testing.assert_allclose(b.predict_proba(imgs, lab, n=3),
                                   apply_temperature(raw, b.calibration_for(view)[0]), rtol=1e-6)
    assert list(B.views_of_inputs(np.array([1, 1, 0, 0]), np.array([[0, 1], [1, 1], [0, 1], [1, 1]]))) == \
        ["fusion", "image_only", "labs_only", "fusion"]
