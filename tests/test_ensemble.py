"""The seed ensemble (pneumo.training.ensemble): composition is exact, it round-trips as a bundle, Grad-CAM
and the Predictor work through it, and incompatible members are refused. No data needed: the
members are small untrained bundles made here."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pneumo.data.labs.catalogue import panel_of
from pneumo.errors import PneumoError
from pneumo.models.features import VIEWS

SIZE = 48
HEAD = dict(d_model=16, heads=2, layers_n=1, pooled_dim=8, fusion_units=16)


def _member(tmp_path, k: int, size: int = SIZE, shift: float = 0.0, panel=None):
    """An untrained single-model bundle with its own weights and lab standardisation."""
    import keras

    from pneumo.data.labs import default_panel
    from pneumo.models.bundle import load_bundle, save_bundle
    from pneumo.models.network import build_fusion_model

    keras.utils.set_random_seed(k)
    panel = panel or default_panel()
    medians = {t.key: t.impute_value() for t in panel}
    panel = panel.with_medians(medians)
    model = build_fusion_model(size=size, n_tests=len(panel), alpha=0.35, intensity="equalize", **HEAD)
    meta = {"name": f"member-{k}", "version": "0.0.1", "image_size": size,
            "architecture": {"kind": "fusion", "image_size": size, "alpha": 0.35, "intensity": "equalize",
                             "n_tests": len(panel), "head": HEAD},
            "lab_panel": panel.to_dict(),
            # members paired with other panels standardise differently: the ensemble must undo that
            "lab_standardisation": {"mean": {k_: v * (1 + shift) for k_, v in medians.items()},
                                    "sd": {k_: max(abs(v) * (0.2 + shift), 1.0) for k_, v in medians.items()}},
            "threshold": 0.5, "threshold_rule": "fixed (test bundle)", "temperature": 1.0,
            "views": {v: {"temperature": 1.0, "threshold": 0.5} for v in VIEWS},
            "training_data": {"description": "untrained test bundle"}, "training": {"seed": k}}
    out = save_bundle(tmp_path / f"member{k}", model, meta)
    return load_bundle(out)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three untrained members on the synthetic cohort's panel: the build test composes two of them."""
    from pneumo.data.cohorts.synthetic import DEFAULT_KEYS
    tmp = tmp_path_factory.mktemp("members")
    return [_member(tmp, k, shift=0.1 * k, panel=panel_of(list(DEFAULT_KEYS))) for k in range(3)]


@pytest.fixture(scope="module")
def composed(members):
    """compose(members), built once: the tests below only read it."""
    from pneumo.training.ensemble import compose
    return compose(members)


@pytest.fixture(scope="module")
def saved_ensemble(members, composed, tmp_path_factory):
    """The composed model saved once as a bundle (architecture members: 3)."""
    from pneumo.models.bundle import save_bundle
    meta = {k: v for k, v in members[0].meta.items() if k not in ("format", "created", "weights", "preprocessing")}
    meta["architecture"] = {**meta["architecture"], "members": len(members)}
    return save_bundle(tmp_path_factory.mktemp("ens") / "ens", composed, meta)


@pytest.fixture(scope="module")
def loaded_ensemble(saved_ensemble):
    """The saved ensemble read back by load_bundle, once (the tests only read it)."""
    from pneumo.models.bundle import load_bundle
    return load_bundle(saved_ensemble)


def _inputs(bundle, n=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIZE, SIZE, 1)).astype("float32")
    labs = bundle.standardisation.mean + bundle.standardisation.sd * rng.normal(size=(n, len(bundle.panel)))
    labs[1, :4] = np.nan          # a partial panel
    labs[2, :] = np.nan           # no panel
    return x, labs


def _as_bundle(template, model):
    return type(template)(template.path, model, template.meta, template.panel, template.standardisation)


def test_ensemble_is_the_mean_of_its_members(members, composed):
    ens = _as_bundle(members[0], composed)
    x, labs = _inputs(members[0])
    for images, lab_values in ((x, labs), (x, None), (None, labs)):
        each = [m.predict_proba(images, lab_values, n=len(x), calibrated=False) for m in members]
        both = ens.predict_proba(images, lab_values, n=len(x), calibrated=False)
        assert np.allclose(both, np.mean(each, axis=0), atol=1e-5)
    # members differ (otherwise the check above proves nothing)
    each = [m.predict_proba(x, labs, calibrated=False) for m in members]
    assert np.ptp(np.array(each), axis=0).max() > 1e-3


def test_ensemble_bundle_round_trips(members, composed, loaded_ensemble):
    loaded = loaded_ensemble
    x, labs = _inputs(members[0], seed=1)
    assert np.allclose(loaded.predict_proba(x, labs, calibrated=False),
                       _as_bundle(members[0], composed).predict_proba(x, labs, calibrated=False), atol=1e-6)
    assert len(loaded.model.get_layer("image_encoder").outputs) == 2
    assert loaded.meta["architecture"]["members"] == 3


