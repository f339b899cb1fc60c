"""Offline backbone initialisation: train the MobileNetV2 image classifier on Kermany TRAIN.

No ImageNet download here, so the image branch starts from a backbone trained image-only on
the patient-disjoint Kermany train split (never the carved val, never the official test).
Images go through pneumo.data.imaging.load_for_model (the one preprocessing path) once, into a
uint8 cache (cache/kermany_<size>.npz), then train with radiograph-safe augmentation.

    python -m pneumo pretrain --size 224 --alpha 0.35 --intensity equalize --epochs 14
    python -m pneumo pretrain --size 224 --intensity equalize --augment fov --lr 5e-4 --epochs 8 \
        --init cache/backbone/mobilenetv2_a0.35_224_equalize.weights.h5 --out FINETUNED.weights.h5

Long by design: the augmentation strengths, the two fits (films in memory, and streamed under a
tf.distribute strategy) and the one epoch loop they share are one recipe, read in one place.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from pneumo import config
from pneumo.data.cohorts import kermany
from pneumo.data.image_cache import CACHE_DIR, kermany_cache
from pneumo.errors import PneumoError
from pneumo.training import distribute as D
from pneumo.training.film_stream import films, stream_outputs, to_unit


def set_threads(n: int | None = None) -> None:
    """Keep TF to the cores we were given (config.tf_threads: PNEUMO_TF_THREADS, default 2): the
    machine is shared. Training and the experiments' grid both call this one."""
    try:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(int(n or config.tf_threads()))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except (ImportError, RuntimeError):
        pass   # no TensorFlow here, or already initialised: keep what is set


RECIPE_KEYS = ("backbone", "size", "alpha", "intensity", "augment", "mixup", "init", "freeze_before", "lr", "epochs",
               "seed")


def _recipe_suffix(augment: str, mixup: float, seed: int = 0) -> str:
    """The part of a cached backbone's name that says its augmentation and seed (empty for the defaults)."""
    return (("" if augment == "standard" else f"_{augment}") + (f"_mixup{mixup:g}" if mixup else "")
            + (f"_seed{seed}" if seed else ""))


def backbone_path(size: int, alpha: float, intensity: str = "none", augment: str = "standard",
                  mixup: float = 0.0, seed: int = 0, backbone: str = "mobilenetv2") -> Path:
    """Where a backbone of this recipe is cached; each non-default choice adds to the name."""
    suffix = ("" if intensity == "none" else f"_{intensity}") + _recipe_suffix(augment, mixup, seed)
    trunk = f"mobilenetv2_a{alpha:g}" if backbone == "mobilenetv2" else backbone
    return CACHE_DIR / "backbone" / f"{trunk}_{size}{suffix}.weights.h5"


def finetuned_path(base: str | Path, augment: str, mixup: float = 0.0, seed: int = 0) -> Path:
    """Where a backbone fine-tuned from `base` with this recipe is cached (beside the base)."""
    stem = Path(str(base)).name.removesuffix(".weights.h5")
    return Path(base).with_name(f"{stem}_then_{augment}{_recipe_suffix('standard', mixup, seed)}.weights.h5")


def backbone_info_path(weights: str | Path) -> Path:
    """x.weights.h5 -> x.json: the sidecar pretrain() writes beside a backbone."""
    return Path(str(weights).removesuffix(".weights.h5") + ".json")


def backbone_info(weights: str | Path) -> dict:
    """A saved backbone's sidecar (size, intensity, history, timings); {} when it has none."""
    info = backbone_info_path(weights)
    return json.loads(info.read_text()) if str(weights).endswith(".weights.h5") and info.is_file() else {}


def backbone_recipe(weights: str | Path, info: dict | None = None) -> dict:
    """How a saved backbone was trained, for a bundle's provenance: its recipe and that of the
    backbone it was fine-tuned from (no per-epoch history). info: its sidecar, if already read."""
    info = backbone_info(weights) if info is None else info
    out = {k: info[k] for k in RECIPE_KEYS + ("train_images", "train_seconds", "source") if k in info}
    if info.get("history"):
        out["epochs_run"] = len(info["history"])
        out["best_val_auc"] = max(h["val_auc"] for h in info["history"])
    if info.get("init_recipe"):
        out["init_recipe"] = info["init_recipe"]
    return out


