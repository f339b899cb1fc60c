"""A trained model as a folder: weights + bundle.json (everything needed to use it) + metrics.json.

Weights are saved weights-only (`model.weights.h5`, no optimizer state) and the model is
rebuilt from bundle.json["architecture"] by pneumo.models.network: loads in ~2 s on a CPU, cannot carry
stale training state, and a file from another architecture fails loudly on load. The sha256 of
every weights file is recorded and verified before Keras touches it."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pneumo import config
from pneumo.data.labs.panel import LabPanel
from pneumo.data.labs.standardisation import LabStandardisation
from pneumo.errors import BundleError, LabError
from pneumo.models.calibration import apply_temperature
from pneumo.models.features import VIEWS

FORMAT = "pneumo-bundle/1"
WEIGHTS_FILE = "model.weights.h5"
REQUIRED_KEYS = ("format", "name", "version", "created", "image_size", "architecture", "preprocessing",
                 "lab_panel", "lab_standardisation", "threshold", "threshold_rule", "temperature",
                 "training_data", "weights", "views")
ARCH_KEYS = ("kind", "image_size", "alpha", "n_tests", "head")
PREPROCESSING = ("pneumo.data.imaging.load_for_model: read as grayscale float [0,1], squash-resize the whole "
                 "image to {s}x{s} (aspect not kept, PIL bilinear antialiased), 1 channel; in-model: "
                 "{eq}gray repeated to 3 channels and scaled to [-1,1]")
EQUALIZE_STEP = "per-film histogram equalisation (layer 'equalize'), then "


def preprocessing_text(size: int, intensity: str = "none") -> str:
    return PREPROCESSING.format(s=size, eq=EQUALIZE_STEP if intensity == "equalize" else "")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def view_of(has_image, has_labs) -> np.ndarray:
    """Per row, the view a case is scored under: fusion (film and labs), image_only, labs_only;
    a row with neither is calibrated as fusion (the baseline of the modality split)."""
    has_image, has_labs = np.asarray(has_image, bool), np.asarray(has_labs, bool)
    return np.where(has_image & ~has_labs, "image_only", np.where(~has_image & has_labs, "labs_only", "fusion"))


def views_of_inputs(present, missing) -> np.ndarray:
    """view_of for model inputs: image_present (n,) or (n, 1), lab_missing mask (n, T), 1 = missing."""
    return view_of(np.ravel(present) > 0, (np.asarray(missing) < 1).any(axis=1))


@dataclass
class Bundle:
    path: Path
    model: object                      # keras.Model (None: opened without Keras, open_bundle), inputs {image, image_present, labs, lab_missing}
    meta: dict
    panel: LabPanel
    standardisation: LabStandardisation = field(repr=False)
    _forward: object = field(default=None, init=False, repr=False, compare=False)   # predict_proba's traced call

    name = property(lambda self: self.meta["name"])
    version = property(lambda self: self.meta["version"])
    threshold = property(lambda self: float(self.meta["threshold"]))
    temperature = property(lambda self: float(self.meta["temperature"]))
    image_size = property(lambda self: int(self.meta["image_size"]))

    @property
    def image_encoder(self):
        return self.model.get_layer("image_encoder")

    @property
    def fusion_head(self):
        return self.model.get_layer("fusion_head")

    def lab_inputs(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw lab values (n, T) in panel units, NaN = missing -> (standardised, missing 0/1)."""
        return self.standardisation.inputs(values)

    def calibration_for(self, view: str) -> tuple[float, float]:
        """(temperature, threshold) fitted on val for a view: fusion | image_only | labs_only."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r} (one of {', '.join(VIEWS)})")
        v = self.meta["views"][view]      # read_meta checked every view is there
        return float(v["temperature"]), float(v["threshold"])

    def calibrate(self, p_raw, views) -> np.ndarray:
        """Temperature-scaled P(pneumonia). views: one view name per row (fusion | image_only |
        labs_only), each row scaled by its own view's validation temperature."""
        p_raw = np.asarray(p_raw, np.float64)
        out = np.empty_like(p_raw)
        views = np.asarray(views)
        for view in set(views.tolist()):
            rows = views == view
            out[rows] = apply_temperature(p_raw[rows], self.calibration_for(view)[0])
        return out

    def predict_proba(self, images: np.ndarray | None, lab_values: np.ndarray | None, n: int | None = None,
                      calibrated: bool = True) -> np.ndarray:
        """P(pneumonia) for n cases: images (n,S,S,1) float [0,1] or None (absent); lab_values
        (n,T) raw with NaN, or None (panel absent)."""
        n = n or (len(images) if images is not None else len(lab_values))
        s = self.image_size
        img = np.zeros((n, s, s, 1), "float32") if images is None else np.asarray(images, "float32").reshape(n, s, s, 1)
        present = np.full((n, 1), 0.0 if images is None else 1.0, "float32")
        labs = np.full((n, len(self.panel)), np.nan) if lab_values is None else lab_values
        z, m = self.lab_inputs(labs)
        p = self._softmax({"image": img, "image_present": present, "labs": z, "lab_missing": m})[:, 1]
        return self.calibrate(p, views_of_inputs(present, m)) if calibrated else p.astype("float64")

    def _softmax(self, inputs: dict, batch: int = 64) -> np.ndarray:
        """The model's output in batches through one traced call for any batch size: Keras'
        predict() costs ~0.1 s a call and retraces for every new number of rows."""
        import tensorflow as tf
        if self._forward is None:
            s, t = self.image_size, len(self.panel)
            shapes = {"image": (None, s, s, 1), "image_present": (None, 1), "labs": (None, t), "lab_missing": (None, t)}
            model = self.model
            self._forward = tf.function(lambda x: model(x, training=False),
                                        input_signature=[{k: tf.TensorSpec(v, tf.float32) for k, v in shapes.items()}])
        n = len(inputs["image"])
        parts = [self._forward({k: np.asarray(v[i:i + batch], "float32") for k, v in inputs.items()}).numpy()
                 for i in range(0, n, batch)]
        return np.concatenate(parts) if parts else np.zeros((0, 2), "float32")


