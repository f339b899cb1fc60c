"""The fusion network: named layers, shapes, absent modalities, head == composed model, baselines."""
import numpy as np
import pytest

import keras

from pneumo.experiments import classifiers as C  # noqa: E402
from pneumo.models import features as F  # noqa: E402
from pneumo.models import network as M  # noqa: E402

S, T = 64, 6


@pytest.fixture(scope="module")
def parts():
    keras.utils.set_random_seed(0)
    enc = M.build_image_encoder(S, 0.35)
    e_dim, l_dim = (int(o.shape[-1]) for o in enc.outputs)
    head = M.build_fusion_head(T, e_dim, l_dim, d_model=16, heads=2)
    return enc, head, M.build_fusion_model(encoder=enc, head=head)


def _inputs(n=4, present=1.0, missing=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.random((n, S, S, 1)).astype("float32"),
            "image_present": np.full((n, 1), present, "float32"),
            "labs": rng.normal(size=(n, T)).astype("float32"),
            "lab_missing": np.full((n, T), missing, "float32")}


def test_named_layers_exist(parts):
    enc, head, model = parts
    for name in ("image", "gray_to_rgb", "to_pm1", M.EARLY_LAYER, M.LAST_CONV_LAYER, "img_early", "img_late"):
        enc.get_layer(name)
    for name in ("lab_tokens", "lab_attention_0", "lab_emb_tokens", "lab_emb_pooled", "img_early_gated",
                 "fusion_concat", "fusion_dense", "fusion_dropout", "probs"):
        head.get_layer(name)
    assert model.get_layer("image_encoder") is enc and model.get_layer("fusion_head") is head
    assert sorted(model.input_names if hasattr(model, "input_names") else [i.name for i in model.inputs]) \
        == sorted(M.INPUT_NAMES)


def test_output_is_a_distribution(parts):
    p = parts[2].predict(_inputs(), verbose=0)
    assert p.shape == (4, 2) and np.allclose(p.sum(axis=1), 1, atol=1e-5) and (p >= 0).all()


def test_absent_image_and_all_missing_labs_are_finite(parts):
    for present, missing in ((0.0, 0.0), (1.0, 1.0), (0.0, 1.0)):
        p = parts[2].predict(_inputs(present=present, missing=missing), verbose=0)
        assert np.isfinite(p).all()


def test_absent_image_ignores_pixels_and_missing_ignores_values(parts):
    model = parts[2]
    a = _inputs(present=0.0, seed=1); b = dict(a, image=np.random.default_rng(9).random(a["image"].shape).astype("float32"))
    assert np.allclose(model.predict(a, verbose=0), model.predict(b, verbose=0), atol=1e-6)
    a = _inputs(missing=1.0, seed=2); b = dict(a, labs=a["labs"] + 5)
    assert np.allclose(model.predict(a, verbose=0), model.predict(b, verbose=0), atol=1e-6)


def test_head_on_cached_embeddings_equals_composed_model(parts):
    enc, head, model = parts
    x = _inputs(n=5, seed=3)
    x["lab_missing"][0, :2] = 1
    early, late = M.embed_images(enc, x["image"])
    f = F.Features(early, late, x["image_present"][:, 0], x["labs"], x["lab_missing"])
    f.labs = np.where(f.lab_missing > 0, np.nan, f.labs)    # features may carry NaN where missing
    assert np.allclose(M.predict_head(head, f), model.predict(x, verbose=0)[:, 1], atol=1e-5)


def test_modality_dropout_never_drops_both():
    rng = np.random.default_rng(0)
    n = 2000
    f = F.Features(np.ones((n, 3)), np.ones((n, 4)), np.ones(n), np.zeros((n, T)), np.zeros((n, T)))
    d = F.modality_dropout(f, rng, p_image=0.3, p_labs=0.3, p_test=0.1)
    no_img = d.image_present == 0
    no_labs = d.lab_missing.min(axis=1) == 1
    assert 0.2 < no_img.mean() < 0.4 and 0.2 < no_labs.mean() < 0.4
    assert not (no_img & no_labs).any()


def _toy_features(n=80, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    early = rng.normal(size=(n, 4)) + y[:, None]
    late = rng.normal(size=(n, 8)) + y[:, None]
    labs = rng.normal(size=(n, T)) + 0.5 * y[:, None]
    miss = (rng.random((n, T)) < 0.2).astype("float32")
    return F.Features(early.astype("float32"), late.astype("float32"), np.ones(n, "float32"),
                      labs.astype("float32"), miss), y


@pytest.mark.parametrize("cls", [C.LateFusion, C.GradientBoostingLabs])
def test_baselines_share_one_interface(cls):
    X, y = _toy_features()
    kw = {} if cls is C.GradientBoostingLabs else dict(epochs=1, d_model=8, heads=2)
    clf = cls(**kw).fit(X, y, X, y)
    p = clf.predict_proba(X)
    assert p.shape == (len(y),) and np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


def test_fusion_classifier_learns_a_separable_toy():
    X, y = _toy_features(200)
    p = C.FusionClassifier(epochs=6, d_model=8, heads=2, lr=1e-2).fit(X, y, X, y).predict_proba(X)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, p) > 0.85


# ----------------------------------------------------------------------------- intensity equalisation
def _eq(x):
    return np.asarray(M.HistogramEqualize()(np.asarray(x, "float32")))


def test_equalize_is_invariant_to_exposure_and_gamma():
    """Any monotone grey-level change (exposure, window, detector gamma) gives the same input."""
    rng = np.random.default_rng(1)
    film = rng.random((2, 16, 16, 1)).astype("float32")
    base = _eq(film)
    for change in (lambda v: 0.2 + 0.5 * v, lambda v: v ** 2.2, lambda v: np.sqrt(v) * 0.9):
        assert np.allclose(_eq(change(film)), base, atol=1e-6)
    assert base.min() == 0.0 and base.max() == 1.0 and base.shape == film.shape


def test_equalize_keeps_order_ties_and_each_film_separate():
    film = np.array([0.1, 0.1, 0.5, 0.9], "float32").reshape(1, 2, 2, 1)
    out = _eq(film).ravel()
    assert out[0] == out[1] == 0.0 and 0 < out[2] < out[3] == 1.0       # ties stay tied, order kept
    flat = np.full((1, 2, 2, 1), 0.4, "float32")                         # a constant image: no NaN
    both = _eq(np.concatenate([film, flat]))
    assert np.allclose(both[0], _eq(film)[0]) and np.all(both[1] == 0.0)


def test_encoder_with_equalize_has_the_layer_and_same_weights():
    plain = M.build_image_encoder(S, 0.35)
    eq = M.build_image_encoder(S, 0.35, intensity="equalize")
    assert eq.get_layer("equalize") is not None and len(eq.weights) == len(plain.weights)
    with pytest.raises(ValueError, match="intensity"):
        M.build_image_encoder(S, 0.35, intensity="clahe")