def backbone_intensity(weights: str | Path) -> str:
    """The intensity mode a saved backbone was trained with ('none' before it was recorded)."""
    return backbone_info(weights).get("intensity", "none")


# Per augmentation strength: rotation (degrees), shift (fraction), zoom range (negative = in),
# and whether width zooms apart from height (aspect jitter). "fov" zooms in up to 40%: a film
# framed tightly on the lungs must not read as pneumonia (the 1.1.0 backbone made val normals
# cropped to 70% of their side read as pneumonia; pneumo.evaluation.robustness measures it).
# "fov_wide" also zooms out up to 25% into a black border (zoom_fill 0): a film framed wider than
# Kermany's, or shuttered, must not read as normal (1.2.0/1.3.0 lose sensitivity there).
AUG_STRENGTHS = {"standard": dict(degrees=7, shift=0.06, zoom=(-0.10, 0.10), aspect=False),
                 "strong": dict(degrees=10, shift=0.10, zoom=(-0.20, 0.20), aspect=False),
                 "fov": dict(degrees=10, shift=0.08, zoom=(-0.40, 0.10), aspect=True),
                 "fov_wide": dict(degrees=10, shift=0.08, zoom=(-0.40, 0.25), aspect=True, zoom_fill=0.0)}
AUG_STRENGTHS["acq"] = dict(AUG_STRENGTHS["fov_wide"], noise=(0.5, 0.05), blur=(0.3, 1.0))
# "acq" is fov_wide plus acquisition changes a film carries: on half the films Gaussian noise of sd
# drawn from U(0, 0.05) (1.3.0 reads noisy val normals as pneumonia: spec 0.94 -> 0.89 at sd 0.03),
# on 30% a Gaussian blur (sigma 1 px at 224) blended in by a U(0, 1) weight (a softer detector).
AUG_STRENGTHS["acq_jpeg"] = dict(AUG_STRENGTHS["acq"], resample=(0.4, 0.35, 1.0), sharpen=(0.25, 1.0),
                                 jpeg=(0.5, 15, 95))
# "acq_jpeg" adds what a file goes through before it reaches us: on 40% of batches a resolution drop
# (shrunk to 35-100% and back, per batch), on 25% of films an unsharp mask of up to weight 1 (a full-size
# original read down is crisper than the publisher's copies) and on half a JPEG round trip at q 15-95.


def augmenter(seed: int = 0, strength: str = "standard"):
    """Radiograph-safe augmentation: small rotation/shift, zoom, brightness/contrast. No horizontal
    flip: the cardiac silhouette and the side markers are lateralised, a flip makes a non-anatomy."""
    import keras
    from keras import layers
    if strength not in AUG_STRENGTHS:
        raise PneumoError(f"unknown augmentation strength {strength!r}: use one of {sorted(AUG_STRENGTHS)}")
    a = AUG_STRENGTHS[strength]
    return keras.Sequential([
        layers.RandomRotation(a["degrees"] / 360, fill_mode="nearest", seed=seed),
        layers.RandomTranslation(a["shift"], a["shift"], fill_mode="nearest", seed=seed + 1),
        layers.RandomZoom(a["zoom"], a["zoom"] if a["aspect"] else None, seed=seed + 2,
                          **({"fill_mode": "constant", "fill_value": a["zoom_fill"]} if "zoom_fill" in a
                             else {"fill_mode": "nearest"})),
        layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 3),
        layers.RandomContrast(0.15, seed=seed + 4),
    ], name="augment")


