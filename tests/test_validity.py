"""The validity gate: cheap checks and the embedding distance gate."""
from types import SimpleNamespace

import numpy as np

from pneumo.inference.validity import EmbeddingGate, Verdict, cheap_checks


def _meta(**kw):
    base = dict(width=1000, height=800, was_color=False, color_spread=0.0, view_position=None)
    base.update(kw)
    return SimpleNamespace(**base)


def _film(size=64, seed=0):
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.3 * np.sin(3 * xx) * np.cos(2 * yy)
    return img.astype(np.float32)[..., None]


def test_smooth_gray_image_is_accepted():
    verdict = cheap_checks(None, _meta(), _film())
    assert verdict.outcome == "accept", verdict.reasons


def test_colour_flat_noise_and_lateral():
    assert cheap_checks(None, _meta(was_color=True, color_spread=0.3), _film()).outcome == "refuse"
    assert cheap_checks(None, _meta(), np.full((64, 64, 1), 0.5, np.float32)).outcome == "refuse"
    noise = np.random.default_rng(0).random((64, 64, 1)).astype(np.float32)
    assert cheap_checks(None, _meta(), noise).outcome == "refuse"
    lateral = cheap_checks(None, _meta(view_position="LL"), _film())
    assert lateral.outcome == "warn" and "frontal" in lateral.reasons[0]


def test_verdict_keeps_the_worst_outcome():
    verdict = Verdict()
    verdict.add("refuse", "a")
    verdict.add("warn", "b")
    assert verdict.outcome == "refuse" and verdict.reasons == ["a", "b"]


def test_embedding_gate_separates_far_points():
    rng = np.random.default_rng(0)
    train, val = rng.normal(size=(500, 20)), rng.normal(size=(200, 20))
    gate = EmbeddingGate.fit(train, val, k=10)
    assert gate.judge(val[:1], Verdict()).outcome == "accept"
    assert gate.judge(np.full((1, 20), 25.0), Verdict()).outcome == "refuse"
    again = EmbeddingGate.from_arrays(gate.to_arrays())
    assert np.allclose(again.distance(val[:5]), gate.distance(val[:5]))


def test_residual_catches_what_the_pca_axes_cannot_see():
    """Training embeddings live on a 5-dim subspace of 20: a point off it, near the mean inside
    it, has a small Mahalanobis distance and a large residual; it is warned or refused for the
    residual alone. A reference written before the residual check still loads and judges."""
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(20, 5)))[0].T                     # (5, 20) orthonormal
    train = rng.normal(size=(600, 5)) @ basis + 0.01 * rng.normal(size=(600, 20))
    val = rng.normal(size=(200, 5)) @ basis + 0.01 * rng.normal(size=(200, 20))
    gate = EmbeddingGate.fit(train, val, k=5)
    off = np.zeros((1, 20)); off[0] = np.linalg.svd(basis)[2][-1] * 0.5    # orthogonal to the subspace
    assert gate.distance(off)[0] < gate.warn_at                           # the PCA alone would accept it
    verdict = gate.judge(off, Verdict())
    assert verdict.outcome in ("warn", "refuse") and verdict.residual > gate.residual_warn_at
    assert gate.judge(val[:1], Verdict()).outcome == "accept"
    arrays = gate.to_arrays()
    again = EmbeddingGate.from_arrays(arrays)
    assert (again.residual_warn_at, again.residual_refuse_at) == (gate.residual_warn_at, gate.residual_refuse_at)
    old = EmbeddingGate.from_arrays({k: v for k, v in arrays.items() if k != "residual_thresholds"})
    assert old.judge(off, Verdict()).outcome == "accept"                 # no residual thresholds: not judged on it
