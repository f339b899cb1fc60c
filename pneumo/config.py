"""The few settings the library reads from the environment, in one place."""
from __future__ import annotations

import os
from pathlib import Path

from pneumo.errors import PneumoError

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Real data folder: PNEUMO_DATA_DIR, default ../shared/data beside the repository."""
    env = os.environ.get("PNEUMO_DATA_DIR")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def kermany_dir() -> Path:
    return data_dir() / "kermany" / "chest_xray"


def mimic_dir() -> Path:
    return data_dir() / "mimic-iv-demo" / "hosp"


def mimic_cxr_dir() -> Path:
    """MIMIC-CXR-JPG (credentialed; not in the open data): PNEUMO_MIMIC_CXR_DIR, default DATA_DIR/mimic-cxr-jpg."""
    env = os.environ.get("PNEUMO_MIMIC_CXR_DIR")
    return Path(env).expanduser().resolve() if env else data_dir() / "mimic-cxr-jpg"


def home_dir() -> Path:
    """Writable state (case log): PNEUMO_HOME, default ~/.pneumo; created if missing. A folder
    that cannot be created or written raises PneumoError with one line (never a bare OSError)."""

    env = os.environ.get("PNEUMO_HOME")
    path = Path(env).expanduser() if env else Path.home() / ".pneumo"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)   # the case log and node queue: health data
    except OSError as err:
        reason = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) \
            else (err.strerror or type(err).__name__)
        raise PneumoError(f"PNEUMO_HOME {path} cannot be created: {reason}") from None
    if not path.is_dir():
        raise PneumoError(f"PNEUMO_HOME {path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PneumoError(f"PNEUMO_HOME {path} is not writable by this user")
    _owner_only(path)
    return path


def _owner_only(path: Path) -> None:
    """A PNEUMO_HOME of ours that others may enter is tightened to 0700 (best effort)."""
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            path.chmod(st.st_mode & 0o700)
    except (OSError, AttributeError):   # not ours to change, or no getuid (Windows)
        pass


def default_model_dir() -> Path:
    """The shipped bundle, unless PNEUMO_MODEL_DIR names another."""
    env = os.environ.get("PNEUMO_MODEL_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "models" / "pneumo-fusion"


def models_dir() -> Path:
    """Where bundles are listed from (metrics page): PNEUMO_MODELS_DIR, default models/."""
    env = os.environ.get("PNEUMO_MODELS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "models"


def starts_dir() -> Path:
    """Converted ImageNet starts (`python -m pneumo import-start`), shipped beside the bundles."""
    return REPO_ROOT / "models" / "starts"


def results_dir() -> Path:
    env = os.environ.get("PNEUMO_RESULTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "results"


def cache_dir() -> Path:
    """Derived files (preprocessed films, backbones, synthetic cohorts): <repo>/cache, git-ignored,
    whatever the current directory."""
    return REPO_ROOT / "cache"


def embedding_cache_dir() -> Path:
    """Cached image embeddings for experiments: PNEUMO_CACHE_DIR, default cache_dir()/embeddings."""
    env = os.environ.get("PNEUMO_CACHE_DIR")
    return Path(env).expanduser() if env else cache_dir() / "embeddings"


def tf_threads() -> int:
    """TensorFlow's intra-op threads for training and experiments: PNEUMO_TF_THREADS, default 2."""
    return _positive_int("PNEUMO_TF_THREADS", 2)


# --- deployment and security settings (SECURITY.md) -----------------------------------------

def _positive_int(name: str, default: int) -> int:
    """An integer setting > 0; a malformed value falls back to the default (never to no limit)."""
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if value > 0 else default


def max_upload_files() -> int:
    """Files one Batch-page upload may hold: PNEUMO_MAX_UPLOAD_FILES, default 1000."""
    return _positive_int("PNEUMO_MAX_UPLOAD_FILES", 1000)


def max_zip_entries() -> int:
    """Zip members one batch may unpack, all archives together: PNEUMO_MAX_ZIP_ENTRIES, default 10000."""
    return _positive_int("PNEUMO_MAX_ZIP_ENTRIES", 10_000)


def max_batch_bytes() -> int:
    """Bytes one uploaded batch may take once unpacked: PNEUMO_MAX_BATCH_MB (default 500) x 10^6."""
    return _positive_int("PNEUMO_MAX_BATCH_MB", 500) * 1_000_000


def max_manifest_rows() -> int:
    """Data rows a batch manifest may hold, checked before anything is scored:
    PNEUMO_MAX_MANIFEST_ROWS, default 100000."""
    return _positive_int("PNEUMO_MAX_MANIFEST_ROWS", 100_000)


def max_manifest_columns() -> int:
    """Columns a batch manifest may have: PNEUMO_MAX_MANIFEST_COLUMNS, default 200."""
    return _positive_int("PNEUMO_MAX_MANIFEST_COLUMNS", 200)


def retention_days() -> int | None:
    """Case-log rows older than this many days are deleted when the log is opened:
    PNEUMO_RETENTION_DAYS; unset (or not a positive integer) keeps every row."""
    try:
        value = int(os.environ.get("PNEUMO_RETENTION_DAYS", "").strip())
    except ValueError:
        return None
    return value if value > 0 else None


def users_file() -> Path | None:
    """The sign-in users file (pneumo.service.auth): PNEUMO_USERS_FILE; unset = no sign-in."""
    env = os.environ.get("PNEUMO_USERS_FILE", "").strip()
    return Path(env).expanduser() if env else None


def idle_minutes() -> int:
    """A signed-in browser is signed out after this many minutes without a page run:
    PNEUMO_IDLE_MINUTES, default 30."""
    return _positive_int("PNEUMO_IDLE_MINUTES", 30)


def session_hours() -> int:
    """A sign-in lasts at most this many hours, however active: PNEUMO_SESSION_HOURS, default 12."""
    return _positive_int("PNEUMO_SESSION_HOURS", 12)


def sign_in_free_tries() -> int:
    """Wrong passwords (per user name, and per browser session) before sign-in backs off:
    PNEUMO_SIGN_IN_FREE_TRIES, default 5."""
    return _positive_int("PNEUMO_SIGN_IN_FREE_TRIES", 5)


def sign_in_max_lock_seconds() -> int:
    """The longest sign-in lock-out, however many wrong passwords: PNEUMO_SIGN_IN_MAX_LOCK_S,
    default 900 (15 minutes)."""
    return _positive_int("PNEUMO_SIGN_IN_MAX_LOCK_S", 900)


def inference_threads() -> int:
    """CPU threads the exported runtime's kernels use: PNEUMO_THREADS, default the cores this
    process may run on (os.sched_getaffinity, so a container's CPU limit is honoured)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):     # not on Linux
        cores = os.cpu_count() or 1
    return _positive_int("PNEUMO_THREADS", cores)


RUNTIMES = ("litert", "keras")


def runtime() -> str:
    """Which runtime scores cases: PNEUMO_RUNTIME=litert (default: the bundle's exported graph,
    no TensorFlow) or keras (the Keras model, e.g. to compare the two); anything else: litert."""
    value = os.environ.get("PNEUMO_RUNTIME", "").strip().lower()
    return value if value in RUNTIMES else RUNTIMES[0]
