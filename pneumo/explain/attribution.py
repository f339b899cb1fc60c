"""Explanations: Grad-CAM on the film and SHAP on the labs (against "not measured"), pure
functions over a head function and arrays; the Predictor wires them to a bundle and splits the
answer into the film's and the labs' steps from the no-input baseline."""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

HeadFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(lab matrix with NaN for missing (n, T), image_present (n,)) -> calibrated P(pneumonia) (n,)"""


def lab_shap(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, background: np.ndarray | None = None,
             *, max_evals: int | None = None, seed: int = 0) -> tuple[np.ndarray, float]:
    """SHAP values of one lab row for f (matrix with NaN = not measured -> probability).

    The reference (background) is by default one row of "not measured": the base value is then
    the answer without any labs, the values add up exactly to what the given labs moved, and a
    test not given has exactly 0. Returns (values (T,), base value); base + sum == f(x)."""
    import shap  # imported here: shap pulls numba/llvmlite and costs a second at import

    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    n_features = x.shape[1]
    if background is None:
        background = np.full((1, n_features), np.nan)
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


def _jet_lut() -> np.ndarray:
    """A jet-like colour map without matplotlib: 256 entries of uint8 RGB."""
    v = np.linspace(0.0, 1.0, 256)[:, None]
    rgb = np.concatenate([np.clip(1.5 - np.abs(4 * v - k), 0, 1) for k in (3, 2, 1)], axis=1)
    return (rgb * 255).astype(np.uint8)


_JET = _jet_lut()


def shrink_to(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """The film (H, W) float in [0,1] scaled down so its long side is at most max_side (as is
    when it already fits): the heat map's resolution, and what a screen can show."""
    h, w = pixels.shape
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return pixels
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(np.asarray(pixels, np.float32), mode="F").resize(size, Image.BILINEAR),
                      np.float32).clip(0, 1)


def for_display(pixels: np.ndarray, heat: np.ndarray, max_side: int = 768) -> tuple[np.ndarray, np.ndarray]:
    """The film and its heat map scaled down once for the screen (long side <= max_side), so an
    opacity slider re-blends a small picture instead of a full-size film."""
    film = shrink_to(pixels, max_side)
    return film, (heat if heat.shape == film.shape else upsample_heat(heat, *film.shape))


def colour_bar(width: int = 256, height: int = 12) -> np.ndarray:
    """The overlay's colour scale as a strip (low heat left, high right), uint8 RGB."""
    return np.repeat(_JET[np.linspace(0, 255, width).astype(np.uint8)][None], height, axis=0)


def heat_layer(heat: np.ndarray) -> np.ndarray:
    """The heat map (H, W) in [0,1] as uint8 RGBA: its colour, with the heat as the alpha (weak
    heat transparent). Over the film at opacity a, this is overlay(pixels, heat, a)."""
    heat8 = (np.clip(heat, 0, 1) * 255).astype(np.uint8)
    return np.dstack([_JET[heat8], heat8])


def overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The film (H, W) in [0,1] with the heat map (H, W) in [0,1] blended over it, uint8 RGB.
    Weak heat is made transparent so the anatomy stays readable. Done in uint8 by PIL, so a
    3000x3000 film costs tens of MB, not hundreds."""
    heat8 = (np.clip(heat, 0, 1) * 255).astype(np.uint8)
    gray = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    colour = Image.fromarray(_JET[heat8])
    mask = Image.fromarray((heat8.astype(np.float32) * float(np.clip(alpha, 0, 1))).astype(np.uint8))
    return np.asarray(Image.composite(colour, gray, mask))


def delete_hottest(image: np.ndarray, heat: np.ndarray, fraction: float = 0.15, sigma: float = 10.0) -> np.ndarray:
    """The film (S, S) with its hottest `fraction` of pixels (by `heat`, same shape) replaced by a
    heavily blurred copy of itself: the detail the map points at is taken away, the grey levels
    around it kept. A faithful map's deletion lowers the score more than another map's does."""
    from scipy import ndimage
    image = np.asarray(image, np.float32)
    if image.shape != np.shape(heat) or not 0 < fraction < 1:
        raise ValueError(f"need a film and a heat map of one shape and a fraction in (0, 1), got "
                         f"{image.shape}, {np.shape(heat)}, {fraction}")
    k = int(round(fraction * image.size))
    hot = np.zeros(image.size, bool)
    hot[np.argsort(np.asarray(heat).ravel(), kind="stable")[image.size - k:]] = True
    out = image.ravel().copy()
    out[hot] = ndimage.gaussian_filter(image, sigma).ravel()[hot]
    return out.reshape(image.shape)


def heat_inside_box(heat: np.ndarray, box=(0.15, 0.85, 0.1, 0.9)) -> float:
    """Fraction of the heat inside a central box (rows y0..y1, cols x0..x1 as fractions):
    the thorax of a frontal film sits there; used to check Grad-CAM looks at the lungs."""
    return _share_in_boxes(heat, (box,))


def _share_in_boxes(heat: np.ndarray, boxes) -> float:
    """Fraction of the heat inside the boxes (rows y0..y1, cols x0..x1 as fractions); 0 for no heat."""
    h, w = heat.shape
    total = heat.sum()
    if total <= 0:
        return 0.0
    inside = sum(heat[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].sum() for y0, y1, x0, x1 in boxes)
    return float(inside / total)


LUNG_FIELDS = ((0.15, 0.85, 0.10, 0.42), (0.15, 0.85, 0.58, 0.90))
"""Two lateral boxes (rows y0..y1, cols x0..x1 as fractions) where a frontal film's lung fields
lie, leaving out the central strip (mediastinum, spine): 45% of the film's area."""


def heat_on_lung_fields(heat: np.ndarray, boxes=LUNG_FIELDS) -> float:
    """Fraction of the heat over the lung fields (not the mediastinum): a map that looks at the
    lungs puts more there than a uniform map would (the boxes' share of the area)."""
    return _share_in_boxes(heat, boxes)


def lung_field_area(boxes=LUNG_FIELDS) -> float:
    """The share of the film the lung-field boxes cover (a uniform map's heat_on_lung_fields)."""
    return float(sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes))
