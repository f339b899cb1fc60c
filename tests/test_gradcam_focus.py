"""Grad-CAM looks at the chest: on Kermany pneumonia test films the shipped model puts more of
its heat inside the central thoracic box than the same network with shuffled weights does, and
more over the lung fields than a uniform map would; and the map is faithful: blurring away the
detail it points at lowers the model's own score more than blurring where another film's map
points."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo import config
from pneumo.explain import attribution as explain

pytestmark = [pytest.mark.data, pytest.mark.slow, pytest.mark.usefixtures("shipped_bundle")]
N_CASES = 24


@pytest.fixture(scope="module")
def shipped():
    """The shipped Predictor, loaded once (its Keras Grad-CAM path is built on first use)."""
    from pneumo.inference.predictor import Predictor
    return Predictor.load()


@pytest.fixture(scope="module")
def pneumonia_maps(shipped):
    """Predictor.explain on the first N_CASES Kermany pneumonia test films, once for both tests:
    its maps, and each film as the model saw it with the coarse map the runner gave explain."""
    paths = sorted((config.kermany_dir() / "test" / "PNEUMONIA").glob("*.jpeg"))[:N_CASES]
    seen, real_grad_cam = [], shipped.runner.grad_cam

    def recording(x, labs):
        seen.append((np.array(x), np.array(labs), real_grad_cam(x, labs)))
        return seen[-1][2]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shipped.runner, "grad_cam", recording)
        maps = _heat_maps(shipped, paths)
    assert len(seen) == len(paths)
    return paths, maps, seen


def _heat_maps(predictor, paths):
    from pneumo.inference.predictor import Case
    return [predictor.explain(Case.from_sources(p, None, panel=predictor.panel), shap=False).gradcam for p in paths]


def _inside_fractions(maps):
    return np.array([explain.heat_inside_box(h) for h in maps])


def test_lung_field_share_of_a_made_up_map():
    flat = np.ones((100, 100))
    assert abs(explain.heat_on_lung_fields(flat) - explain.lung_field_area()) < 0.02
    spine = np.zeros((100, 100)); spine[:, 45:55] = 1.0
    assert explain.heat_on_lung_fields(spine) == 0.0
    lungs = np.zeros((100, 100)); lungs[30:70, 20:35] = 1.0; lungs[30:70, 65:80] = 1.0
    assert explain.heat_on_lung_fields(lungs) == 1.0
    assert explain.heat_on_lung_fields(np.zeros((10, 10))) == 0.0


def test_delete_hottest_blurs_only_the_hottest_pixels():
    rng = np.random.default_rng(0)
    film = rng.random((40, 40)).astype("float32")
    heat = np.zeros((40, 40)); heat[:10, :10] = 1.0; heat[:10, 10:12] = 0.5
    out = explain.delete_hottest(film, heat, fraction=100 / 1600)
    changed = out != film
    assert changed[:10, :10].mean() > 0.95 and not changed[10:].any() and not changed[:, 12:].any()
    assert out[:10, :10].std() < film[:10, :10].std() / 3          # the detail there is gone
    with pytest.raises(ValueError):
        explain.delete_hottest(film, heat[:20], 0.1)


def test_heat_map_is_faithful_to_the_models_own_score(shipped, pneumonia_maps):
    """Deletion check (as in RISE / 'sanity checks for saliency maps'): per film, blur away the
    hottest 15% of its own map, and, as the control, the hottest 15% of the next film's map (same
    blobby shape, wrong place). The pneumonia log-odds must fall further on average for the
    film's own map. Measured on 40 val pneumonia films while writing this test: 1.3.0 0.50 vs
    0.22; the bound is the control, not a tuned number."""
    from pneumo.data.imaging import load_for_model

    runner = shipped.runner
    s = runner.image_size
    paths, _, seen = pneumonia_maps
    films = [load_for_model(p, s)[0][..., 0] for p in paths]
    no_labs = np.full((1, len(runner.panel)), np.nan, np.float32)
    for f, (x, labs, _) in zip(films, seen):       # the maps explain drew were of these films, without labs
        assert np.array_equal(x[..., 0], f) and np.isnan(labs).all() and labs.shape == no_labs.shape
    maps = [explain.upsample_heat(coarse, s, s) for _, _, coarse in seen]

    def log_odds(batch):
        early, late = runner.embed(np.stack(batch)[..., None])
        p = np.clip(runner.head(early, late, np.ones(len(batch), np.float32),
                                np.repeat(no_labs, len(batch), 0)), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    base = log_odds(films)
    own = log_odds([explain.delete_hottest(f, h) for f, h in zip(films, maps)])
    other = log_odds([explain.delete_hottest(f, maps[(i + 1) % len(maps)]) for i, f in enumerate(films)])
    drop_own, drop_other = (base - own).mean(), (base - other).mean()
    print(f"\nGrad-CAM deletion: hottest 15% blurred, log-odds drop {drop_own:.2f} with the film's own map "
          f"vs {drop_other:.2f} with another film's")
    assert drop_own > drop_other


def test_heat_concentrates_on_the_thorax(pneumonia_maps):
    from pneumo.inference.predictor import Predictor
    from pneumo.inference.runner import ModelRunner
    from pneumo.models.bundle import load_bundle

    paths, maps, _ = pneumonia_maps
    real = _inside_fractions(maps)
    lungs = np.array([explain.heat_on_lung_fields(h) for h in maps])
    print(f"\nGrad-CAM heat over the lung fields (two lateral boxes, {explain.lung_field_area():.0%} of the "
          f"film): {lungs.mean():.3f}")
    # the bound is a uniform map's share, not tuned (1.2.0 measured 0.549, 1.3.0 0.518): heat
    # parked on the mediastinum or spine fails it
    assert lungs.mean() > explain.lung_field_area()

    shuffled = load_bundle()
    rng = np.random.default_rng(0)
    encoder = shuffled.image_encoder
    encoder.set_weights([rng.permutation(w.ravel()).reshape(w.shape) for w in encoder.get_weights()])
    runner = ModelRunner(shuffled)
    runner.gate = None          # the gate rightly distrusts a scrambled network's embeddings
    control = _inside_fractions(_heat_maps(Predictor(runner), paths))
    print(f"\nGrad-CAM heat inside the thoracic box: shipped {real.mean():.3f} "
          f"(median {np.median(real):.3f}) vs shuffled weights {control.mean():.3f} "
          f"(median {np.median(control):.3f}); box area 0.56")
    assert real.mean() > control.mean()
    assert real.mean() > 0.56       # more than a uniform heat map would put there
