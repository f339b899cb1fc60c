"""An experiment's configuration (TOML): which cohort, regimes, models, runs and seeds.

See configs/paper.toml (the paper's full grid, frozen shipped encoder: the fast variant),
configs/paper-same-source.toml (the protocol end to end: one release, film network trained per run)
and configs/smoke.toml (one tiny run)."""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pneumo.errors import PneumoError
from pneumo.experiments.balance import REGIMES

MODELS = ("fusion", "image_only", "labs_only", "late_fusion", "gbm_labs")
COHORT_SOURCES = ("paired", "same-source", "mimic-cxr", "synthetic", "manifest")
FILM_MODES = ("frozen", "per_run")
TOP_KEYS = {"name", "description", "runs", "seeds", "regimes", "models", "image_size", "finetune",
            "bootstrap", "threshold", "cohort", "encoder", "film", "train"}


class ConfigError(PneumoError):
    """An experiment config that is missing, malformed or names unknown things."""


@dataclass
class CohortSpec:
    source: str = "paired"                  # paired (kermany + mimic, semi-real; test = official test) |
    #   same-source (all films from one Kermany release, split at random; semi-real) | mimic-cxr (real pairs) | synthetic | manifest
    release: str = "train"                  # same-source: the Kermany official split every film comes from
    preset: str | None = "paper"            # paired, mimic-cxr: "paper" = 50 pneumonia + 500 other
    n_pos: int | None = None
    n_neg: int | None = None
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0                           # the cohort is drawn once; runs differ in training seed only
    n: int = 64                             # synthetic: number of cases
    synthetic_image_size: int = 64          # synthetic: PNG side
    manifest: str | None = None             # manifest: CSV path
    root: str | None = None                 # manifest: image root
    mimic_dir: str | None = None            # mimic-cxr: MIMIC-IV hosp folder (default: the demo in PNEUMO_DATA_DIR)
    cxr_dir: str | None = None              # mimic-cxr: MIMIC-CXR-JPG folder (default PNEUMO_MIMIC_CXR_DIR)
    min_test_positives: int = 10


@dataclass
class EncoderSpec:
    weights: str = "bundle"     # "bundle" (shipped / PNEUMO_MODEL_DIR), a bundle dir, or "random" (tests)
    batch_size: int = 32


@dataclass
class FilmSpec:
    """How the film network is had: "frozen" (encoder.weights, embeddings cached once: the fast variant)
    or "per_run" (from the ImageNet start, the tail after `freeze_before` trained on each run's train films;
    pneumo.experiments.film_per_run)."""
    mode: str = "frozen"
    backbone: str = "efficientnet-lite0"
    start: str = "imagenet"             # "imagenet" (models/starts) or "random" (tests only)
    intensity: str = "equalize"
    freeze_before: str = "block5_expand_conv"
    epochs: int = 30
    patience: int = 8
    lr: float = 1e-3
    batch_size: int = 32
    dropout: float = 0.2
    label_smoothing: float = 0.1
    shift: int = 2                      # feature-map translation augmentation, in cells of the cut map (0 = none)
    max_minutes: float = 60.0           # per run: a safety net, never the stopping rule (epochs then depend on the machine)


@dataclass
class ExperimentConfig:
    name: str
    description: str = ""
    runs: int = 5
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    regimes: list[str] = field(default_factory=lambda: list(REGIMES))
    models: list[str] = field(default_factory=lambda: list(MODELS))
    image_size: int = 224
    finetune: bool = False
    bootstrap: int = 1000          # resamples of the test cases for the CIs
    threshold: str = "youden"      # chosen on val per run: Youden's J
    cohort: CohortSpec = field(default_factory=CohortSpec)
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    film: FilmSpec = field(default_factory=FilmSpec)
    train: dict = field(default_factory=dict)   # passed to the model constructors (epochs, ...)
    path: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cohort"]["split_fractions"] = list(self.cohort.split_fractions)
        if self.film.mode == "frozen":     # the per-run settings say nothing about a frozen encoder
            d["film"] = {"mode": "frozen"}
        d.pop("path")
        return d


def _typed(section: dict, cls, where: str):
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    try:
        return cls(**section)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def from_dict(data: dict, *, path: str | None = None) -> ExperimentConfig:
    """Validate a parsed config; ConfigError (one line) on anything unknown or inconsistent."""
    where = path or "config"
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(TOP_KEYS)}")
    if not data.get("name"):
        raise ConfigError(f"{where}: needs a name (the results file stem)")
    data = dict(data)
    cohort = _typed(data.pop("cohort", {}), CohortSpec, f"{where} [cohort]")
    encoder = _typed(data.pop("encoder", {}), EncoderSpec, f"{where} [encoder]")
    film = _typed(data.pop("film", {}), FilmSpec, f"{where} [film]")
    cfg = _typed(dict(data, cohort=cohort, encoder=encoder, film=film, path=path), ExperimentConfig, where)
    cohort.split_fractions = tuple(float(x) for x in cohort.split_fractions)
    if "seeds" not in data:
        cfg.seeds = list(range(cfg.runs))
    _check(cfg, where)
    return cfg


def _check(cfg: ExperimentConfig, where: str) -> None:
    if cfg.runs < 1 or len(cfg.seeds) != cfg.runs or len(set(cfg.seeds)) != cfg.runs:
        raise ConfigError(f"{where}: need runs >= 1 and that many distinct seeds, got runs={cfg.runs}, seeds={cfg.seeds}")
    bad = [r for r in cfg.regimes if r not in REGIMES] + [m for m in cfg.models if m not in MODELS]
    if bad or not cfg.regimes or not cfg.models:
        raise ConfigError(f"{where}: unknown or empty regimes/models {bad}; regimes {list(REGIMES)}, models {list(MODELS)}")
    if cfg.cohort.source not in COHORT_SOURCES:
        raise ConfigError(f"{where}: cohort source {cfg.cohort.source!r} unknown; known {list(COHORT_SOURCES)}")
    if len(cfg.cohort.split_fractions) != 3 or min(cfg.cohort.split_fractions) <= 0:
        raise ConfigError(f"{where}: split_fractions must be three positive shares (train, val, test)")
    if cfg.cohort.source == "manifest" and not cfg.cohort.manifest:
        raise ConfigError(f"{where}: a manifest cohort needs cohort.manifest (CSV path)")
    if cfg.image_size < 32 or cfg.bootstrap < 0 or cfg.threshold != "youden":
        raise ConfigError(f"{where}: need image_size >= 32, bootstrap >= 0 and threshold = 'youden'")
    if cfg.film.mode not in FILM_MODES or cfg.film.start not in ("imagenet", "random"):
        raise ConfigError(f"{where}: film.mode must be one of {list(FILM_MODES)} and film.start 'imagenet' or 'random'")
    if cfg.film.mode == "per_run" and (cfg.finetune or cfg.film.epochs < 1 or cfg.film.shift < 0):
        raise ConfigError(f"{where}: film.mode = 'per_run' needs finetune = false, film.epochs >= 1 and film.shift >= 0")
    if cfg.cohort.source == "same-source" and cfg.film.mode == "frozen" and cfg.encoder.weights != "random":
        # the shipped encoder was trained on Kermany's official train: every same-source film would leak
        raise ConfigError(f"{where}: a same-source cohort needs film.mode = 'per_run' (the frozen encoder has seen its films)")
    if not cfg.name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{where}: name {cfg.name!r} must be letters, digits, - and _ (it is a file stem)")


def load(path: str | Path) -> ExperimentConfig:
    """Read and validate a TOML config."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return from_dict(data, path=str(path))