def save_bundle(directory: str | os.PathLike, model, meta: dict, metrics: dict | None = None) -> Path:
    """Write weights + bundle.json (+ metrics.json). meta must hold the REQUIRED_KEYS except
    format/created/weights/preprocessing, which are filled in here."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    meta.setdefault("format", FORMAT)
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("preprocessing", preprocessing_text(meta.get("image_size"),
                                                        (meta.get("architecture") or {}).get("intensity", "none")))
    weights = d / WEIGHTS_FILE
    tmp = d / (WEIGHTS_FILE + ".tmp.weights.h5")
    model.save_weights(str(tmp))
    os.replace(tmp, weights)
    meta["weights"] = {WEIGHTS_FILE: sha256_file(weights)}
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise BundleError(f"bundle metadata lacks {missing}")
    (d / "bundle.json").write_text(json.dumps(meta, indent=1, default=_json_default) + "\n", encoding="utf-8")
    if metrics is not None:
        write_metrics(d, metrics)
    return d


def read_metrics(directory: str | os.PathLike) -> dict:
    """metrics.json of a bundle, {} when it has none; BundleError when it is unreadable."""
    path = Path(directory) / "metrics.json"
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"metrics.json in {Path(directory).name} is unreadable: {err}") from None
    if not isinstance(metrics, dict):
        raise BundleError(f"metrics.json in {Path(directory).name} is not an object")
    return metrics


def write_metrics(directory: str | os.PathLike, metrics: dict) -> Path:
    """metrics.json of a bundle (not covered by the weights' sha256: reports may be added later)."""
    path = Path(directory) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=1, default=_json_default) + "\n", encoding="utf-8")
    return path


def update_meta(directory: str | os.PathLike, *, verified_file: str | None = None, **fields) -> dict:
    """Rewrite bundle.json with `fields` set; `verified_file`: a file beside it whose sha256 is
    recorded with the weights' (so it is verified on load). The bundle owns its files."""
    path = Path(directory) / "bundle.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    if verified_file is not None:
        meta["weights"][verified_file] = sha256_file(Path(directory) / verified_file)
    meta.update(fields)
    path.write_text(json.dumps(meta, indent=1, default=_json_default) + "\n", encoding="utf-8")
    return meta