def test_gradcam_and_predictor_work_through_an_ensemble(members, composed, loaded_ensemble):
    from pneumo.data.imaging import read_image
    from pneumo.inference.predictor import Case, Predictor
    from pneumo.inference.runner import ModelRunner
    from pneumo.models.network import member_encoders

    assert len(member_encoders(composed.get_layer("image_encoder"))) == 3
    runner = ModelRunner(loaded_ensemble)
    x, labs = _inputs(members[0], n=3, seed=2)
    heat = runner.grad_cam(x[0], labs[:1].astype("float32"))
    assert heat.ndim == 2 and np.isfinite(heat).all() and 0 <= heat.min() and heat.max() <= 1 + 1e-6
    # the ensemble's map is the sum of every member's weighted maps, not only member 0's
    single = ModelRunner(members[0]).grad_cam(x[0], labs[:1].astype("float32"))
    assert heat.shape == single.shape and not np.allclose(heat, single)
    import io

    from PIL import Image
    yy, xx = np.mgrid[0:300, 0:260] / 300.0
    film = (255 * (0.2 + 0.6 * np.abs(np.sin(6 * xx)) * yy)).astype("uint8")   # some structure, some contrast
    buf = io.BytesIO()
    Image.fromarray(film).save(buf, format="PNG")
    runner.gate = None          # an untrained ensemble's gate would refuse anything
    result = Predictor(runner).explain(Case(image=read_image(buf.getvalue())), shap=False)
    assert result.overlay.shape == (300, 260, 3) and 0.0 <= result.result.probability <= 1.0


def test_single_model_gradcam_is_unchanged_by_the_ensemble_code(tiny_bundle):
    """The one-member path of the generalised Grad-CAM equals plain Grad-CAM computed here."""
    import keras
    import tensorflow as tf

    from pneumo.inference.runner import ModelRunner
    from pneumo.models.bundle import load_bundle
    from pneumo.models.network import LAST_CONV_LAYER

    b = load_bundle(tiny_bundle)
    runner = ModelRunner(b)
    s, n = b.image_size, len(b.panel)
    x = np.random.default_rng(4).random((1, s, s, 1)).astype("float32")
    labs = np.full((1, n), np.nan, np.float32)
    enc = b.image_encoder
    conv_model = keras.Model(enc.inputs, [enc.get_layer(LAST_CONV_LAYER).output, *enc.outputs])
    z, m = b.lab_inputs(labs)
    with tf.GradientTape() as tape:
        conv, early, late = conv_model(tf.constant(x), training=False)
        tape.watch(conv)
        probs = b.fusion_head([early, late, tf.ones((1, 1)), tf.constant(z), tf.constant(m)], training=False)
        score = tf.math.log(probs[:, 1] + 1e-7) - tf.math.log(probs[:, 0] + 1e-7)
    g = tape.gradient(score, conv)
    heat = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(g, axis=(1, 2), keepdims=True) * conv, axis=-1))[0]
    expected = (heat / (tf.reduce_max(heat) + 1e-9)).numpy()
    assert np.allclose(runner.grad_cam(x[0], labs), expected, atol=1e-5)


def test_incompatible_members_are_refused(members, tmp_path):
    from pneumo.training.ensemble import check_compatible
    with pytest.raises(PneumoError, match="at least two"):
        check_compatible(members[:1])
    # check_compatible reads the metadata only: a member whose bundle.json says 32 px, no 32 px model built
    arch = {**members[1].meta["architecture"], "image_size": 32}
    other = dataclasses.replace(members[1], path=tmp_path / "member9",
                                meta={**members[1].meta, "image_size": 32, "architecture": arch})
    with pytest.raises(PneumoError, match="image_size"):
        check_compatible([members[0], other])


def test_seeded_stages_seed_the_fine_tunes_not_the_first_stage():
    from pneumo.training.recipes import PRESETS, seeded_stages
    stages = seeded_stages(PRESETS["shipped"]["pretrain"], 2)
    assert [st.get("seed") for st in stages] == [None, 2, 2, 2]
    assert "seed" not in PRESETS["shipped"]["pretrain"][-1]        # the preset itself is untouched
    assert seeded_stages({"epochs": 3}, 1) == [{"epochs": 3, "seed": 1}]


def test_cli_names_a_bad_member_in_one_line(tmp_path, capsys):
    from pneumo.cli.ensemble import main
    assert main(["--members", str(tmp_path / "nope"), str(tmp_path / "nope2"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no bundle.json" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_build_writes_a_calibrated_tested_bundle(members, tmp_path, monkeypatch):
    """End to end on the synthetic cohort: compose, calibrate on val, test, robustness reports."""
    import json

    from pneumo.models.bundle import load_bundle
    from pneumo.training.ensemble import build

    monkeypatch.chdir(tmp_path)                  # the synthetic films go to ./cache/synthetic
    dirs = [m.path for m in members[:2]]         # build only reads the members' folders
    metrics = build(dirs, tmp_path / "ens", cohort_spec="synthetic", version="9.9.9", n_boot=20,
                    reference=False, log=lambda *_: None)
    ens = load_bundle(tmp_path / "ens")
    assert ens.version == "9.9.9" and ens.meta["architecture"]["members"] == 2
    assert [m["seed"] for m in ens.meta["ensemble"]["members"]] == [0, 1]
    views = ens.meta["views"]
    assert set(views) == {"fusion", "image_only", "labs_only"} and all(v["temperature"] > 0 for v in views.values())
    assert metrics["val"]["image_only"]["n"] > 0 and "test" in metrics and "val_perturbations" in metrics
    on_disk = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert on_disk["ensemble"]["combination"].startswith("mean of the members' softmax")
