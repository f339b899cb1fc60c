"""Parity of the shipped bundle's LiteRT runtime with its Keras path on all 624 Kermany test films:
every probability within 1e-4, the same labels, the same gate verdicts and warnings. Half the
films carry a training lab panel so the head is checked with labs too. Both predictors share one
verified bundle; films go through in chunks so only 64 decoded films are held at a time. Grad-CAM:
the exported cam graph against Keras's gradients on every eighth film, with and without labs."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo import config
from pneumo.inference.case import Case
from pneumo.inference.lite_runner import LiteRunner, load_runner
from pneumo.inference.predictor import Predictor

TOLERANCE = 1e-4
CAM_TOLERANCE = 1e-3
CHUNK = 64


@pytest.mark.data
@pytest.mark.slow
def test_litert_matches_keras_on_every_kermany_test_film():
    from pneumo.data.cohorts import kermany

    lite_runner = load_runner(config.default_model_dir())
    assert isinstance(lite_runner, LiteRunner), "the shipped bundle must carry its exported runtime"
    lite, keras = Predictor(lite_runner), Predictor(lite_runner.keras_runner())
    paths = kermany.load().split("test").frame["image_path"].tolist()
    assert len(paths) == 624
    background = lite_runner.background
    worst, checked = 0.0, 0
    for start in range(0, len(paths), CHUNK):
        cases = []
        for i, path in enumerate(paths[start:start + CHUNK], start):
            row = background[i % len(background)]
            labs = {k: float(v) for k, v in zip(lite.panel.keys, row) if np.isfinite(v)} if i % 2 else None
            cases.append(Case.from_sources(path, labs, panel=lite.panel))
        for path, a, b in zip(paths[start:], lite.predict_many(cases), keras.predict_many(cases)):
            assert type(a) is type(b), f"{path}: {a!r} vs {b!r}"
            if isinstance(a, Exception):
                assert str(a) == str(b), path
                continue
            worst = max(worst, abs(a.probability - b.probability),
                        *(abs(x - y) for x, y in zip(a.uncertainty["members"], b.uncertainty["members"])))
            assert (a.label, a.validity, a.warnings, a.intended_use) == \
                (b.label, b.validity, b.warnings, b.intended_use), path
            checked += 1
    print(f"LiteRT vs Keras: max |diff| {worst:.2e} over {checked} films")   # shown with pytest -s
    assert checked > 600 and worst <= TOLERANCE, f"max |diff| {worst:.2e} over {checked} films"


@pytest.mark.data
@pytest.mark.slow
def test_litert_grad_cam_matches_keras_on_kermany_test_films():
    from pneumo.data.cohorts import kermany
    from pneumo.data.imaging import preprocess, read_image

    lite = load_runner(config.default_model_dir())
    assert lite.grad_cam_runtime == "litert", "the shipped bundle must carry its exported Grad-CAM"
    keras = lite.keras_runner()
    paths = kermany.load().split("test").frame["image_path"].tolist()[::8]
    no_labs = np.full((1, len(lite.panel)), np.nan, np.float32)
    worst, lit = 0.0, 0
    for i, path in enumerate(paths):
        x = preprocess(read_image(path).pixels, lite.image_size)
        labs = lite.background[i % len(lite.background)][None].astype(np.float32) if i % 2 else no_labs
        a, b = lite.grad_cam(x, labs), keras.grad_cam(x, labs)
        assert a.shape == b.shape and a.dtype == np.float32, path
        worst = max(worst, float(np.abs(a - b).max()))
        if b.max() > 0:      # a map that lights up at all: the exported peak is Keras's peak (ties allowed)
            lit += 1
            assert b[np.unravel_index(a.argmax(), a.shape)] >= 1 - CAM_TOLERANCE, path
    print(f"Grad-CAM LiteRT vs Keras: max |diff| {worst:.2e} over {len(paths)} films, {lit} lit")
    assert len(paths) == 78 and lit > 20 and worst <= CAM_TOLERANCE, (worst, lit)