def _gaussian_kernel(sigma: float) -> np.ndarray:
    r = int(np.ceil(2.5 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k2 = np.outer(k, k) / np.outer(k, k).sum()
    return k2[:, :, None, None].astype("float32")


def acquisition(xb, strength: str):
    """The strength's acquisition changes (noise, blur) on a batch in [0, 1] (batch, h, w, 1); identity
    for strengths without them. Each film draws its own: applied or not, and how strong."""
    import tensorflow as tf
    a = AUG_STRENGTHS[strength]
    n = tf.shape(xb)[0]
    if "blur" in a:
        p, sigma = a["blur"]
        k = _gaussian_kernel(sigma)
        r = k.shape[0] // 2
        blurred = tf.nn.conv2d(tf.pad(xb, [[0, 0], [r, r], [r, r], [0, 0]], "REFLECT"), k, strides=1, padding="VALID")
        m = tf.cast(tf.random.uniform([n]) < p, tf.float32) * tf.random.uniform([n])
        xb = xb + m[:, None, None, None] * (blurred - xb)
    if "resample" in a:
        p, lo, hi = a["resample"]
        side = tf.cast(tf.cast(tf.shape(xb)[1], tf.float32) * tf.random.uniform([], lo, hi), tf.int32)
        small = tf.image.resize(tf.image.resize(xb, [side, side], antialias=True), tf.shape(xb)[1:3])
        xb = tf.where(tf.random.uniform([]) < p, small, xb)
    if "sharpen" in a:
        p, w_max = a["sharpen"]
        k = _gaussian_kernel(1.0)
        r = k.shape[0] // 2
        soft = tf.nn.conv2d(tf.pad(xb, [[0, 0], [r, r], [r, r], [0, 0]], "REFLECT"), k, strides=1, padding="VALID")
        w = tf.cast(tf.random.uniform([n]) < p, tf.float32) * tf.random.uniform([n], 0.0, w_max)
        xb = xb + w[:, None, None, None] * (xb - soft)
    if "noise" in a:
        p, sd_max = a["noise"]
        sd = tf.cast(tf.random.uniform([n]) < p, tf.float32) * tf.random.uniform([n], 0.0, sd_max)
        xb = xb + sd[:, None, None, None] * tf.random.normal(tf.shape(xb))
    if "jpeg" in a:
        p, q_lo, q_hi = a["jpeg"]
        xb = tf.clip_by_value(xb, 0.0, 1.0)
        quality = tf.random.uniform([n], q_lo, q_hi + 1, dtype=tf.int32)
        use = tf.random.uniform([n]) < p
        xb = tf.map_fn(lambda t: tf.where(t[2], tf.image.adjust_jpeg_quality(t[0], t[1]), t[0]),
                       (xb, quality, use), fn_output_signature=tf.float32)
    return xb


def _prep_fn(aug, strength: str, mixup: float):
    """Batch preparation: uint8 films -> [0, 1], augmented (aug: the augmenter, or None), labels
    one-hot; mixup > 0 blends each film with another of the batch (weight lam ~ Beta(mixup, mixup)),
    labels and sample weights alike."""
    import tensorflow as tf

    def prep(xb, yb, *w):
        xb = to_unit(xb)
        if aug is not None:
            xb = tf.clip_by_value(acquisition(aug(xb, training=True), strength), 0.0, 1.0)
        yb = tf.one_hot(yb, 2)
        if mixup > 0:
            xb, yb, w = _mix_batch(xb, yb, w, mixup)
        return (xb, yb) + tuple(w)
    return prep


def _dataset(x: np.ndarray, y: np.ndarray, batch: int, seed: int, augment: bool, weights: np.ndarray | None,
             strength: str = "standard", mixup: float = 0.0):
    """Batches of (image in [0, 1], one-hot label[, weight]) from films in memory."""
    import tensorflow as tf
    prep = _prep_fn(augmenter(seed, strength) if augment else None, strength, mixup)
    parts = (x, y.astype("int32")) + ((weights.astype("float32"),) if weights is not None else ())
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if augment:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).map(prep, num_parallel_calls=1).prefetch(2)


def _mix_batch(xb, yb, w: tuple, a: float):
    """Mixup within a batch: row i with row n-1-i, one lam ~ Beta(a, a) per row."""
    import tensorflow as tf
    g1, g2 = tf.random.gamma(tf.shape(xb)[:1], a), tf.random.gamma(tf.shape(xb)[:1], a)
    lam = g1 / (g1 + g2 + 1e-12)
    xm = lam[:, None, None, None] * xb + (1 - lam[:, None, None, None]) * tf.reverse(xb, [0])
    ym = lam[:, None] * yb + (1 - lam[:, None]) * tf.reverse(yb, [0])
    return xm, ym, tuple(lam * t + (1 - lam) * tf.reverse(t, [0]) for t in w)


def build_classifier(size: int, alpha: float, init: str | Path | None, intensity: str, dropout: float = 0.2,
                     backbone: str = "mobilenetv2", freeze_before: str | None = None):
    """The encoder and the image-only classifier trained on it (softmax over normal/pneumonia).
    init: a saved encoder, "imagenet" (the backbone's ImageNet start) or None (random)."""
    import keras

    from pneumo.models.network import build_image_encoder
    encoder = build_image_encoder(size, alpha, weights=str(init) if init else None, intensity=intensity,
                                  backbone=backbone, freeze_before=freeze_before)
    for layer in encoder.layers:   # Keras' 0.999 needs thousands of steps to settle: from scratch val scores stay constant
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    image = keras.Input((size, size, 1), name="image")
    _, late = encoder(image)
    probs = keras.layers.Dense(2, activation="softmax", name="probs")(
        keras.layers.Dropout(dropout, name="drop")(late))
    return encoder, keras.Model(image, probs, name="image_classifier")


def _class_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=2)
    return len(y) / (2.0 * counts)                      # ~3:1 pneumonia in Kermany train


