"""The film check's unfamiliarity (fitted on children only) and its trunk graph, on made-up films:
the scores against a brute-force reading, the save/load round trip, the reason a user reads, and
the exported trunk against its Keras graph. Its measured carry-over: test_intended_use_carry_over.py."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo.errors import PneumoError
from pneumo.inference.film_features import TRUNK_KINDS
from pneumo.inference.intended_use import (
    KERMANY_CHILDREN,
    NEIGHBOURS,
    OUTSIDE,
    WITHIN,
    FilmCheck,
    FilmReading,
    assess,
)
from pneumo.training.intended_use_fit import fit_unfamiliarity


def _children(rng, n=300, d=12):
    """Children on a 3-dimensional plane of a 12-dimensional space, with a little noise off it."""
    basis = np.linalg.qr(rng.normal(size=(d, 3)))[0].T
    return rng.normal(size=(n, 3)) @ basis * 3 + rng.normal(size=(n, d)) * 0.05, basis


def test_scores_are_the_mean_distance_to_the_nearest_children_and_the_off_axis_residual():
    rng = np.random.default_rng(0)
    child, _ = _children(rng)
    u = fit_unfamiliarity(child[:200], child[200:], axes=3, residual=True, child_quantile=0.99)
    films = rng.normal(size=(7, 12))
    z = (films - u.mean) / u.scale
    t = z @ u.axes.T
    near = np.sort(np.sqrt(((t[:, None] - u.reference[None]) ** 2).sum(-1)), axis=1)[:, :NEIGHBOURS].mean(1)
    np.testing.assert_allclose(u.scores(films), np.c_[near, ((z - t @ u.axes) ** 2).sum(1)], rtol=1e-9)
    assert np.allclose(u.axes @ u.axes.T, np.eye(3), atol=1e-9)          # orthonormal axes


def test_children_pass_and_films_off_their_plane_or_far_along_it_are_unfamiliar():
    rng = np.random.default_rng(1)
    child, basis = _children(rng, 600)
    u = fit_unfamiliarity(child[:400], child[400:], axes=3, residual=True, child_quantile=0.99)
    assert u.flags(child[400:]).mean() <= 0.02
    off_plane = child[:50] + np.linalg.svd(basis)[2][5] * 2.0           # a step off the plane
    far_along = child[:50] * 4.0                                         # on the plane, beyond the children
    assert u.flags(off_plane).all() and u.flags(far_along).mean() > 0.8
    u.at[1] = np.inf                                                     # the residual line unused
    assert not u.flags(off_plane).all()


def test_a_check_with_unfamiliarity_round_trips_and_reads_a_film(tmp_path):
    rng = np.random.default_rng(2)
    from pneumo.inference.film_features import film_features
    films = rng.random((40, 224, 224, 1)).astype(np.float32)
    f = film_features(films)
    u = fit_unfamiliarity(f[:30], f[30:], axes=4, residual=True, child_quantile=0.9)
    with pytest.raises(PneumoError):                       # a check reads something besides unfamiliarity
        FilmCheck(None, None, -1.0, {"shape": u})
    from pneumo.inference.intended_use import AdultRegression
    never = AdultRegression(f.mean(0), f.std(0) + 1, np.zeros(f.shape[1]), -50.0, 0.5)   # never says adult
    check = FilmCheck.load(FilmCheck(None, never, -1.0, {"shape": u}).save(tmp_path / "c.npz"))
    np.testing.assert_allclose(check.unfamiliar["shape"].scores(f), u.scores(f))
    np.testing.assert_array_equal(check.unfamiliar["shape"].at, u.at)
    strange = np.clip(films[0] * 0.1 + np.linspace(0, 1, 224)[None, :, None] ** 4, 0, 1).astype(np.float32)
    reading = check.read(np.zeros((1, 4)), strange)
    assert not reading.adult and reading.unfamiliar == bool(u.flags(film_features(strange))[0])


def test_a_check_that_reads_the_trunk_needs_the_trunk_graph(tmp_path):
    rng = np.random.default_rng(3)
    kind = next(iter(TRUNK_KINDS))
    a, b = TRUNK_KINDS[kind]
    x = rng.normal(size=(50, b - a))
    from pneumo.inference.intended_use import AdultRegression
    never = AdultRegression(np.zeros(2020), np.ones(2020), np.zeros(2020), -50.0, 0.5)
    path = FilmCheck(None, never, -1.0, {kind: fit_unfamiliarity(x[:40], x[40:], 4, False, 0.9)}).save(tmp_path / "t.npz")
    with pytest.raises(PneumoError, match="film_trunk"):
        FilmCheck.load(path)


def test_an_unfamiliar_film_is_outside_with_its_own_reason_and_an_age_outweighs_it():
    odd = FilmReading(0.1, 0.3, adult=False, lateral=False, unfamiliar=True)
    use = assess(KERMANY_CHILDREN, has_image=True, film=odd)
    assert use.status == OUTSIDE and use.evidence == "film check"
    assert "unlike every child's film" in use.reason and "give the age" in use.reason
    assert assess(KERMANY_CHILDREN, has_image=True, given_age=3, film=odd).status == WITHIN


def test_the_exported_trunk_reads_as_its_keras_graph(tmp_path):
    """The LiteRT trunk against the Keras one on real-looking inputs, within float32 rounding of
    features of order 1-10 through 5 blocks (1e-3; measured 4e-5)."""
    import json

    from pneumo.inference.film_features import FilmTrunk
    from pneumo.models.film_trunk import build_trunk, export_trunk
    from pneumo.models.runtime import equalize
    (tmp_path / "bundle.json").write_text(json.dumps({"weights": {}}))
    export_trunk(tmp_path, 224, log=lambda *_: None)
    rng = np.random.default_rng(4)
    films = np.clip(rng.normal(0.5, 0.25, (3, 224, 224, 1)) + np.linspace(0, 0.3, 224)[None, :, None, None], 0, 1)
    got = FilmTrunk(tmp_path / "film_trunk.tflite")(films.astype(np.float32))
    want = build_trunk(224).predict(equalize(films.astype(np.float32)), verbose=0)
    for kind, (a, b) in TRUNK_KINDS.items():
        np.testing.assert_allclose(got[kind], want[:, a:b], atol=1e-3)
    assert json.loads((tmp_path / "bundle.json").read_text())["weights"]["film_trunk.tflite"]


@pytest.mark.data
def test_the_shipped_encoder_gives_the_film_trunks_features(shipped_bundle):
    """2.0.0's stem is the frozen ImageNet start, so its encoder graph also gives the film trunk's
    features (one network a film instead of two). On real films they must be the trunk graph's, to a
    thousandth of how much each feature varies between films, and every film reading the same."""
    from pneumo import config
    from pneumo.data.imaging import load_for_model
    from pneumo.inference.film_features import FilmTrunk
    from pneumo.inference.lite_runner import load_runner
    from pneumo.models.runtime import TRUNK_FILE

    assert shipped_bundle.meta["runtime"]["trunk_in_encoder"] is True
    test = config.kermany_dir() / "test"
    paths = [p for cls in ("NORMAL", "PNEUMONIA") for p in sorted((test / cls).glob("*.jpeg"))[:24]]
    x = np.stack([load_for_model(p, shipped_bundle.image_size)[0] for p in paths])
    runner = load_runner(shipped_bundle.path)
    early, late, shared = runner.embed_with_trunk(x)
    own = FilmTrunk(shipped_bundle.path / TRUNK_FILE)(x)
    for kind, (a, b) in TRUNK_KINDS.items():
        spread = own[kind].std(axis=0) + 1e-12
        assert np.max(np.abs(shared[:, a:b] - own[kind]) / spread) < 1e-3, kind
    check = runner.film_check
    from pneumo.inference.reference_set import gate_features
    for i in range(len(x)):
        g = gate_features(early[i:i + 1], late[i:i + 1])
        assert check.read(g, x[i], shared[i:i + 1]) == check.read(g, x[i])
