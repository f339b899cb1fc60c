"""The paper's protocol: N runs x regimes (imbalanced, ADASYN, class weights) x models, one JSON.

`python -m pneumo experiment CONFIG [--out DIR] [--finetune]` (configs/paper.toml, configs/smoke.toml).

Protocol, per run (seed) and regime and model:
- the cohort is drawn once (cohort.seed): every run sees the same train/val/test cases, so runs
  differ only in training randomness (init, batches, ADASYN draws) and test cases are paired;
- image embeddings come from the frozen encoder, computed once (pneumo.experiments.embedding_cache);
  film.mode = "per_run" instead trains the film network per run from the ImageNet start on that run's
  train films, shared by the run's regimes (pneumo.experiments.film_per_run);
  --finetune instead trains the whole network end to end per fit (GPU advised; see _finetune);
- labs are standardised with train statistics; ADASYN (pneumo.experiments.balance) touches train only;
  class_weight = inverse-frequency class weights, no resampling; imbalanced = neither;
- the model is fitted on train with val for early stopping; the threshold is Youden's J on val;
- metrics on train (real train cases only, no synthetic rows) and on test, per-case test
  probabilities kept; CIs by the hierarchical bootstrap of pneumo.evaluation.bootstrap;
- late_fusion reuses the same cell's image_only and labs_only fits when both are in the grid
  (LateFusion is by definition their mean), which saves two fits per cell.

What the grid's runs become in the results file (means, bootstrap CIs, comparisons) is
pneumo.experiments.results_json.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pneumo import config
from pneumo.data.cohorts import kermany, manifest, mimic, paired, real_pairs, same_source, synthetic
from pneumo.data.cohorts.base import Cohort, _allocate
from pneumo.data.imaging import load_for_model
from pneumo.data.labs.standardisation import LabStandardisation
from pneumo.errors import PneumoError
from pneumo.evaluation import bootstrap as stats
from pneumo.experiments.balance import balance_train
from pneumo.experiments.config import ExperimentConfig
from pneumo.experiments.embedding_cache import EmbeddingCache
from pneumo.experiments.film_per_run import PerRunFilms
from pneumo.experiments.results_json import assemble, split_counts, write_results
from pneumo.experiments.variants import FROZEN_LINE, OFFICIAL_TEST, OFFICIAL_TEST_LINE
from pneumo.models.bundle import load_bundle
from pneumo.models.features import Features, class_weights
from pneumo.training.backbone import backbone_intensity

# ----------------------------------------------------------------------------- cohort
def build_cohort(cfg: ExperimentConfig, workdir: Path | None = None) -> Cohort:
    """The cohort the config names (drawn once, seeded by cohort.seed)."""
    spec = cfg.cohort
    if spec.source == "paired":
        # kermany's val carve stays at its default: the pretrained backbone's train split is then ours
        cohort = paired.pair(kermany.load(), mimic.load(seed=spec.seed), n_pos=spec.n_pos,
                             n_neg=spec.n_neg, preset=spec.preset, seed=spec.seed,
                             split_fractions=spec.split_fractions)
        cohort.description.update(variant=OFFICIAL_TEST, variant_line=OFFICIAL_TEST_LINE)
        return cohort
    if spec.source == "same-source":
        return same_source.draw(kermany.load(val_fraction=0.0), mimic.load(seed=spec.seed), release=spec.release,
                                n_pos=spec.n_pos, n_neg=spec.n_neg, preset=spec.preset, seed=spec.seed,
                                split_fractions=spec.split_fractions)
    if spec.source == "mimic-cxr":      # real pairs: no semi-real pairing anywhere in this path
        return real_pairs.load(spec.mimic_dir, spec.cxr_dir, seed=spec.seed, split_fractions=spec.split_fractions,
                               n_pos=spec.n_pos, n_neg=spec.n_neg, preset=spec.preset)
    if spec.source == "manifest":
        return manifest.load(spec.manifest, root=spec.root)
    folder = Path(workdir or config.cache_dir() / "synthetic") / f"n{spec.n}-s{spec.synthetic_image_size}-seed{spec.seed}"
    cohort = synthetic.make(spec.n, size=spec.synthetic_image_size, seed=spec.seed, tmpdir=folder)
    if spec.n_pos is not None or spec.n_neg is not None:
        cohort.frame = _subsample(cohort.frame, spec.n_pos, spec.n_neg)
        cohort.description = dict(cohort.description, subsampled={"n_pos": spec.n_pos, "n_neg": spec.n_neg})
    return cohort


def _subsample(frame: pd.DataFrame, n_pos: int | None, n_neg: int | None) -> pd.DataFrame:
    """Keep n_pos / n_neg cases per class, spread over the splits as the class already is."""
    parts = []
    for label, n in ((1, n_pos), (0, n_neg)):
        rows = frame[frame["label"] == label]
        if n is None:
            parts.append(rows)
            continue
        groups = [rows[rows["split"] == s] for s in ("train", "val", "test")]
        for g, k in zip(groups, _allocate(min(n, len(rows)), [len(g) for g in groups])):
            parts.append(g.iloc[:k])
    return pd.concat(parts).reset_index(drop=True)


# ----------------------------------------------------------------------------- encoder + features
def make_encoder(cfg: ExperimentConfig):
    """(encoder, description): the shipped bundle's encoder, a bundle folder's, or random (tests)."""
    from pneumo.models import network as pm
    weights = cfg.encoder.weights
    if weights == "random":
        pm._set_seed(cfg.seeds[0])
        return pm.build_image_encoder(cfg.image_size), {"weights": "random (untrained; tests only)"}
    if weights.endswith(".weights.h5"):
        intensity = backbone_intensity(weights)
        return (pm.build_image_encoder(cfg.image_size, weights=weights, intensity=intensity),
                {"weights": Path(weights).name, "intensity": intensity})
    bundle = load_bundle(None if weights == "bundle" else weights)
    meta = getattr(bundle, "meta", {}) or {}
    size = int(bundle.image_encoder.inputs[0].shape[1])
    if size != cfg.image_size:
        raise PneumoError(f"config image_size {cfg.image_size} != the bundle encoder's input size {size}")
    return bundle.image_encoder, {"weights": "bundle", "bundle": {k: meta.get(k) for k in ("name", "version", "weights_sha256")}}


def features(frame: pd.DataFrame, emb, std: LabStandardisation | None, lab_keys: list[str]):
    """model.Features for these rows: cached embeddings by image path, labs standardised."""
    n = len(frame)
    has_img = frame["image_path"].notna().to_numpy()
    early = np.zeros((n, emb.img_early.shape[1]), "float32")
    late = np.zeros((n, emb.img_late.shape[1]), "float32")
    if has_img.any():
        early[has_img], late[has_img] = emb.rows(frame.loc[has_img, "image_path"].astype(str).tolist())
    if lab_keys:
        labs, missing = std.inputs(frame[lab_keys].to_numpy(dtype=np.float64))
    else:
        labs, missing = np.zeros((n, 1)), np.ones((n, 1), "float32")
    return Features(early, late, has_img.astype("float32"), labs.astype("float32"), missing)


def make_model(name: str, regime: str, seed: int, train_kw: dict):
    """One classifier of the grid; class weights only under the class_weight regime."""
    from pneumo.experiments import classifiers as clf
    weighted = regime == "class_weight"
    if name == "gbm_labs":
        gbm = clf.GradientBoostingLabs(seed=seed, **train_kw.get("gbm", {}))
        gbm.clf.set_params(class_weight="balanced" if weighted else None)
        return gbm
    kw = {k: v for k, v in train_kw.items() if k != "gbm" and not k.startswith("finetune_")}
    cls = {"fusion": clf.FusionClassifier, "image_only": clf.ImageOnly, "labs_only": clf.LabsOnly,
           "late_fusion": clf.LateFusion}[name]
    return cls(seed=seed, class_weight=weighted, **kw)


# ----------------------------------------------------------------------------- the protocol
def run_experiment(cfg: ExperimentConfig, *, out_dir: str | os.PathLike | None = None, finetune: bool = False,
                   encoder=None, progress: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Run the whole grid, write <out_dir>/<name>.json; returns (results, path)."""
    t0 = time.perf_counter()
    finetune = finetune or cfg.finetune
    with tempfile.TemporaryDirectory(prefix="pneumo-exp-") as tmp:
        cohort = build_cohort(cfg, Path(tmp) if cfg.cohort.source == "synthetic" else None)
        frame, keys = cohort.frame.reset_index(drop=True), cohort.lab_keys
        _check_cohort(cfg, frame)
        progress(f"cohort {cohort.name}: " + ", ".join(f"{s} {c['1']}+{c['0']}" for s, c in split_counts(frame).items()))
        paths = frame.loc[frame["image_path"].notna(), "image_path"].astype(str).tolist()
        if cfg.film.mode == "per_run":
            emb = PerRunFilms.build(cfg.image_size, cfg.film, paths, cfg.encoder.batch_size, progress)
            t_embed = emb.maps.seconds
            progress(f"frozen stem maps: {emb.maps.computed} computed, {len(paths) - emb.maps.computed} from cache, "
                     f"{t_embed:.1f} s")
        else:
            enc_desc = {}
            if encoder is None:
                encoder, enc_desc = make_encoder(cfg)
            cache = EmbeddingCache(encoder, size=cfg.image_size, batch_size=cfg.encoder.batch_size)
            emb = cache.embed(paths, progress)
            progress(f"embeddings: {emb.computed} computed, {len(emb.paths) - emb.computed} from cache, {emb.seconds:.1f} s")
            t_embed = emb.seconds
            enc_desc = {"mode": "frozen", "line": FROZEN_LINE} | enc_desc | {"weights_sha256": cache.weights_sha}
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="openmp"):   # OpenMP spin-waits crawl on shared cores (gbm: 60 s -> 1 s)
            cells = _grid(cfg, frame, keys, emb, encoder, finetune, progress)
        if isinstance(emb, PerRunFilms):
            enc_desc = emb.describe()
    results = assemble(cfg, cohort, frame, cells, enc_desc, time.perf_counter() - t0, t_embed, finetune)
    return write_results(results, Path(out_dir) if out_dir is not None else config.results_dir(), cfg.name)