def fit_backbone(x_train, y_train, x_val, y_val, *, size: int, alpha: float = 0.35, epochs: int = 24,
                 batch: int = 32, lr: float = 2e-3, patience: int = 8, max_minutes: float = 45.0,
                 seed: int = 0, intensity: str = "none", label_smoothing: float = 0.1,
                 augment: str = "standard", mixup: float = 0.0, init: str | Path | None = None,
                 backbone: str = "mobilenetv2", freeze_before: str | None = None, on_epoch=None, log=print):
    """Train encoder + softmax classifier on films in memory (uint8 arrays); keep the epoch with the
    best val ROC AUC; returns (encoder, history). The loop: train_epochs.
    Label smoothing keeps the from-scratch network from saturating on the easy train films.
    init: a saved encoder (.weights.h5) or "imagenet" to start from instead of random weights.
    on_epoch(encoder, history, best): after each epoch (best: this epoch is the best so far)."""
    import keras
    keras.utils.set_random_seed(seed)
    encoder, clf = build_classifier(size, alpha, init, intensity, backbone=backbone, freeze_before=freeze_before)
    clf.compile(optimizer=keras.optimizers.Adam(lr),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing))
    cw = _class_weights(y_train)
    train_ds = _dataset(x_train, y_train, batch, seed, True, cw[y_train], augment, mixup)
    val_x = x_val.astype("float32")[..., None] / 255.0
    history = train_epochs(clf, clf.optimizer, y_val, epochs=epochs, lr=lr, patience=patience, max_minutes=max_minutes,
                           run_epoch=lambda: float(clf.fit(train_ds, epochs=1, verbose=0).history["loss"][-1]),
                           val_probs=lambda: clf.predict(val_x, batch_size=128, verbose=0)[:, 1], log=log,
                           on_epoch=(lambda h, best: on_epoch(encoder, h, best)) if on_epoch else None)
    return encoder, history


@D.across_workers
def fit_backbone_films(train_paths, y_train, val_paths, y_val, *, dist, size: int, alpha: float = 0.35,
                       epochs: int = 24, batch: int = 32, lr: float = 2e-3, patience: int = 8,
                       max_minutes: float = 45.0, seed: int = 0, intensity: str = "none",
                       label_smoothing: float = 0.1, augment: str | None = "standard", mixup: float = 0.0,
                       init: str | Path | None = None, dropout: float = 0.2, backbone: str = "mobilenetv2",
                       freeze_before: str | None = None, on_epoch=None, log=print):
    """fit_backbone under a tf.distribute strategy (pneumo.training.distribute), films streamed from
    disk. batch: the global batch (split over every replica; the remainder of an epoch is dropped).
    augment None: no augmentation (with dropout 0, the run is the same on any layout; the tests' case)."""
    import keras
    keras.utils.set_random_seed(seed)
    with dist.strategy.scope():
        encoder, clf = build_classifier(size, alpha, init, intensity, dropout, backbone=backbone,
                                        freeze_before=freeze_before)
        optimizer = keras.optimizers.Adam(lr)
    D.prepare(dist, clf, optimizer)
    step = D.train_step_fn(dist, clf, optimizer, keras.losses.CategoricalCrossentropy(
        label_smoothing=label_smoothing, reduction=None))
    y_train = np.asarray(y_train).astype("int32")
    paths, cw = np.asarray(train_paths, dtype=str), _class_weights(y_train)
    prep = _prep_fn(augmenter(seed, augment) if augment else None, augment or "standard", mixup)
    rng = np.random.default_rng(seed)

    def rows(order, w, mine, per_replica):
        return (films(mine(paths[order]), size, mine(y_train[order]), mine(w))
                .batch(per_replica, drop_remainder=True).map(prep).prefetch(2))

    def run_epoch() -> float:
        return D.fit_epoch(dist, step, cw[y_train], batch, rng, False, rows)
    history = train_epochs(clf, optimizer, y_val, epochs=epochs, lr=lr, patience=patience, max_minutes=max_minutes,
                           run_epoch=run_epoch, val_probs=lambda: stream_outputs(clf, val_paths, size, 128)[0][:, 1],
                           log=log, on_epoch=(lambda h, best: on_epoch(encoder, h, best)) if on_epoch else None)
    return encoder, history


