"""The few settings the library reads from the environment, in one place."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Real data folder: PNEUMO_DATA_DIR, default ../shared/data beside the repository."""
    env = os.environ.get("PNEUMO_DATA_DIR")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def kermany_dir() -> Path:
    return data_dir() / "kermany" / "chest_xray"


def mimic_dir() -> Path:
    return data_dir() / "mimic-iv-demo" / "hosp"


def home_dir() -> Path:
    """Writable state (case log): PNEUMO_HOME, default ~/.pneumo."""
    env = os.environ.get("PNEUMO_HOME")
    path = Path(env).expanduser() if env else Path.home() / ".pneumo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_model_dir() -> Path:
    """The shipped bundle, unless PNEUMO_MODEL_DIR names another."""
    env = os.environ.get("PNEUMO_MODEL_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "models" / "pneumo-fusion"


def models_dir() -> Path:
    """Where bundles are listed from (metrics page): PNEUMO_MODELS_DIR, default models/."""
    env = os.environ.get("PNEUMO_MODELS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "models"


def results_dir() -> Path:
    env = os.environ.get("PNEUMO_RESULTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "results"
