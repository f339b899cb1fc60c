"""Shapley values against a reference row (pneumo.explain.shapley): exact on toys with known
answers, efficiency, the sampled path close to the exact one, and tests not measured get 0."""
import numpy as np
import pytest

from pneumo.explain.shapley import shapley_vs_reference


def _f(m):
    m = np.nan_to_num(np.asarray(m, float), nan=-5.0)
    return 1 / (1 + np.exp(-(0.8 * m[:, 0] - 0.5 * m[:, 1] + 0.3 * m[:, 0] * m[:, 2] + 0.2 * m[:, 3])))


def test_linear_model_gives_weight_times_distance_from_the_reference():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    x, ref = np.array([2.0, 1.0, np.nan, 4.0]), np.array([1.0, 1.5, np.nan, 4.0])
    s = shapley_vs_reference(lambda m: np.nan_to_num(m) @ w, x, ref)
    assert s.exact
    np.testing.assert_allclose(s.values, [1.0, 1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.back_to_reference, s.values, atol=1e-12)   # no interactions: they agree
    assert s.base + s.values.sum() == pytest.approx(s.full)


def test_pure_interaction_is_split_evenly_and_efficiency_holds():
    f = lambda m: m[:, 0] * m[:, 1]                                          # noqa: E731
    s = shapley_vs_reference(f, np.array([2.0, 3.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(s.values, [3.0, 3.0])
    np.testing.assert_allclose(s.back_to_reference, [6.0, 6.0])


def test_exact_and_sampled_agree_on_a_nonlinear_model():
    rng = np.random.default_rng(1)
    x, ref = rng.normal(size=4), rng.normal(size=4)
    exact = shapley_vs_reference(_f, x, ref)
    sampled = shapley_vs_reference(_f, x, ref, max_exact=0, permutations=400)
    assert not sampled.exact
    assert sampled.values.sum() == pytest.approx(exact.values.sum(), abs=1e-12)   # efficiency is exact either way
    np.testing.assert_allclose(sampled.values, exact.values, atol=4 * sampled.error.max() + 1e-9)
    np.testing.assert_allclose(sampled.back_to_reference, exact.back_to_reference, atol=1e-12)


def test_exact_matches_brute_force_permutations():
    from itertools import permutations
    x, ref = np.array([1.5, -1.0, 2.0, 0.5]), np.array([0.0, 0.5, -1.0, 1.0])
    want = np.zeros(4)
    for order in permutations(range(4)):
        row = ref.copy()
        for j in order:
            before = _f(row[None])[0]
            row[j] = x[j]
            want[j] += _f(row[None])[0] - before
    np.testing.assert_allclose(shapley_vs_reference(_f, x, ref).values, want / 24, atol=1e-12)


def test_nothing_differs_from_the_reference():
    s = shapley_vs_reference(_f, np.array([1.0, np.nan, 0, 0]), np.array([1.0, np.nan, 0, 0]))
    assert not s.values.any() and s.base == s.full
