"""Should this model read this image at all? Cheap checks on the pixels and the header,
then a learned one: how far the image embedding lies from the training films, inside a PCA
space of them (Mahalanobis distance) and outside it (the residual the PCA axes leave
unexplained); thresholds for both set on the validation split.

Outcomes: accept, warn (read it, but say why to doubt it), refuse (do not read it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pneumo.data.dicom_terms import view_kind


@dataclass
class Verdict:
    outcome: str = "accept"                    # accept | warn | refuse
    reasons: list[str] = field(default_factory=list)
    distance: float | None = None              # Mahalanobis distance, when measured
    residual: float | None = None              # the embedding's norm off the PCA axes, when measured
    refusals: list[str] = field(default_factory=list)   # the reasons that alone refuse

    def add(self, outcome: str, reason: str) -> None:
        rank = {"accept": 0, "warn": 1, "refuse": 2}
        if rank[outcome] > rank[self.outcome]:
            self.outcome = outcome
        self.reasons.append(reason)
        if outcome == "refuse":
            self.refusals.append(reason)


def cheap_checks(pixels: np.ndarray, meta, model_input: np.ndarray) -> Verdict:
    """Header and pixel statistics. `model_input` is the preprocessed (S, S, 1) image."""
    verdict = Verdict()
    if getattr(meta, "was_color", False) and getattr(meta, "color_spread", 0.0) > 0.04:
        verdict.add("refuse", "a colour image: radiographs are grayscale (a photograph?)")
    view = (getattr(meta, "view_position", None) or "").upper()
    if view_kind(view) in ("lateral", "oblique"):
        verdict.add("warn", f"view position {view} ({view_kind(view)}): the model was trained on frontal films")
    aspect = meta.width / max(meta.height, 1)
    if not 0.6 <= aspect <= 2.2:
        verdict.add("warn", f"unusual aspect ratio {aspect:.2f} for a chest film")
    x = model_input[..., 0]
    if float(x.std()) < 0.04:
        verdict.add("refuse", "almost no contrast: a blank or flat image")
    # Films are smooth at this scale; noise and text are not.
    roughness = float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())
    if roughness > 0.12:
        verdict.add("refuse", "the image is mostly fine-grained noise or text, not a radiograph")
    elif roughness > 0.07:
        verdict.add("warn", "unusually sharp texture for a chest film")
    return verdict


@dataclass
class EmbeddingGate:
    """Where an image embedding lies against the training films' embeddings, two ways:
    the Mahalanobis distance inside their k-axis PCA (an odd mix of familiar features), and the
    residual, the norm of the part those k axes do not explain (features no training film has:
    a photograph can sit near the films' mean inside the PCA and far outside it)."""
    mean: np.ndarray
    components: np.ndarray      # (k, D) PCA axes
    scales: np.ndarray          # (k,) sd along each axis
    warn_at: float
    refuse_at: float
    residual_warn_at: float = float("inf")      # inf: a reference written before the residual check
    residual_refuse_at: float = float("inf")

    @classmethod
    def fit(cls, train: np.ndarray, val: np.ndarray, *, k: int = 32,
            warn_quantile: float = 0.99, refuse_factor: float = 1.5) -> "EmbeddingGate":
        """PCA on train; for each score, warn above its val quantile and refuse beyond
        refuse_factor x its largest val value (no in-distribution val film would be refused)."""
        mean = train.mean(axis=0)
        centred = train - mean
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        k = min(k, vt.shape[0])
        scales = s[:k] / np.sqrt(max(len(train) - 1, 1)) + 1e-6
        gate = cls(mean, vt[:k], scales, 0.0, 0.0)
        d_val, r_val = gate.distance(val), gate.residual(val)
        gate.warn_at = float(np.quantile(d_val, warn_quantile))
        gate.refuse_at = float(d_val.max() * refuse_factor)
        gate.residual_warn_at = float(np.quantile(r_val, warn_quantile))
        gate.residual_refuse_at = float(r_val.max() * refuse_factor)
        return gate

    def distance(self, emb: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(emb) - self.mean) @ self.components.T / self.scales
        return np.sqrt((z ** 2).sum(axis=1))

    def residual(self, emb: np.ndarray) -> np.ndarray:
        centred = np.atleast_2d(emb) - self.mean
        return np.linalg.norm(centred - (centred @ self.components.T) @ self.components, axis=1)

    def judge(self, emb: np.ndarray, verdict: Verdict) -> Verdict:
        d, r = float(self.distance(emb)[0]), float(self.residual(emb)[0])
        verdict.distance, verdict.residual = d, r
        if d > self.refuse_at or r > self.residual_refuse_at:
            verdict.add("refuse", "this image is unlike the chest films the model was trained on")
        elif d > self.warn_at:
            verdict.add("warn", "unusual image for this model: interpret with care")
        elif r > self.residual_warn_at:
            verdict.add("warn", "this image has features the training films do not: interpret with care")
        return verdict

    def to_arrays(self) -> dict:
        return {"mean": self.mean, "components": self.components, "scales": self.scales,
                "thresholds": np.array([self.warn_at, self.refuse_at]),
                "residual_thresholds": np.array([self.residual_warn_at, self.residual_refuse_at])}

    @classmethod
    def from_arrays(cls, arrays) -> "EmbeddingGate":
        warn_at, refuse_at = (float(v) for v in arrays["thresholds"])
        residual = (float(v) for v in arrays["residual_thresholds"]) if "residual_thresholds" in arrays \
            else (float("inf"), float("inf"))
        return cls(arrays["mean"], arrays["components"], arrays["scales"], warn_at, refuse_at, *residual)
