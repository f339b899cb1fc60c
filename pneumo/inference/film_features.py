"""What the film check reads from the model input itself: the film's shape, not its source.

The image embedding of the pneumonia encoder tells one hospital's films from another's far better
than an adult's from a child's (leaving one adult source out, a check on it flagged 5-13% of the
left-out adults); the histogram-equalised film at 64 px, as gradient orientations (HOG: ribs,
clavicles, the heart's and the diaphragm's outline) and a 16 px thumbnail, carries over better."""
from __future__ import annotations

import numpy as np
from PIL import Image

FEATURES = "film-hog64+thumb16"


def film_features(model_inputs) -> np.ndarray:
    """(n, S, S[, 1]) or (S, S[, 1]) float [0, 1] or uint8 model inputs -> (n, 2020) float64."""
    from skimage.exposure import equalize_hist
    from skimage.feature import hog

    x = np.asarray(model_inputs)
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] == 1 and x.shape[0] == x.shape[1]):
        x = x[None]
    if x.ndim == 4:
        x = x[..., 0]
    if x.dtype != np.uint8:
        x = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    out = []
    for a in x:
        s = equalize_hist(np.asarray(Image.fromarray(a).resize((64, 64), Image.BILINEAR), np.float64) / 255)
        h = hog(s, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), feature_vector=True)
        thumb = np.asarray(Image.fromarray((s * 255).astype(np.uint8)).resize((16, 16), Image.BILINEAR), np.float64)
        out.append(np.r_[h, thumb.ravel() / 255])
    return np.array(out, np.float64)
