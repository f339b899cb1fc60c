"""Shared fixtures. Tests marked `data` need ../shared/data (PNEUMO_DATA_DIR): they skip
with the reason where it is absent, and fail in CI (CI=true), where it must be present."""
from __future__ import annotations

import os

import pytest

from pneumo import config
from pneumo.models.features import VIEWS


def in_ci() -> bool:
    """CI=true (or 1/yes) is CI; CI=false, CI=0 or no CI is not."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _data_missing_reason() -> str | None:
    root = config.data_dir()
    if not (root / "kermany").is_dir() or not (root / "mimic-iv-demo").is_dir():
        return f"real data not found at {root} (set PNEUMO_DATA_DIR)"
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("data") is None:
        return
    reason = _data_missing_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI requires the real data: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def model_loaders_finish():
    """The app's model loader keeps warming Grad-CAM on a daemon thread after it has published
    the model; TensorFlow aborts the interpreter if it exits mid-build, so the run waits for it."""
    yield
    import sys
    module = sys.modules.get("pages.ui.model")
    for loader in getattr(module, "STARTED", []):
        loader.explain_warm.wait(600)


@pytest.fixture(scope="session")
def data_dir():
    return config.data_dir()


@pytest.fixture(scope="session")
def shipped_bundle():
    """The committed models/pneumo-fusion, opened and verified (every recorded sha256, the exported
    runtime): a missing or broken shipped bundle fails the tests that need it, never skips them."""
    from pneumo.errors import BundleError
    from pneumo.models.bundle import open_bundle
    from pneumo.models.runtime import runtime_files

    folder = config.default_model_dir()
    if not (folder / "bundle.json").is_file():
        pytest.fail(f"the shipped bundle is committed but {folder / 'bundle.json'} is missing")
    try:
        bundle = open_bundle(folder)
    except BundleError as err:
        pytest.fail(f"the shipped bundle at {folder} is broken: {err}")
    files = runtime_files(bundle.path, bundle.meta)
    if isinstance(files, str):
        pytest.fail(f"the shipped bundle's exported runtime is unusable: {files}")
    return bundle


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """An untrained but complete bundle (64 px, default panel, reference set): for testing
    the Predictor's plumbing and maths without the shipped model."""
    import keras
    import numpy as np

    from pneumo.data.labs import default_panel
    from pneumo.models.bundle import save_bundle
    from pneumo.models.network import build_fusion_model
    from pneumo.training.reference import write_reference

    keras.utils.set_random_seed(0)
    panel = default_panel()
    medians = {t.key: t.impute_value() for t in panel}
    panel = panel.with_medians(medians)
    head = dict(d_model=16, heads=2, layers_n=1, pooled_dim=8, fusion_units=16)
    model = build_fusion_model(size=64, n_tests=len(panel), alpha=0.35, **head)
    meta = {"name": "tiny-test-bundle", "version": "0.0.1", "image_size": 64,
            "architecture": {"kind": "fusion", "image_size": 64, "alpha": 0.35,
                             "n_tests": len(panel), "head": head},
            "lab_panel": panel.to_dict(),
            "lab_standardisation": {"mean": medians,
                                    "sd": {k: max(abs(v) * 0.2, 1.0) for k, v in medians.items()}},
            "threshold": 0.5, "threshold_rule": "fixed (test bundle)", "temperature": 1.0,
            "views": {v: {"temperature": 1.0, "threshold": 0.5} for v in VIEWS},
            "training_data": {"description": "untrained test bundle"}}
    out = tmp_path_factory.mktemp("bundle")
    save_bundle(out, model, meta, {"test": {}})
    rng = np.random.default_rng(0)
    late_dim = sum(int(t.shape[-1]) for t in model.get_layer("image_encoder").outputs)
    background = np.array([[medians[k] * (1 + 0.1 * rng.normal()) for k in panel.keys]
                           for _ in range(30)], np.float32)
    background[::4, 3] = np.nan
    write_reference(out, rng.normal(size=(200, late_dim)), rng.normal(size=(80, late_dim)),
                    background)
    return out
