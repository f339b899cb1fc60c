"""CSV-injection escaping for files a spreadsheet may open (OWASP: prefix a quote to
cells that begin with = + - @ tab or CR, so they are shown as text, never run)."""
from __future__ import annotations

import os
from typing import Any

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value, with a leading single quote when it is a string a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every string cell and column name escaped; numbers are left as numbers."""
    out = df.copy()
    out.columns = [safe_cell(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(safe_cell)
    return out


def write_safe_csv(df: pd.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    """DataFrame.to_csv (index=False unless given) after escaping formula-like cells."""
    kwargs.setdefault("index", False)
    safe_frame(df).to_csv(path, **kwargs)
