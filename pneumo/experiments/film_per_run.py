"""The film network trained per run, from the ImageNet start, on that run's train films only.

The paper trained its film network (MobileNetV2) afresh in every run on the run's train split. Doing
that whole on 2 CPU cores is hours per grid, so the network is cut where the recipe freezes it anyway:

    image -> [stem: frozen ImageNet layers, everything before `freeze_before`] -> cut map (28x28x40 at 224)
          -> [tail: `freeze_before` onward, trained per run] -> img_late (GAP of out_relu)

- The stem's weights never change (frozen ImageNet start, BatchNorm in inference mode), so its output
  per film is the same in every run: it is computed once and cached on disk (EmbeddingCache keyed by
  the stem's weights sha256, the image size and the tag intensity + cut layer, which the weights do
  not say). img_early (block2_add, the stride-4 stage) lies inside the stem, so it is frozen ImageNet
  features in every run, as the shipped 2.0 recipe's early embedding is.
- Per run the tail is reset to its ImageNet-start weights and trained with a fresh softmax head on
  the cached maps of that run's train films only (class-weighted cross-entropy with label smoothing,
  cosine learning rate, early stopping on the run's val ROC AUC, a tie broken by the lower val loss,
  best epoch kept: training's own train_epochs). Films cannot be augmented after the stem, so the maps are translated by up to
  `shift` cells (8 px each at 224) per film and epoch instead. The test films are never read here.
- The trained tail then embeds every film of the cohort (img_late), and the fusion head and the
  baselines are fitted on those embeddings exactly as in the frozen variant.
- One film network per run, shared by the regimes: the regime (imbalanced / ADASYN / class weights)
  changes the fusion head's training rows, not the films the film network learns from (ADASYN's rows
  reuse their base case's film, so there is no new film to learn from). The film network is always
  class-weighted, as every backbone of the project is; the regimes differ in the head only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pneumo.errors import PneumoError
from pneumo.experiments.config import FilmSpec
from pneumo.experiments.embedding_cache import EmbeddingCache, Embeddings
from pneumo.training.backbone import _class_weights, kept_epoch, stop_reason, train_epochs


@dataclass
class FilmStart:
    """stem: image -> (img_early, cut map), frozen; tail: cut map -> img_late, trained per run;
    init: the tail's start weights, restored before every run."""

    stem: object
    tail: object
    init: list
    spec: FilmSpec
    size: int


def build_start(size: int, spec: FilmSpec, seed: int = 0) -> FilmStart:
    """The encoder of the recipe cut at spec.freeze_before into its frozen stem and trainable tail."""
    import keras

    from pneumo.models import network as pm
    keras.utils.set_random_seed(seed)      # only a "random" start (tests) depends on it
    encoder = pm.build_image_encoder(size, weights="imagenet" if spec.start == "imagenet" else None,
                                     intensity=spec.intensity, backbone=spec.backbone,
                                     freeze_before=spec.freeze_before)
    cut = encoder.get_layer(spec.freeze_before).input
    stem = keras.Model(encoder.input, [encoder.get_layer("img_early").output, cut], name="film_stem")
    tail = keras.Model(cut, encoder.get_layer("img_late").output, name="film_tail")
    if stem.trainable_weights:
        raise PneumoError(f"the stem before {spec.freeze_before} holds trainable weights: it cannot be cached")
    for layer in tail.layers:   # as training's build_classifier: 0.999 needs thousands of steps to settle
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return FilmStart(stem, tail, tail.get_weights(), spec, int(size))


def stem_maps(start: FilmStart, paths: list[str], batch_size: int = 32, progress=None) -> Embeddings:
    """img_early and the cut map of every film (img_late here holds the map), from the disk cache."""
    tag = f"stem-{start.spec.backbone}-{start.spec.intensity}-{start.spec.freeze_before}"
    cache = EmbeddingCache(start.stem, size=start.size, batch_size=batch_size, tag=tag)
    maps = cache.embed(paths, progress)
    maps.weights_sha = cache.weights_sha
    return maps


def _dataset(maps: np.ndarray, y: np.ndarray, weights: np.ndarray, batch: int, seed: int, shift: int):
    import tensorflow as tf
    onehot = np.eye(2, dtype="float32")[y]
    shape = maps.shape[1:]

    def move(x, t, w):
        if shift:
            pad = tf.pad(x, [[shift, shift], [shift, shift], [0, 0]], mode="SYMMETRIC")
            x = tf.image.random_crop(pad, shape, seed=seed)
        return x, t, w
    ds = tf.data.Dataset.from_tensor_slices((maps, onehot, weights.astype("float32")))
    return ds.shuffle(len(maps), seed=seed, reshuffle_each_iteration=True).map(move).batch(batch).prefetch(2)


def _predict(model, maps: np.ndarray, batch: int = 128) -> np.ndarray:
    out = [np.asarray(model(maps[i:i + batch], training=False)) for i in range(0, len(maps), batch)]
    return np.concatenate(out)


