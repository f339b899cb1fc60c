"""The one loop that trains a fusion head on cached embeddings (modality dropout, class weights,
early stopping on validation), used by training and by the experiments' classifiers."""
from __future__ import annotations

import time

import keras
import numpy as np

from pneumo.evaluation import metrics as M
from pneumo.models.features import VIEWS, Features, modality_dropout
from pneumo.models.network import HEAD_INPUT_NAMES, predict_head
from pneumo.training import distribute as D


def _log_loss(y, p) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_head(head, X: Features | list[Features], y, X_val=None, y_val=None, *, lr=1e-3, epochs=60, batch_size=64,
             patience=8, class_weight=None, modality_dropout=True, lab_noise=0.3, seed=0, dist=None,
             log=None) -> list[dict]:
    """Train the head on cached embeddings; fresh modality dropout each epoch; early stopping on
    the val log loss averaged over the views the model must answer (full, image only, labs only).
    X may be a list of variants of the same rows (augmented image embeddings): each epoch draws one per row.
    lab_noise: sd of Gaussian noise on standardised lab values, because a semi-real cohort reuses a
    few panels per class and the head would otherwise memorise them instead of reading the values.
    dist: a pneumo.training.distribute.Distribution the head was built under: each epoch runs the
    distributed step over a seeded shuffle (batch_size is the global batch; the last one is padded
    with rows of weight 0), in place of Keras' fit."""
    if dist is None:
        head.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy")
    else:
        run_fit = _distributed_fit(head, lr, batch_size, dist)
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(int)
    sw = np.ones(len(y), "float32") if class_weight is None else np.array([class_weight[c] for c in y], "float32")
    views = list(VIEWS) if modality_dropout else ["fusion"]
    best, best_loss, bad, history = head.get_weights(), np.inf, 0, []
    for epoch in range(1, epochs + 1):
        t = time.time()
        Xe = _mix(X, rng) if isinstance(X, list) else X
        Xe = modality_dropout_fn(Xe, rng, p_test=0.15) if modality_dropout else Xe
        if lab_noise:
            Xe = Features(Xe.img_early, Xe.img_late, Xe.image_present,
                          Xe.labs + rng.normal(0, lab_noise, Xe.labs.shape).astype("float32"), Xe.lab_missing)
        inputs = Xe.head_inputs()
        arrays = [inputs[k] for k in HEAD_INPUT_NAMES]
        if dist is None:
            loss = head.fit(arrays, np.eye(2)[y], sample_weight=sw, batch_size=batch_size, epochs=1, shuffle=True,
                            verbose=0).history["loss"][-1]
        else:
            loss = run_fit(arrays, y, sw, rng)
        row = {"epoch": epoch, "loss": float(loss)}
        if X_val is not None:
            yv = np.asarray(y_val).astype(int)
            losses = [_log_loss(yv, predict_head(head, X_val.as_view(view))) for view in views]
            row["val_loss"] = float(np.mean(losses))
            row["val_auc"] = M.metric_fn("roc_auc")(yv, predict_head(head, X_val))
            if row["val_loss"] < best_loss - 1e-4:
                best_loss, bad, best = row["val_loss"], 0, head.get_weights()
            else:
                bad += 1
        row["seconds"] = round(time.time() - t, 2)
        history.append(row)
        if log:
            log("head " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        if X_val is not None and bad >= patience:
            break
    if X_val is not None:
        head.set_weights(best)
    return history


def _distributed_fit(head, lr: float, batch_size: int, dist):
    """One epoch of the head under `dist`: (arrays, y, sample weights, rng) -> the epoch's loss."""
    import tensorflow as tf
    with dist.strategy.scope():
        optimizer = keras.optimizers.Adam(lr)
    D.prepare(dist, head, optimizer)
    step = D.train_step_fn(dist, head, optimizer, keras.losses.CategoricalCrossentropy(reduction=None))

    def run(arrays, y, sw, rng) -> float:
        def rows(order, w, mine, per_replica):
            onehot = np.eye(2, dtype="float32")[y[order]]
            return tf.data.Dataset.from_tensor_slices(
                (tuple(mine(a[order]) for a in arrays), mine(onehot), mine(w))).batch(per_replica, drop_remainder=True)
        return D.fit_epoch(dist, step, sw, batch_size, rng, True, rows)
    return run


modality_dropout_fn = modality_dropout   # the parameter of fit_head shadows the function's name


def _mix(variants: list[Features], rng) -> Features:
    pick = rng.integers(0, len(variants), len(variants[0]))
    early = np.stack([v.img_early for v in variants])[pick, np.arange(len(pick))]
    late = np.stack([v.img_late for v in variants])[pick, np.arange(len(pick))]
    f = variants[0]
    return Features(early, late, f.image_present, f.labs, f.lab_missing)
