"""CSV-injection escaping for files a spreadsheet may open (OWASP: prefix a quote to cells that
begin with = + - @ tab or CR, so they are shown as text, never run).

A spreadsheet does not only look at the first character: LibreOffice with "trim spaces" (and
Excel for some imports) drops leading spaces, line breaks and invisible characters first, and
reads full-width `＝` `＋` as `=` `+`. So the test is made on the cell as a spreadsheet may see
it: NFKC-normalised (full-width and compatibility forms folded) with leading whitespace, control
and zero-width/format characters removed. The escape itself is a quote before the original text.
(defusedcsv, PyPI, was weighed: it tests the raw first character only, so it misses all of these.)
"""
from __future__ import annotations

import os
import unicodedata
from typing import Any

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@")
_RAW_TRIGGERS = ("\t", "\r", "\n")          # a cell that begins with one is escaped whatever follows
# Letters that render as nothing (category Lo/So, so not caught by the category test below)
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(ch: str) -> bool:
    """Whitespace, a control character, a format character (zero-width space/joiner, BOM, bidi
    marks, soft hyphen) or a blank letter: what a trimming spreadsheet may skip."""
    return ch.isspace() or ch in _BLANK_LETTERS or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could take this cell for a formula (see the module docstring)."""
    if text.startswith(_RAW_TRIGGERS):
        return True
    norm = unicodedata.normalize("NFKC", text)
    i = 0
    while i < len(norm) and _invisible(norm[i]):
        i += 1
    return norm.startswith(_TRIGGERS, i)


def safe_cell(value: Any) -> Any:
    """The value, with a leading single quote when it is a string a spreadsheet would evaluate."""
    if isinstance(value, str) and looks_like_formula(value):
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


# Rows end in CRLF (RFC 4180): Python's csv quotes a cell holding any character of the line
# terminator, so with "\n" alone a bare CR in a cell went out unquoted and a spreadsheet split
# the row there, its next cell starting with whatever followed (`'\r=1+2` -> a new row `=1+2`).
LINE_END = "\r\n"


def write_safe_csv(df: pd.DataFrame, path: str | os.PathLike | None = None, **kwargs) -> str | None:
    """DataFrame.to_csv (index=False unless given, CRLF rows) after escaping formula-like cells;
    with no path, the CSV text."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("lineterminator", LINE_END)
    return safe_frame(df).to_csv(path, **kwargs)
