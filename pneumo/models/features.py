"""What the fusion head reads, as plain arrays (no Keras): Features, modality dropout and the
one class weighting, shared by training, experiments and inference."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pneumo.errors import CohortError

VIEWS = ("fusion", "image_only", "labs_only")
"""What a case holds, the one vocabulary: film and labs, film only, labs only (Features.as_view)."""


@dataclass
class Features:
    """One batch of cases as the head sees them. labs: standardised, NaN or anything where
    lab_missing == 1; img_*: cached encoder embeddings (rows with image_present 0 are ignored)."""
    img_early: np.ndarray      # (n, C1) float32
    img_late: np.ndarray       # (n, C2) float32
    image_present: np.ndarray  # (n,) 0/1
    labs: np.ndarray           # (n, T) standardised
    lab_missing: np.ndarray    # (n, T) 0/1

    def __len__(self) -> int:
        return int(self.image_present.shape[0])

    def head_inputs(self) -> dict[str, np.ndarray]:
        """Arrays keyed by head input name: absent values zeroed (the mask carries them)."""
        m = self.lab_missing.astype("float32")
        pres = self.image_present.astype("float32").reshape(-1, 1)
        return {"img_early": np.nan_to_num(self.img_early.astype("float32")) * pres,
                "img_late": np.nan_to_num(self.img_late.astype("float32")) * pres,
                "image_present": pres,
                "labs": np.where(m > 0, 0.0, np.nan_to_num(self.labs)).astype("float32"),
                "lab_missing": m}

    def subset(self, idx) -> "Features":
        return Features(self.img_early[idx], self.img_late[idx], self.image_present[idx],
                        self.labs[idx], self.lab_missing[idx])

    def without_image(self) -> "Features":
        return replace(self, image_present=np.zeros_like(self.image_present))

    def without_labs(self) -> "Features":
        return replace(self, lab_missing=np.ones_like(self.lab_missing))

    def as_view(self, view: str) -> "Features":
        """These rows as a view of VIEWS sees them."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r} (one of {', '.join(VIEWS)})")
        return {"fusion": self, "image_only": self.without_labs(), "labs_only": self.without_image()}[view]


def modality_dropout(f: Features, rng: np.random.Generator, p_image: float = 0.2, p_labs: float = 0.2,
                     p_test: float = 0.1) -> Features:
    """Randomly drop the image, or the whole panel, or single tests (never both modalities)."""
    n = len(f)
    u = rng.random(n)
    drop_img = (u < p_image) & (f.lab_missing.min(axis=1) < 1)   # keep the image if the panel is empty anyway
    drop_labs = (u >= p_image) & (u < p_image + p_labs) & (f.image_present > 0)
    miss = f.lab_missing.astype("float32").copy()
    miss[drop_labs] = 1.0
    miss = np.maximum(miss, (rng.random(miss.shape) < p_test).astype("float32"))
    present = np.where(drop_img, 0.0, f.image_present).astype("float32")
    return replace(f, image_present=present, lab_missing=miss)


def class_weights(y: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights n / (2 n_c) (sklearn's "balanced"): both classes weigh n/2 in total."""
    y = np.asarray(y).astype(int)
    n, counts = len(y), np.bincount(y, minlength=2)
    if (counts == 0).any():
        raise CohortError(f"class weights need both classes in train, got counts {counts.tolist()}")
    return {c: float(n / (2.0 * counts[c])) for c in (0, 1)}
