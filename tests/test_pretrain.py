"""pneumo.training.backbone on tiny made-up films: recipes (augmentation strength, mixup) are trained,
recorded in the backbone's sidecar, and found again by the cache path train.py resolves."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import tensorflow as tf

from pneumo.errors import PneumoError  # noqa: E402
from pneumo.training import backbone as P  # noqa: E402
from pneumo.training import fit as T  # noqa: E402
from pneumo.training import recipes as R  # noqa: E402


def test_default_recipe_keeps_the_old_cache_name_and_others_differ():
    base = P.backbone_path(224, 0.35, "equalize")
    assert base.name == "mobilenetv2_a0.35_224_equalize.weights.h5"   # caches made before recipes existed
    names = {P.backbone_path(224, 0.35, "equalize", a, m).name
             for a in P.AUG_STRENGTHS for m in (0.0, 0.2, 0.4)}
    assert len(names) == len(P.AUG_STRENGTHS) * 3


def test_unknown_augmentation_strength_is_refused():
    with pytest.raises(PneumoError, match="augmentation strength"):
        P.augmenter(0, "wild")


def test_mixup_blends_films_labels_and_weights_alike():
    tf.random.set_seed(0)
    n = 64
    xb = tf.constant(np.repeat(np.linspace(0, 1, n, dtype="float32"), 16).reshape(n, 4, 4, 1))
    yb = tf.one_hot(np.arange(n) % 2, 2)
    wb = tf.constant(np.where(np.arange(n) % 2, 3.0, 1.0).astype("float32"))
    xm, ym, (wm,) = P._mix_batch(xb, yb, (wb,), 0.2)
    xm, ym, wm = xm.numpy(), ym.numpy(), wm.numpy()
    x0, xr = xb.numpy()[:, 0, 0, 0], xb.numpy()[::-1, 0, 0, 0]
    lam = (xm[:, 0, 0, 0] - xr) / np.where(x0 != xr, x0 - xr, 1)      # recover each row's weight
    ok = x0 != xr
    assert np.all((lam[ok] >= -1e-5) & (lam[ok] <= 1 + 1e-5))
    assert np.allclose(ym.sum(1), 1.0, atol=1e-6)
    y0, yr = yb.numpy()[:, 1], yb.numpy()[::-1, 1]
    assert np.allclose(ym[ok, 1], lam[ok] * y0[ok] + (1 - lam[ok]) * yr[ok], atol=1e-4)
    w0, wr = wb.numpy(), wb.numpy()[::-1]
    assert np.allclose(wm[ok], lam[ok] * w0[ok] + (1 - lam[ok]) * wr[ok], atol=1e-4)
    assert np.mean((lam[ok] < 0.1) | (lam[ok] > 0.9)) > 0.5            # Beta(0.2, 0.2) sits near 0 and 1
    assert np.ptp(lam[ok]) > 0.5                                       # one lam per row, not per batch


def test_dataset_without_mixup_keeps_hard_labels():
    x = np.random.default_rng(0).integers(0, 255, (8, 32, 32), dtype=np.uint8)
    y = np.array([0, 1] * 4)
    xb, yb = next(iter(P._dataset(x, y, 8, 0, True, None, "strong", 0.0)))
    assert set(np.unique(yb.numpy())) == {0.0, 1.0}
    assert xb.shape == (8, 32, 32, 1) and 0.0 <= float(tf.reduce_min(xb)) <= float(tf.reduce_max(xb)) <= 1.0


def test_acquisition_changes_noise_and_blur_some_films_and_leave_other_strengths_alone():
    tf.random.set_seed(1)
    flat = tf.fill([200, 24, 24, 1], 0.5)
    assert np.array_equal(P.acquisition(flat, "fov_wide").numpy(), flat.numpy())
    sd = P.acquisition(flat, "acq").numpy().reshape(200, -1).std(1)   # blur leaves a flat film flat: sd = noise
    untouched = sd < 1e-6
    assert 0.35 < untouched.mean() < 0.65                              # noise on about half the films
    assert sd.max() <= 0.05 * 1.25 and np.ptp(sd[~untouched]) > 0.02    # each film its own sd, up to 0.05
    edge = np.zeros((200, 24, 24, 1), "float32")
    edge[:, :, 12:] = 1.0
    out = P.acquisition(tf.constant(edge), "acq").numpy()
    step = out[:, 12, 12, 0] - out[:, 12, 11, 0]                         # a sharp edge, softened on some films
    softened = step < 0.95
    assert 0.15 < softened.mean() < 0.75                               # 30% blurred, noise jitters some others
    assert np.allclose(out[:, :, :2].mean((1, 2, 3)), 0.0, atol=0.03)  # reflect padding: no dark/bright frame


trains_a_backbone = pytest.mark.slow   # the tests below share two backbone trainings of ~30 s each
BASE_RECIPE = {"epochs": 2, "augment": "strong", "mixup": 0.2, "seed": 3}   # every recipe choice off its default


@pytest.fixture(scope="module")
def tiny_kermany(tmp_path_factory):
    """pretrain() on 24 made-up 32 px films (16 train, 8 val) in a private cache folder, shared by
    this module's tests (each recipe has its own cache name, so they do not meet)."""
    rng = np.random.default_rng(0)
    n, size = 24, 32
    y = np.array([0, 1] * (n // 2))
    x = rng.integers(0, 255, (n, size, size), dtype=np.uint8)
    x[y == 1, 8:24, 8:24] = 255                                      # something to learn
    frame = pd.DataFrame({"split": ["train"] * 16 + ["val"] * 8, "label": y})
    cohort = SimpleNamespace(frame=frame, description={"notes": "made-up films"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(P, "kermany_cache", lambda s, log=print: (cohort, x))
        mp.setattr(P, "CACHE_DIR", tmp_path_factory.mktemp("backbones"))
        yield size


@pytest.fixture(scope="module")
def base_backbone(tiny_kermany):
    """The one backbone trained from scratch here (BASE_RECIPE, equalize): its recipe is checked
    below, and the fine-tuning tests start from it."""
    return P.pretrain(tiny_kermany, 0.35, intensity="equalize", log=lambda s: None, **BASE_RECIPE)


@trains_a_backbone
def test_pretrain_records_the_recipe_and_train_finds_it(tiny_kermany, base_backbone):
    """One training for the whole recipe (augmentation, mixup and a seed): recorded, named, found."""
    size, out = tiny_kermany, base_backbone
    assert out == P.backbone_path(size, 0.35, "equalize", "strong", 0.2, 3) and out.is_file()
    assert out.name.endswith("_seed3.weights.h5")
    assert out != P.backbone_path(size, 0.35, "equalize", "strong", 0.2)     # seed 0 keeps the old name
    meta = json.loads(P.backbone_info_path(out).read_text())
    assert (meta["augment"], meta["mixup"], meta["intensity"], meta["init"], meta["seed"]) == \
        ("strong", 0.2, "equalize", None, 3)
    assert len(meta["history"]) == 2 and meta["train_images"] == 16
    found = R.resolve_backbone("pretrained", size, 0.35, lambda s: None, "equalize", [BASE_RECIPE])
    assert found == str(out)                                          # cached: no second pretraining


@pytest.fixture(scope="module")
def fov_stage(tiny_kermany, base_backbone):
    """The staged recipe [BASE_RECIPE, then fov at lr 5e-4] resolved once: resolve_backbone finds
    the base and fine-tunes it through pretrain(init=base, out=...). init_weights: what each
    encoder build was given (one fine-tuning serves the two tests below)."""
    import pneumo.models.network as network
    seen, real_build = [], network.build_image_encoder

    def spy(size, alpha, weights=None, intensity="none", **kw):
        seen.append(weights)
        return real_build(size, alpha, weights=weights, intensity=intensity, **kw)
    stages = [BASE_RECIPE, {"epochs": 1, "augment": "fov", "lr": 5e-4}]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(network, "build_image_encoder", spy)
        path = R.resolve_backbone("pretrained", tiny_kermany, 0.35, lambda s: None, "equalize", stages)
    return SimpleNamespace(path=path, stages=stages, init_weights=seen)


@trains_a_backbone
def test_fine_tuning_starts_from_the_given_backbone(tiny_kermany, base_backbone, fov_stage):
    from pneumo.models.network import build_image_encoder
    size, base, ft = tiny_kermany, base_backbone, fov_stage.path
    assert fov_stage.init_weights == [str(base)]          # one training, started from the base
    meta = json.loads(P.backbone_info_path(ft).read_text())
    assert meta["init"] == base.name and meta["lr"] == 5e-4
    assert {k: meta["init_recipe"][k] for k in BASE_RECIPE} == BASE_RECIPE   # the base's recipe, recorded
    a = build_image_encoder(size, 0.35, weights=str(base), intensity="equalize").get_weights()
    b = build_image_encoder(size, 0.35, weights=str(ft), intensity="equalize").get_weights()
    assert len(a) == len(b) and any(not np.array_equal(u, v) for u, v in zip(a, b))   # it did train


@trains_a_backbone
def test_fine_tuning_refuses_a_backbone_of_another_intensity(tiny_kermany, base_backbone, tmp_path):
    """Refused before any training: a copy of the base whose sidecar says it saw raw intensities."""
    other = tmp_path / "raw.weights.h5"
    other.write_bytes(base_backbone.read_bytes())
    info = json.loads(P.backbone_info_path(base_backbone).read_text())
    P.backbone_info_path(other).write_text(json.dumps({**info, "intensity": "none"}))
    with pytest.raises(PneumoError, match="intensity 'none', not 'equalize'"):
        P.pretrain(tiny_kermany, 0.35, epochs=1, intensity="equalize", init=other, log=lambda s: None)


@trains_a_backbone
def test_staged_recipe_fine_tunes_the_first_stage_and_is_cached(tiny_kermany, base_backbone, fov_stage, monkeypatch):
    stages, path = fov_stage.stages, fov_stage.path
    base = P.backbone_path(tiny_kermany, 0.35, "equalize", "strong", 0.2, 3)
    assert base == base_backbone and base.is_file()                    # the first stage: the cached base
    assert path == str(P.finetuned_path(base, "fov"))
    assert path.endswith("_equalize_strong_mixup0.2_seed3_then_fov.weights.h5")
    meta = P.backbone_info(path)
    assert meta["init"] == base.name and meta["augment"] == "fov" and meta["lr"] == 5e-4
    calls = []
    monkeypatch.setattr(P, "pretrain", lambda *a, **k: calls.append(k))
    assert R.resolve_backbone("pretrained", tiny_kermany, 0.35, lambda s: None, "equalize", stages) == path
    assert calls == []


@trains_a_backbone
def test_train_refuses_a_backbone_pretrained_at_another_size(tiny_kermany, base_backbone, tmp_path):
    base = base_backbone
    with pytest.raises(PneumoError, match=f"pretrained at {tiny_kermany} px, this model is {2 * tiny_kermany} px"):
        T.train(None, tmp_path / "bundle", image_size=2 * tiny_kermany, alpha=0.35, backbone=str(base),
                log=lambda s: None)   # refused before the cohort is read
    with pytest.raises(PneumoError, match="width alpha 0.35, this model 0.5"):
        T._check_backbone_shape(base, P.backbone_info(base), tiny_kermany, 0.5)
    T._check_backbone_shape(base, P.backbone_info(base), tiny_kermany, 0.35)   # the right shape passes
