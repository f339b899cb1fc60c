"""Build a bundle's reference set (pneumo.inference.reference_set reads it) from its own training
cohort: the embedding gate fitted on the training films, thresholds from the validation films.

    python -m pneumo reference --bundle models/pneumo-fusion
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumo import config
from pneumo.data.cohorts import kermany, mimic
from pneumo.data.image_cache import image_cache
from pneumo.inference.reference_set import REFERENCE_FILE, gate_features
from pneumo.inference.validity import EmbeddingGate
from pneumo.models.bundle import load_bundle, update_meta


def write_reference(bundle_dir, train_emb: np.ndarray, val_emb: np.ndarray,
                    background: np.ndarray) -> Path:
    """Fit the gate on gate_features of the training films (thresholds from the validation
    films), save it with the SHAP background, record the digest in bundle.json."""
    bundle_dir = Path(bundle_dir)
    gate = EmbeddingGate.fit(train_emb, val_emb)
    path = bundle_dir / REFERENCE_FILE
    np.savez(path, background=np.asarray(background, np.float32), **gate.to_arrays())
    update_meta(bundle_dir, verified_file=REFERENCE_FILE, reference={
        "gate": "Mahalanobis distance of [img_early, img_late] in a 32-axis PCA of the training films, "
                "and the residual norm off those axes; for each, warn above the 99th percentile of "
                "validation films, refuse beyond 1.5x the largest validation value",
        "warn_at": gate.warn_at, "refuse_at": gate.refuse_at,
        "residual_warn_at": gate.residual_warn_at, "residual_refuse_at": gate.residual_refuse_at,
        "n_train": int(len(train_emb)), "n_val": int(len(val_emb)), "shap_background": int(len(background))})
    return path


def build_for_bundle(bundle_dir, *, max_background: int = 100, seed: int = 0) -> Path:
    """Embed the Kermany train/val films with the bundle's encoder and take the SHAP
    background from the MIMIC train panels (the cohorts the shipped model was trained on)."""
    from pneumo.models.network import embed_images

    bundle = load_bundle(bundle_dir)
    cohort = kermany.load()
    frame = cohort.frame
    x = image_cache(frame["image_path"].tolist(), bundle.image_size,
                    config.cache_dir() / f"kermany_{bundle.image_size}.npz", log=lambda *_: None)
    emb = gate_features(*embed_images(bundle.image_encoder, x))
    train_emb = emb[(frame["split"] == "train").to_numpy()]
    val_emb = emb[(frame["split"] == "val").to_numpy()]
    labs = mimic.load()
    train = labs.frame[labs.frame["split"] == "train"]
    matrix = train[bundle.panel.keys].to_numpy(np.float32)
    rng = np.random.default_rng(seed)
    if len(matrix) > max_background:
        matrix = matrix[rng.choice(len(matrix), max_background, replace=False)]
    return write_reference(bundle_dir, train_emb, val_emb, matrix)
