"""Parity of the shipped bundle's LiteRT runtime with its Keras path on all 624 Kermany test films:
every probability within 1e-4, the same labels, the same gate verdicts and warnings. Half the
films carry a training lab panel so the head is checked with labs too. Both predictors share one
verified bundle; films go through in chunks so only 64 decoded films are held at a time."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo import config
from pneumo.inference.case import Case
from pneumo.inference.lite_runner import LiteRunner, load_runner
from pneumo.inference.predictor import Predictor

TOLERANCE = 1e-4
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
