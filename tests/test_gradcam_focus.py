"""Grad-CAM looks at the chest: on Kermany pneumonia test films the shipped model puts more of
its heat inside the central thoracic box than the same network with shuffled weights does."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo import config, explain

HAS_MODEL = (config.default_model_dir() / "bundle.json").exists()
pytestmark = [pytest.mark.data,
              pytest.mark.skipif(not HAS_MODEL, reason="no shipped model bundle")]
N_CASES = 24


def _inside_fractions(predictor, paths):
    from pneumo.predictor import Case

    fractions = []
    for path in paths:
        case = Case.from_sources(path, None, panel=predictor.panel)
        heat = predictor.explain(case, shap=False).gradcam
        fractions.append(explain.heat_inside_box(heat))
    return np.array(fractions)


def test_heat_concentrates_on_the_thorax():
    from pneumo.bundle import load_bundle
    from pneumo.predictor import Predictor
    from pneumo.runner import ModelRunner

    paths = sorted((config.kermany_dir() / "test" / "PNEUMONIA").glob("*.jpeg"))[:N_CASES]
    real = _inside_fractions(Predictor.load(), paths)

    shuffled = load_bundle()
    rng = np.random.default_rng(0)
    encoder = shuffled.image_encoder
    encoder.set_weights([rng.permutation(w.ravel()).reshape(w.shape) for w in encoder.get_weights()])
    runner = ModelRunner(shuffled)
    runner.gate = None          # the gate rightly distrusts a scrambled network's embeddings
    control = _inside_fractions(Predictor(runner), paths)
    print(f"\nGrad-CAM heat inside the thoracic box: shipped {real.mean():.3f} "
          f"(median {np.median(real):.3f}) vs shuffled weights {control.mean():.3f} "
          f"(median {np.median(control):.3f}); box area 0.56")
    assert real.mean() > control.mean()
    assert real.mean() > 0.56       # more than a uniform heat map would put there