def _check_cohort(cfg: ExperimentConfig, frame: pd.DataFrame) -> None:
    counts = split_counts(frame)
    for split in ("train", "val", "test"):
        if min(counts[split].values()) < 1:
            raise PneumoError(f"the {split} split needs cases of both classes, has {counts[split]}")
    if counts["test"]["1"] < cfg.cohort.min_test_positives:
        raise PneumoError(f"the test split has {counts['test']['1']} pneumonia cases, fewer than "
                          f"cohort.min_test_positives = {cfg.cohort.min_test_positives}")


def _grid(cfg, frame, keys, emb_source, encoder, finetune, progress) -> dict:
    """Fit every (run, regime, model); returns {"cells": {(model, regime): [run dicts]}, ...}.
    A fitted model is kept as predict(split) -> P(pneumonia) for split in val / test / train.
    emb_source: the frozen encoder's Embeddings, or PerRunFilms (a film network trained per run on
    the train rows, its embeddings shared by the run's regimes)."""
    split = frame["split"].to_numpy()
    rows = {"train": frame[split == "train"], "val": frame[split == "val"], "test": frame[split == "test"]}
    std = LabStandardisation.fit(rows["train"][keys].to_numpy(np.float64), keys) if keys else None
    ys = {s: r["label"].to_numpy(int) for s, r in rows.items()}
    cells: dict = {(m, r): [] for m in cfg.models for r in cfg.regimes}
    total, step = cfg.runs * len(cfg.regimes) * len(cfg.models), 0
    for run, seed in enumerate(cfg.seeds):
        emb, film = emb_source, None
        if isinstance(emb_source, PerRunFilms):
            emb, film = emb_source.for_run(rows["train"], rows["val"], seed, progress)
        feats = {s: features(r, emb, std, keys) for s, r in rows.items()}
        for regime in cfg.regimes:
            balance_report, train = None, rows["train"]
            if regime == "adasyn":
                balanced, balance_report = balance_train(frame, keys, seed=seed)
                train = balanced[balanced["split"] == "train"].reset_index(drop=True)
            X_train, y_train = features(train, emb, std, keys), train["label"].to_numpy(int)
            fitted, epochs = {}, {}
            for name in cfg.models:
                step += 1
                t = time.perf_counter()
                if name == "late_fusion" and {"image_only", "labs_only"} <= fitted.keys():
                    predict = _mean_of(fitted["image_only"], fitted["labs_only"])
                elif finetune and name != "gbm_labs":
                    predict = _finetune(name, regime, seed, cfg, encoder, train, rows, std, keys)
                else:
                    model = make_model(name, regime, seed, cfg.train).fit(X_train, y_train, feats["val"], ys["val"])
                    predict = (lambda m: lambda s: m.predict_proba(feats[s]))(model)
                    epochs[name] = len(getattr(model, "history", None) or []) or None
                fitted[name] = predict
                p = {s: predict(s) for s in ("val", "test", "train")}
                threshold = stats.youden_threshold(ys["val"], p["val"])
                rec = {"seed": int(seed), "threshold": threshold,
                       "train": stats.point_metrics(ys["train"], p["train"], threshold),
                       "test": stats.point_metrics(ys["test"], p["test"], threshold),
                       "val": stats.point_metrics(ys["val"], p["val"], threshold),
                       "n_train": int(len(train)), "epochs": epochs.get(name),
                       "seconds": round(time.perf_counter() - t, 2), "p_test": p["test"]}
                if balance_report is not None:
                    rec["balance"] = balance_report
                if film is not None:
                    rec["film"] = film
                cells[(name, regime)].append(rec)
                m = rec["test"]
                progress(f"[{step:3d}/{total}] run {run + 1}/{cfg.runs} {regime:12s} {name:11s} test mcc {m['mcc']:.3f} "
                         f"pr_auc {m['pr_auc']:.3f} f1 {m['f1']:.3f} acc {m['accuracy']:.3f} ({rec['seconds']:.1f} s)")
    return {"cells": cells, "y_test": ys["test"], "test_frame": rows["test"]}


