"""Explanation maths on toy functions: Shapley identities, SHAP additivity, overlays."""
import numpy as np
import pytest

from pneumo.explain import attribution as explain


def test_lab_shap_is_additive_on_a_nonlinear_model():
    rng = np.random.default_rng(0)
    background = rng.normal(size=(40, 6))
    weights = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])

    def f(matrix):
        z = matrix @ weights + 0.7 * matrix[:, 0] * matrix[:, 1]
        return 1 / (1 + np.exp(-z))

    x = rng.normal(size=6)
    values, base = explain.lab_shap(f, x, background)
    assert base + values.sum() == pytest.approx(f(x[None])[0], abs=1e-6)
    assert base == pytest.approx(f(background).mean(), abs=1e-6)
    # features the model ignores get (almost) nothing
    assert abs(values[3]) < 1e-9 and abs(values[4]) < 1e-9


def test_lab_shap_against_not_measured_gives_a_test_not_given_exactly_zero():
    """Reference = every test 'not measured' (NaN): the base is the answer without labs, the
    values add up to what the given labs moved, and a test not given gets exactly 0."""
    def f(m):
        m = np.nan_to_num(np.asarray(m, float), nan=0.0)
        return 1 / (1 + np.exp(-(0.8 * m[:, 0] - 0.5 * m[:, 1] + 0.3 * m[:, 0] * m[:, 2])))

    x = np.array([1.5, 2.0, np.nan, -1.0])
    values, base = explain.lab_shap(f, x)
    assert base == pytest.approx(float(f(np.full((1, 4), np.nan))[0]))
    assert base + values.sum() == pytest.approx(float(f(x[None])[0]), abs=1e-9)
    assert values[2] == 0.0 and values[3] == 0.0          # not given; given but unused by f


def test_upsample_and_overlay_shapes():
    heat = np.zeros((7, 7), np.float32)
    heat[3, 3] = 1.0
    big = explain.upsample_heat(heat, 300, 200)
    assert big.shape == (300, 200) and big.max() <= 1.0 and big[150, 100] > 0.5
    pixels = np.linspace(0, 1, 300 * 200, dtype=np.float32).reshape(300, 200)
    rgb = explain.overlay(pixels, big, alpha=0.5)
    assert rgb.shape == (300, 200, 3) and rgb.dtype == np.uint8
    # where there is no heat the film shows through unchanged
    assert rgb[0, 0, 0] == rgb[0, 0, 1] == rgb[0, 0, 2]


def test_heat_inside_box():
    heat = np.zeros((100, 100))
    heat[40:60, 40:60] = 1
    assert explain.heat_inside_box(heat) == 1.0
    heat[:] = 1
    assert 0.5 < explain.heat_inside_box(heat) < 0.6
