"""What the film check reads from the model input itself: the film's shape, not its source.

The image embedding of the pneumonia encoder tells one hospital's films from another's far better
than an adult's from a child's (leaving one adult source out, a check on it flagged 5-13% of the
left-out adults); the histogram-equalised film at 64 px, as gradient orientations (HOG: ribs,
clavicles, the heart's and the diaphragm's outline) and a 16 px thumbnail, carries over better."""
from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from pneumo.inference.native_stderr import native_stderr_silenced
from pneumo.models.runtime import TRUNK_FILE, TRUNK_KINDS, TRUNK_OUTPUT, LiteGraph, equalize  # noqa: F401  (TRUNK_FILE: for callers)

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


class FilmTrunk:
    """The bundle's film trunk graph (LiteRT, no TensorFlow): model inputs -> {kind: features}.
    Opened on first use: a 2.0 encoder gives the same maps itself, so most processes never need it."""

    def __init__(self, path, threads: int = 1):
        self._path, self._threads, self._graph, self._lock = path, threads, None, threading.Lock()

    def _opened(self) -> LiteGraph:
        with self._lock:                    # one Predictor serves every app session
            if self._graph is None:
                with native_stderr_silenced():      # XNNPACK's "Created delegate" line: the CLI owes one line on stderr
                    self._graph = LiteGraph(self._path, {TRUNK_OUTPUT: _output_name(self._path)}, self._threads)
            return self._graph

    def __call__(self, model_inputs) -> dict:
        """(n, S, S[, 1]) or (S, S[, 1]) float [0, 1] or uint8 -> {kind: (n, d) float64}."""
        x = np.asarray(model_inputs)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] == 1 and x.shape[0] == x.shape[1]):
            x = x[None]
        if x.ndim == 3:
            x = x[..., None]
        graph = self._opened()
        out = np.concatenate([graph.run({"image": equalize(x[i:i + 64])})[TRUNK_OUTPUT]
                              for i in range(0, len(x), 64)]).astype(np.float64)
        return {k: out[:, a:b] for k, (a, b) in TRUNK_KINDS.items()}


def _output_name(path) -> str:
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_path=str(path)).get_output_details()[0]["name"]
