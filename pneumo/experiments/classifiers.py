"""The classifiers an experiment swaps (fit / predict_proba on Features): the fusion head, its
single-modality views, late fusion and gradient boosting on the labs alone."""
from __future__ import annotations

from typing import Protocol

import keras
import numpy as np

from pneumo.models.features import Features, class_weights
from pneumo.models.network import _set_seed, build_fusion_head, predict_head
from pneumo.training.head_fit import fit_head


class Classifier(Protocol):
    """What experiments swap: learn in fit, score in predict_proba (P(pneumonia), shape (n,))."""
    def fit(self, X: Features, y: np.ndarray, X_val: Features | None = None,
            y_val: np.ndarray | None = None) -> "Classifier": ...
    def predict_proba(self, X: Features) -> np.ndarray: ...


class FusionClassifier:
    """The fusion head trained on cached image embeddings with modality dropout."""
    view = "fusion"   # which modalities the classifier sees: one of VIEWS

    def __init__(self, d_model: int = 32, heads: int = 4, layers_n: int = 1, fusion_units: int = 64,
                 dropout: float = 0.3, lr: float = 1e-3, epochs: int = 60, batch_size: int = 64,
                 patience: int = 8, class_weight: bool = True, modality_dropout: bool = True,
                 seed: int = 0, verbose: int = 0, log=None):
        self.params = dict(d_model=d_model, heads=heads, layers_n=layers_n, fusion_units=fusion_units,
                           dropout=dropout)
        self.lr, self.epochs, self.batch_size, self.patience = lr, epochs, batch_size, patience
        self.class_weight, self.modality_dropout, self.seed = class_weight, modality_dropout, seed
        self.verbose, self.log = verbose, log
        self.head: keras.Model | None = None
        self.history: list[dict] = []

    def _view(self, X: Features) -> Features:
        return X.as_view(self.view)

    def fit(self, X, y, X_val=None, y_val=None):
        _set_seed(self.seed)
        self.head = build_fusion_head(X.labs.shape[1], X.img_early.shape[1], X.img_late.shape[1], **self.params)
        self.history = fit_head(self.head, self._view(X), np.asarray(y), None if X_val is None else self._view(X_val),
                                None if y_val is None else np.asarray(y_val), lr=self.lr, epochs=self.epochs,
                                batch_size=self.batch_size, patience=self.patience,
                                class_weight=class_weights(np.asarray(y)) if self.class_weight else None,
                                modality_dropout=self.modality_dropout and self.view == "fusion",
                                seed=self.seed, log=self.log)
        return self

    def predict_proba(self, X):
        if self.head is None:
            raise RuntimeError("fit before predict_proba")
        return predict_head(self.head, self._view(X))


class ImageOnly(FusionClassifier):
    """Same MobileNetV2 features and head, the lab panel always absent."""
    view = "image_only"


class LabsOnly(FusionClassifier):
    """Same lab transformer and head, the image always absent."""
    view = "labs_only"


class LateFusion:
    """Mean of the image-only and labs-only probabilities."""

    def __init__(self, **kw):
        self.image, self.labs = ImageOnly(**kw), LabsOnly(**kw)

    def fit(self, X, y, X_val=None, y_val=None):
        self.image.fit(X, y, X_val, y_val)
        self.labs.fit(X, y, X_val, y_val)
        return self

    def predict_proba(self, X):
        return 0.5 * (self.image.predict_proba(X) + self.labs.predict_proba(X))


class GradientBoostingLabs:
    """sklearn HistGradientBoostingClassifier on lab values (NaN native for missing)."""

    def __init__(self, seed: int = 0, **kw):
        from sklearn.ensemble import HistGradientBoostingClassifier
        kw.setdefault("max_iter", 200)
        kw.setdefault("learning_rate", 0.05)
        kw.setdefault("early_stopping", True)
        self.clf = HistGradientBoostingClassifier(random_state=seed, class_weight="balanced", **kw)

    @staticmethod
    def _x(X: Features) -> np.ndarray:
        return np.where(X.lab_missing > 0, np.nan, X.labs).astype("float64")

    def fit(self, X, y, X_val=None, y_val=None):
        self.clf.fit(self._x(X), np.asarray(y).astype(int))
        return self

    def predict_proba(self, X):
        return self.clf.predict_proba(self._x(X))[:, 1]
