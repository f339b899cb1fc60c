"""What every runtime of a bundle shares (the Keras one, pneumo.inference.runner, and the LiteRT
one, pneumo.inference.lite_runner): the bundle's figures, the validity gate, the SHAP background,
lab standardisation, calibration and the head's row plumbing. A runtime supplies three array calls:
_embed_batch, _probs and _member_probs. No TensorFlow here."""
from __future__ import annotations

import numpy as np

from pneumo.inference.intended_use import Population, read_film_check
from pneumo.inference.reference_set import gate_features, read_reference
from pneumo.models.bundle import WEIGHTS_FILE, read_metrics, views_of_inputs

HEAD_CHUNK = 1024
"""Rows per head call when one image's embeddings meet many lab rows (SHAP)."""
EMBED_BATCH = 64
"""Images per backbone call: bounds the activations' memory."""


class RunnerBase:
    runtime = "base"

    def __init__(self, bundle, early_dim: int, late_dim: int, n_members: int):
        self.bundle = bundle
        self.panel = bundle.panel
        self.threshold = float(bundle.threshold)
        self.image_size = int(bundle.image_size)
        self.name, self.version = bundle.name, bundle.version
        self.meta = bundle.meta
        self.metrics = read_metrics(bundle.path)
        # the validity gate and the SHAP background (n, T raw training panels, NaN = missing)
        self.gate, self.background = read_reference(bundle.path)
        self.population = Population.from_meta(self.meta)
        self.film_check = read_film_check(bundle.path)
        if self.background is None:   # a bundle without a reference set: the panel medians
            self.background = np.array([[t.impute_value() for t in self.panel]], np.float32)
        self.early_dim, self.late_dim, self.n_members = int(early_dim), int(late_dim), int(n_members)

    # --- what a runtime supplies ------------------------------------------------------
    def _embed_batch(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _probs(self, early, late, present, z, missing) -> np.ndarray:
        """(n, 2) softmax of the (mean) head."""
        raise NotImplementedError

    def _member_probs(self, early, late, present, z, missing) -> np.ndarray:
        """(members, n, 2) softmax of each seed member's head."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def judge(self, early: np.ndarray, late: np.ndarray, verdict):
        """Add the embedding gate's opinion of one image to a Verdict (no gate: unchanged)."""
        if self.gate is not None:
            self.gate.judge(gate_features(early, late), verdict)
        return verdict

    @property
    def grad_cam_runtime(self) -> str:
        """Where grad_cam runs: this runtime, unless it hands Grad-CAM to another."""
        return self.runtime

    def model_info(self) -> dict:
        return {"name": self.name, "version": self.version,
                "weights_sha256": self.meta["weights"][WEIGHTS_FILE]}

    def lab_inputs(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw values (n, T) with NaN = missing -> (standardised values, missing mask)."""
        return self.bundle.lab_inputs(matrix)

    def calibrate(self, p_raw: np.ndarray, views) -> np.ndarray:
        return self.bundle.calibrate(p_raw, views)

    def calibration_for(self, view: str) -> tuple[float, float]:
        return self.bundle.calibration_for(view)

    def predict_proba(self, images: np.ndarray | None, lab_values: np.ndarray | None, n: int | None = None,
                      calibrated: bool = True) -> np.ndarray:
        """Bundle.predict_proba's contract on this runtime, so evaluation code (robustness) runs on
        the fast graph: images (n,S,S,1) float [0,1] or None; lab_values (n,T) raw with NaN, or None."""
        n = n or (len(images) if images is not None else len(lab_values))
        if images is None:
            early, late = np.zeros((n, self.early_dim), np.float32), np.zeros((n, self.late_dim), np.float32)
        else:
            early, late = self.embed(np.asarray(images, np.float32).reshape(n, self.image_size, self.image_size, 1))
        labs = np.full((n, len(self.panel)), np.nan) if lab_values is None else lab_values
        inputs = self._head_inputs(early, late, np.full(n, 0.0 if images is None else 1.0), labs)
        p = self._probs(*inputs)[:, 1]
        return self.calibrate(p, views_of_inputs(inputs[2], inputs[4])) if calibrated else p.astype("float64")

    def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, S, S, 1) float [0,1] -> (early, late) embeddings; batches of EMBED_BATCH."""
        early, late = [], []
        for i in range(0, len(images), EMBED_BATCH):
            e, l = self._embed_batch(np.ascontiguousarray(images[i:i + EMBED_BATCH], np.float32))
            early.append(e)
            late.append(l)
        return np.concatenate(early), np.concatenate(late)

    def embed_with_trunk(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(early, late, the film trunk's features or None): None where the runtime's encoder does not
        give them, and the film check runs its own trunk."""
        return (*self.embed(images), None)

    def _head_inputs(self, early, late, present, labs_raw):
        present = np.asarray(present, np.float32).reshape(-1, 1)
        z, missing = self.lab_inputs(labs_raw)
        early = np.asarray(early, np.float32) * present
        late = np.asarray(late, np.float32) * present
        return early, late, present, z, missing

    def head(self, early, late, present, labs_raw) -> np.ndarray:
        """Calibrated P(pneumonia) for rows of (embeddings, image present, raw lab values)."""
        inputs = self._head_inputs(early, late, present, labs_raw)
        probs = self._probs(*inputs)
        return self.calibrate(probs[:, 1], views_of_inputs(inputs[2], inputs[4]))

    def member_probabilities(self, early, late, present, labs_raw) -> np.ndarray:
        """(members, n) calibrated P(pneumonia) of each seed member for the head's rows, each at
        the row's view temperature: how far the members agree, beside their mean."""
        inputs = self._head_inputs(early, late, present, labs_raw)
        probs = self._member_probs(*inputs)[..., 1]
        views = views_of_inputs(inputs[2], inputs[4])
        return np.stack([self.calibrate(p, views) for p in probs])

    def head_and_members(self, early, late, present, labs_raw) -> tuple[np.ndarray, np.ndarray]:
        """head() and member_probabilities() of the same rows; a runtime whose one graph gives
        both (LiteRT) answers them in one call."""
        inputs = self._head_inputs(early, late, present, labs_raw)
        views = views_of_inputs(inputs[2], inputs[4])
        probs, members = self._probs_and_members(*inputs)
        return (self.calibrate(probs[:, 1], views),
                np.stack([self.calibrate(p, views) for p in members[..., 1]]))

    def _probs_and_members(self, *inputs) -> tuple[np.ndarray, np.ndarray]:
        return self._probs(*inputs), self._member_probs(*inputs)

    def head_for_one_image(self, early, late, present: float, labs_raw: np.ndarray,
                           chunk: int = HEAD_CHUNK) -> np.ndarray:
        """head() for many lab rows (n, T) beside one image's embeddings (1, D), `chunk` rows at a
        time: SHAP asks for ~20,000 rows, and repeating a 3-member ensemble's embeddings that
        often would take ~600 MB at once; a chunk takes ~16 MB, with the same answers."""
        labs_raw = np.asarray(labs_raw, np.float32)
        out = []
        for i in range(0, len(labs_raw), chunk):
            rows = labs_raw[i:i + chunk]
            k = len(rows)
            out.append(self.head(np.repeat(early, k, 0), np.repeat(late, k, 0), np.full(k, present, np.float32), rows))
        return np.concatenate(out) if out else np.zeros(0, np.float32)