def read_meta(directory: str | os.PathLike) -> dict:
    """bundle.json, checked for format and keys (no weights read)."""
    d = Path(directory)
    f = d / "bundle.json"
    if not f.is_file():
        raise BundleError(f"no bundle.json in {d} (not a model bundle)")
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"bundle.json in {d.name} is unreadable: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise BundleError(f"bundle.json in {d.name} is not a {FORMAT} bundle (format {fmt!r})")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    arch = meta.get("architecture")
    if not missing and isinstance(arch, dict):
        missing = [f"architecture.{k}" for k in ARCH_KEYS if k not in arch]
    if not missing:
        views = meta["views"] if isinstance(meta["views"], dict) else {}
        missing = [f"views.{v}.{k}" for v in VIEWS for k in ("temperature", "threshold")
                   if not isinstance(views.get(v), dict) or not isinstance(views[v].get(k), (int, float))]
    if missing:
        raise BundleError(f"bundle.json in {d.name} lacks {', '.join(missing)}")
    return meta


def verify_weights(directory: str | os.PathLike, meta: dict) -> None:
    d = Path(directory)
    if not isinstance(meta["weights"], dict) or not meta["weights"]:
        raise BundleError("bundle.json records no weights digests")
    for name, digest in meta["weights"].items():
        f = d / name
        if Path(name).name != name or not f.is_file():
            raise BundleError(f"bundle weights file {name} is missing")
        if sha256_file(f) != digest:
            raise BundleError(f"bundle weights file {name} does not match its sha256 in bundle.json "
                              "(corrupted, truncated or replaced)")


def open_bundle(directory: str | os.PathLike | None = None) -> Bundle:
    """A verified bundle without its Keras model (`model` is None): metadata, panel and lab
    standardisation, for the TF-free runtime (pneumo.inference.lite_runner). Every file that
    bundle.json records is checked against its sha256 here, once."""
    d = Path(directory) if directory is not None else config.default_model_dir()
    meta = read_meta(d)
    verify_weights(d, meta)
    try:
        panel = LabPanel.from_dict(meta["lab_panel"])
        standardisation = LabStandardisation.from_meta(meta["lab_standardisation"], panel.keys)
    except (LabError, KeyError, TypeError) as err:
        raise BundleError(f"bundle.json lab panel/standardisation is inconsistent: {err}") from None
    arch = meta["architecture"]
    if arch["kind"] != "fusion" or int(arch["n_tests"]) != len(panel) or int(arch["image_size"]) != int(meta["image_size"]):
        raise BundleError("bundle.json architecture does not match its panel or image size")
    return Bundle(d, None, meta, panel, standardisation)


def load_bundle(directory: str | os.PathLike | None = None) -> Bundle:
    """Load and verify a bundle folder (default: the shipped one, config.default_model_dir())."""
    return with_keras_model(open_bundle(directory))


def with_keras_model(bundle: Bundle) -> Bundle:
    """The bundle with its Keras model rebuilt from bundle.json and the (verified) weights loaded."""
    model = _rebuild(bundle.meta["architecture"])
    try:
        model.load_weights(str(bundle.path / WEIGHTS_FILE))
    except Exception as err:   # Keras raises ValueError/KeyError/OSError variously on a mismatch
        raise BundleError(f"bundle weights do not fit the architecture in bundle.json: {type(err).__name__}") from None
    return replace(bundle, model=model)


def _rebuild(arch: dict):
    from pneumo.models.network import build_fusion_model
    try:
        return build_fusion_model(size=int(arch["image_size"]), n_tests=int(arch["n_tests"]),
                                  alpha=float(arch["alpha"]), weights=None,
                                  intensity=str(arch.get("intensity", "none")),   # absent: bundles before it existed
                                  members=int(arch.get("members", 1)),            # absent: a single model
                                  backbone=str(arch.get("backbone", "mobilenetv2")),   # absent: before 2.0.0
                                  **dict(arch["head"]))
    except (TypeError, ValueError) as err:
        raise BundleError(f"bundle.json architecture cannot be built: {err}") from None


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