def train_epochs(clf, optimizer, y_val, *, epochs: int, lr: float, patience: int, max_minutes: float,
                 run_epoch, val_probs, log=print, on_epoch=None, loss_breaks_ties: bool = False) -> list[dict]:
    """The epochs of a backbone's training, however each is run: cosine decay from `lr` to lr/50
    (one epoch of linear warm-up), early stopping on val ROC AUC, the best epoch's weights kept.
    run_epoch() -> the epoch's train loss; val_probs() -> P(pneumonia) on the val films.
    loss_breaks_ties: an epoch that ties the best val ROC AUC (within 1e-4) with a lower val loss is
    the better one (a val set of 10 pneumonia films reaches AUC 1.0 within a few epochs)."""
    from sklearn.metrics import roc_auc_score
    best, best_auc, best_loss, bad, history, t0 = None, -1.0, np.inf, 0, [], time.time()
    for epoch in range(1, epochs + 1):
        te = time.time()
        cur_lr = cosine_lr(epoch, epochs, lr)
        optimizer.learning_rate.assign(cur_lr)
        loss = run_epoch()
        p = val_probs()
        auc = float(roc_auc_score(y_val, p))
        vloss = float(-np.mean(np.log(np.clip(np.where(y_val == 1, p, 1 - p), 1e-7, 1))))
        acc = float(np.mean((p >= 0.5) == y_val))
        improved = auc > best_auc + 1e-4 or (loss_breaks_ties and auc >= best_auc - 1e-4 and vloss < best_loss)
        row = dict(epoch=epoch, loss=loss, val_loss=vloss, val_auc=auc, val_acc=acc,
                   lr=cur_lr, seconds=round(time.time() - te, 1), improved=bool(improved))
        history.append(row)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        if improved:
            best_auc, best_loss, bad, best = max(auc, best_auc), vloss, 0, clf.get_weights()
        else:
            bad += 1
        if on_epoch is not None:
            on_epoch(history, improved)
        if bad >= patience:
            log(f"early stop: no val AUC gain for {patience} epochs")
            break
        if (time.time() - t0) / 60 > max_minutes:
            log(f"time budget of {max_minutes} min reached")
            break
    clf.set_weights(best)
    log(f"best val AUC {best_auc:.4f}; {time.time() - t0:.0f}s")
    return history


def kept_epoch(history: list[dict]) -> dict:
    """The epoch whose weights train_epochs kept: the last one that improved on the best so far."""
    return [row for row in history if row["improved"]][-1]


def stop_reason(history: list[dict], *, epochs: int, patience: int) -> str:
    """Why train_epochs stopped: "epochs" (all run), "patience" (early stopping) or "time budget"
    (max_minutes: then the result depends on the machine's speed)."""
    if len(history) >= epochs:
        return "epochs"
    return "patience" if len(history) - kept_epoch(history)["epoch"] >= patience else "time budget"


def cosine_lr(epoch: int, epochs: int, lr: float, floor: float = 0.02) -> float:
    """Epoch 1 warms up at lr/4; then cosine from lr down to floor*lr at the last epoch."""
    if epoch <= 1:
        return lr / 4
    t = (epoch - 2) / max(epochs - 2, 1)
    return float(lr * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * min(t, 1.0)))))