def _mean_of(a: Callable, b: Callable) -> Callable:
    return lambda s: 0.5 * (a(s) + b(s))


def _finetune(name, regime, seed, cfg, encoder, train, rows, std, keys) -> Callable:
    """End to end: a fresh copy of the encoder trained with a fresh head on decoded images
    (ADASYN rows use their base case's image). Slow on CPU (minutes per fit); meant for a GPU."""
    import keras

    from pneumo.models import network as pm
    if name == "late_fusion":
        parts = [_finetune(n, regime, seed, cfg, encoder, train, rows, std, keys) for n in ("image_only", "labs_only")]
        return _mean_of(*parts)
    view = {"image_only": "image", "labs_only": "labs"}.get(name, "fusion")

    def inputs(part: pd.DataFrame) -> dict:
        n = len(part)
        present = part["image_path"].notna().to_numpy().astype("float32") * (view != "labs")
        images = np.zeros((n, cfg.image_size, cfg.image_size, 1), "float32")
        for i, path in enumerate(part["image_path"]):
            if present[i]:
                images[i] = load_for_model(path, cfg.image_size)[0]
        labs, missing = std.inputs(part[keys].to_numpy(np.float64)) if keys else \
            (np.zeros((n, 1), "float32"), np.ones((n, 1), "float32"))
        if view == "image":   # the image-only baseline never sees a lab
            labs, missing = np.zeros_like(labs), np.ones_like(missing)
        return {"image": images, "image_present": present[:, None], "labs": labs, "lab_missing": missing}

    pm._set_seed(seed)
    enc = keras.models.clone_model(encoder)
    enc.set_weights(encoder.get_weights())
    net = pm.compile_for_training(pm.build_fusion_model(encoder=enc, n_tests=max(len(keys), 1)),
                                  lr=float(cfg.train.get("finetune_lr", 1e-4)))
    y_train, y_val = train["label"].to_numpy(int), rows["val"]["label"].to_numpy(int)
    onehot = np.eye(2, dtype="float32")
    stop = keras.callbacks.EarlyStopping(patience=int(cfg.train.get("patience", 8)), restore_best_weights=True)
    net.fit(inputs(train), onehot[y_train], validation_data=(inputs(rows["val"]), onehot[y_val]),
            class_weight=class_weights(y_train) if regime == "class_weight" else None,
            epochs=int(cfg.train.get("finetune_epochs", 20)), batch_size=16, callbacks=[stop], verbose=0)
    cached = {s: net.predict(inputs(r), verbose=0)[:, 1].astype("float64") for s, r in rows.items()}
    return lambda s: cached[s]
