"""Explanations: Grad-CAM on the film, SHAP on the labs, and the exact Shapley split of the
answer between the two modalities. Pure functions over a head function and arrays; the
Predictor wires them to a bundle."""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

HeadFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(lab matrix with NaN for missing (n, T), image_present (n,)) -> calibrated P(pneumonia) (n,)"""


def modality_shapley(v_none: float, v_image: float, v_labs: float, v_both: float) -> dict:
    """Exact Shapley values of the two players {image, labs}; they sum to v_both - v_none."""
    image = 0.5 * ((v_image - v_none) + (v_both - v_labs))
    labs = 0.5 * ((v_labs - v_none) + (v_both - v_image))
    return {"image": float(image), "labs": float(labs), "baseline": float(v_none),
            "full": float(v_both)}


def lab_shap(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, background: np.ndarray,
             *, max_evals: int | None = None, seed: int = 0) -> tuple[np.ndarray, float]:
    """SHAP values of one lab row for f (matrix -> probability), interventional, with the
    training panels as background. Returns (values (T,), base value); base + sum == f(x)."""
    import shap  # imported here: shap pulls numba/llvmlite and costs a second at import

    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    n_features = x.shape[1]
    masker = shap.maskers.Independent(np.asarray(background, dtype=np.float64),
                                      max_samples=len(background))
    explainer = shap.explainers.Permutation(f, masker, seed=seed)
    evals = max_evals or 10 * (2 * n_features + 1)
    out = explainer(x, max_evals=evals, silent=True)
    return np.asarray(out.values[0], dtype=np.float64), float(np.ravel(out.base_values)[0])


# --- Grad-CAM -------------------------------------------------------------------------

def upsample_heat(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    """A coarse (h, w) map in [0,1] -> (height, width) float32 by bilinear interpolation."""
    img = Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.BILINEAR), dtype=np.float32).clip(0, 1)


def _jet(values: np.ndarray) -> np.ndarray:
    """A jet-like colour map without matplotlib: [0,1] -> uint8 RGB."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.concatenate([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The film (H, W) in [0,1] with the heat map (H, W) in [0,1] blended over it, uint8 RGB.
    Weak heat is made transparent so the anatomy stays readable."""
    gray = (np.clip(pixels, 0, 1) * 255).astype(np.float32)[..., None].repeat(3, axis=-1)
    colour = _jet(heat).astype(np.float32)
    weight = (alpha * np.clip(heat, 0, 1))[..., None]
    return (gray * (1 - weight) + colour * weight).clip(0, 255).astype(np.uint8)


def heat_inside_box(heat: np.ndarray, box=(0.15, 0.85, 0.1, 0.9)) -> float:
    """Fraction of the heat inside a central box (rows y0..y1, cols x0..x1 as fractions):
    the thorax of a frontal film sits there; used to check Grad-CAM looks at the lungs."""
    h, w = heat.shape
    y0, y1, x0, x1 = box
    inside = heat[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].sum()
    total = heat.sum()
    return float(inside / total) if total > 0 else 0.0