def pretrain(size: int = 224, alpha: float = 0.35, epochs: int = 24, max_minutes: float = 45.0,
             seed: int = 0, out: Path | None = None, intensity: str = "none", augment: str = "standard",
             mixup: float = 0.0, init: str | Path | None = None, lr: float = 2e-3, dist=None,
             backbone: str = "mobilenetv2", freeze_before: str | None = None, log=print) -> Path:
    """Pretrain on Kermany train (carved val for early stopping) and save the encoder weights.
    init: continue from a saved backbone (its intensity must match), or "imagenet" (the backbone's
    ImageNet start); lr: the peak learning rate. The best epoch so far is saved after every epoch
    (its sidecar says "complete": false until the run ends), so an interruption loses nothing.
    dist: a pneumo.training.distribute.Distribution: train under it, films streamed from disk
    (no image cache), and only its chief writes the weights."""
    set_threads()
    imagenet = str(init) == "imagenet"
    init_info = backbone_info(init) if init is not None and not imagenet else {}
    if init is not None and not imagenet and init_info.get("intensity", "none") != intensity:
        raise PneumoError(f"backbone {Path(init).name} was trained with intensity "
                          f"{init_info.get('intensity', 'none')!r}, not {intensity!r}")
    t0 = time.time()
    if dist is None:
        cohort, x = kermany_cache(size, log)
    else:
        cohort, x = kermany.load(), None
    t_cache = time.time() - t0
    split = cohort.frame["split"].to_numpy()
    y = cohort.frame["label"].to_numpy().astype(int)
    tr, va = split == "train", split == "val"
    log(f"pretrain on Kermany train: {tr.sum()} images ({np.bincount(y[tr]).tolist()} normal/pneumonia), "
        f"val {va.sum()}; test never read" + (f"; {dist.name}, {dist.replicas} replicas" if dist else ""))
    out = Path(out) if out else backbone_path(size, alpha, intensity, augment, mixup, seed, backbone)   # a seed never overwrites seed 0
    writes = dist is None or dist.is_chief

    def save(encoder, history, complete: bool) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        encoder.save_weights(str(out))
        start = _start_record(backbone) if imagenet else init_info.get("start")   # a fine-tune keeps its start
        meta = {"backbone": backbone, "size": size, "alpha": alpha, "intensity": intensity, "augment": augment,
                "mixup": mixup, "init": "imagenet" if imagenet else (Path(init).name if init else None),
                "init_recipe": {k: init_info.get(k) for k in RECIPE_KEYS} if init and not imagenet else None,
                **({"start": start} if start else {}), "freeze_before": freeze_before,
                "lr": lr, "epochs": epochs, "seed": seed, "train_images": int(tr.sum()), "val_images": int(va.sum()),
                "history": history, "complete": complete, "cache_seconds": round(t_cache, 1),
                "train_seconds": round(time.time() - t0 - t_cache, 1),
                "data": cohort.description.get("notes", ""), **({"distribution": dist.describe()} if dist else {})}
        backbone_info_path(out).write_text(json.dumps(meta, indent=1))

    def checkpoint(encoder, history, best: bool) -> None:
        if writes and best:      # the best epoch so far: what the finished run would keep
            save(encoder, history, complete=False)
    kw = dict(size=size, alpha=alpha, epochs=epochs, max_minutes=max_minutes, seed=seed, intensity=intensity,
              augment=augment, mixup=mixup, init=init, lr=lr, backbone=backbone, freeze_before=freeze_before,
              on_epoch=checkpoint, log=log)
    if dist is None:
        encoder, history = fit_backbone(x[tr], y[tr], x[va], y[va], **kw)
    else:
        paths = cohort.frame["image_path"].astype(str).to_numpy()
        encoder, history = fit_backbone_films(paths[tr], y[tr], paths[va], y[va], dist=dist, **kw)
    if not writes:
        return out
    save(encoder, history, complete=True)
    log(f"saved backbone {out}")
    return out


def _start_record(backbone: str) -> dict:
    """The converted ImageNet start's provenance (package, version, licence, sha256s), for the sidecar."""
    record = config.starts_dir() / f"{backbone}.json"
    if not record.is_file():
        raise PneumoError(f"no ImageNet start recorded for {backbone}: run `python -m pneumo import-start {backbone}`")
    return json.loads(record.read_text())
