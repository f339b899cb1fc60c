"""Shared fixtures. Tests marked `data` need ../shared/data (PNEUMO_DATA_DIR): they skip
with the reason where it is absent, and fail in CI (CI=true), where it must be present."""
from __future__ import annotations

import os

import pytest

from pneumo import config




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
    if os.environ.get("CI"):
        pytest.fail(f"CI requires the real data: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir():
    return config.data_dir()