def fit_film_network(start: FilmStart, maps: Embeddings, train_paths, y_train, val_paths, y_val, *,
                     seed: int, log=print) -> tuple[object, list[dict]]:
    """Reset the tail to its start, train it with a fresh softmax head on these train films' maps,
    early-stopped on these val films; returns (classifier, history). Only the paths given are read."""
    import keras

    spec = start.spec
    y_train, y_val = np.asarray(y_train, int), np.asarray(y_val, int)
    x_train, x_val = maps.rows(train_paths)[1], maps.rows(val_paths)[1]
    keras.utils.set_random_seed(seed)
    start.tail.set_weights(start.init)
    inp = keras.Input(x_train.shape[1:], name="cut_map")
    late = start.tail(inp)
    probs = keras.layers.Dense(2, activation="softmax", name="probs")(keras.layers.Dropout(spec.dropout)(late))
    clf = keras.Model(inp, probs, name="film_classifier")
    clf.compile(optimizer=keras.optimizers.Adam(spec.lr),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=spec.label_smoothing))
    ds = _dataset(x_train, y_train, _class_weights(y_train)[y_train], spec.batch_size, seed, spec.shift)
    history = train_epochs(clf, clf.optimizer, y_val, epochs=spec.epochs, lr=spec.lr, patience=spec.patience,
                           max_minutes=spec.max_minutes,
                           run_epoch=lambda: float(clf.fit(ds, epochs=1, verbose=0).history["loss"][-1]),
                           val_probs=lambda: _predict(clf, x_val)[:, 1], log=log,
                           loss_breaks_ties=True)    # 10 val pneumonia films: AUC 1.0 by epoch 2-3 in every run
    return clf, history


class PerRunFilms:
    """The frozen stem's maps of every film (cached once) and, per run, the film embeddings of a
    tail trained on that run's train films: `for_run(train_rows, val_rows, seed)`."""

    def __init__(self, start: FilmStart, maps: Embeddings):
        self.start, self.maps, self.runs = start, maps, []

    @classmethod
    def build(cls, size: int, spec: FilmSpec, paths: list[str], batch_size: int = 32, progress=print):
        start = build_start(size, spec)
        return cls(start, stem_maps(start, paths, batch_size, progress))

    def for_run(self, train: pd.DataFrame, val: pd.DataFrame, seed: int, progress=print) -> tuple[Embeddings, dict]:
        """Train the film network on `train`'s films (val for early stopping) and embed every film."""
        t0 = time.perf_counter()
        tr = train.drop_duplicates("image_path")
        va = val.drop_duplicates("image_path")
        def log(line: str) -> None:     # one short line per epoch: a run is minutes long
            if line.startswith("epoch="):
                progress("  film " + " ".join(w for w in line.split() if w.split("=")[0] in ("epoch", "loss", "val_auc", "seconds")))
        _, history = fit_film_network(self.start, self.maps, tr["image_path"].tolist(), tr["label"].to_numpy(int),
                                      va["image_path"].tolist(), va["label"].to_numpy(int), seed=seed, log=log)
        late = _predict(self.start.tail, self.maps.img_late).astype("float32")
        best, spec = kept_epoch(history), self.start.spec
        record = {"seed": int(seed), "train_films": int(len(tr)), "val_films": int(len(va)),
                  "epochs_run": len(history), "best_epoch": int(best["epoch"]),
                  "best_val_auc": round(float(best["val_auc"]), 4),
                  "best_val_loss": round(float(best["val_loss"]), 4),
                  "stopped_by": stop_reason(history, epochs=spec.epochs, patience=spec.patience),
                  "seconds": round(time.perf_counter() - t0, 1)}
        self.runs.append(record)
        if record["stopped_by"] == "time budget":   # the epochs run then depend on the machine's speed
            progress(f"warning: film network, seed {seed}, stopped by the {spec.max_minutes} min budget: "
                     "this run will not reproduce on a faster or slower machine")
        progress(f"film network, seed {seed}: {record['train_films']} train films, {record['epochs_run']} epochs, "
                 f"best val AUC {record['best_val_auc']:.3f} at epoch {record['best_epoch']} ({record['seconds']:.0f} s)")
        return Embeddings(self.maps.paths, self.maps.img_early, late, 0, 0.0), record

    def describe(self) -> dict:
        spec = self.start.spec
        return {"mode": "per_run",
                "line": (f"film network trained per run from the ImageNet start ({spec.backbone}, layers before "
                         f"{spec.freeze_before} frozen) on that run's train films only"),
                "weights": f"{spec.backbone} {spec.start} start", "intensity": spec.intensity,
                "stem_weights_sha256": self.maps.weights_sha, "stem_seconds": round(self.maps.seconds, 1),
                "film_seconds": round(sum(r["seconds"] for r in self.runs), 1), "runs": self.runs,
                "recipe": {k: getattr(spec, k) for k in spec.__dataclass_fields__}}
