"""Which server folders a web user may read a batch manifest from: none, unless an administrator
names them in PNEUMO_BATCH_ROOTS (absolute folders separated by os.pathsep).

Anything else gets one refusal, worded the same whether the path exists or not, so the Batch
page cannot be used to probe the server's file system or read an arbitrary CSV.
"""
from __future__ import annotations

import os
from pathlib import Path

from pneumo.errors import PneumoError

ENV = "PNEUMO_BATCH_ROOTS"
REFUSAL = ("That manifest is not available here: give the path of a CSV file inside one of the folders "
           "the administrator allowed for batches.")
MAX_PATH_CHARS = 4096


class ServerPathError(PneumoError):
    """A server path the web user may not read (always worded as REFUSAL)."""

    def __init__(self):
        super().__init__(REFUSAL)


def allowed_roots(value: str | None = None) -> list[Path]:
    """The allowed folders, resolved (symlinks and '..' followed): PNEUMO_BATCH_ROOTS, or `value`.
    Entries that are empty, relative or not an existing folder are ignored."""
    raw = os.environ.get(ENV, "") if value is None else value
    roots: list[Path] = []
    for entry in raw.split(os.pathsep):
        entry = entry.strip()
        if not entry or "\x00" in entry or not os.path.isabs(entry):
            continue
        path = Path(entry).resolve()
        if path.is_dir() and path not in roots:
            roots.append(path)
    return roots


def enabled(roots: list[Path] | None = None) -> bool:
    """True when at least one allowed folder is configured (the page offers the mode only then)."""
    return bool(allowed_roots() if roots is None else roots)


def resolve_manifest(user_path: str, roots: list[Path] | None = None) -> Path:
    """The real path of a manifest CSV the user may read, or ServerPathError.

    `user_path` is absolute, or relative to the first allowed folder. It is resolved (symlinks,
    '..') before the check, so neither a link nor a climb leaves the allowed folders. The same
    refusal is raised for a path outside them, a missing file, a folder and a non-CSV."""
    roots = allowed_roots() if roots is None else [Path(r).resolve() for r in roots]
    text = (user_path or "").strip()
    if not roots or not text or len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise ServerPathError()
    candidate = Path(text) if os.path.isabs(text) else roots[0] / text
    try:
        real = candidate.resolve()
    except (OSError, RuntimeError, ValueError):   # a symlink loop, an unreadable component
        raise ServerPathError() from None
    if not any(real.is_relative_to(root) for root in roots):
        raise ServerPathError()
    try:
        ok = real.suffix.lower() == ".csv" and real.is_file() and os.access(real, os.R_OK)
    except OSError:
        ok = False
    if not ok:
        raise ServerPathError()
    return real
