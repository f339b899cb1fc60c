"""Display names of the models, of what a case holds and of the training regimes: the one table
every page, report, log and paper table takes them from (keys: features.VIEWS, the experiments'
model kinds and regimes)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelName:
    legend: str        # the metrics page and its charts: 'Fusion (image + labs)'
    paper: str         # beside the paper's rows, in its words: 'Intermediate fusion (CXR + labs)'
    holds: str = ""    # what a case read by this view holds, as a table cell: 'film + labs'
    words: str = ""    # the same inside a sentence: 'film and labs'


MODEL_NAMES = {
    "fusion": ModelName("Fusion (image + labs)", "Intermediate fusion (CXR + labs)", "film + labs", "film and labs"),
    "image_only": ModelName("Image only", "Single modality CXR", "film only", "film only"),
    "labs_only": ModelName("Labs only", "Single modality labs", "labs only", "labs only"),
    "late_fusion": ModelName("Late fusion", "Late fusion (CXR + labs)"),
    "gbm_labs": ModelName("GBM on labs", "Gradient boosting, labs"),
}


REGIME_NAMES = {   # (legend, the paper's wording)
    "imbalanced": ("imbalanced", "imbalanced"),
    "adasyn": ("ADASYN-balanced", "balanced (ADASYN)"),
    "class_weight": ("class-weighted", "class-weighted"),
    "shipped": ("shipped bundle", "shipped bundle"),
}


def model_name(key: str, *, paper: bool = False) -> str:
    """A model kind's display name (the paper's wording with paper=True); an unknown kind, readable."""
    name = MODEL_NAMES.get(key)
    if name is None:
        return key.replace("_", " ")
    return name.paper if paper else name.legend


def regime_name(key: str, *, paper: bool = False) -> str:
    """A training regime's display name (the paper's wording with paper=True); an unknown one as it is."""
    names = REGIME_NAMES.get(key)
    return key if names is None else names[1] if paper else names[0]


def inputs_words(image: bool, labs: bool) -> str:
    """What a case held, in a sentence: 'film and labs' | 'film only' | 'labs only' | 'none'."""
    view = "fusion" if image and labs else "image_only" if image else "labs_only" if labs else None
    return MODEL_NAMES[view].words if view else "none"
