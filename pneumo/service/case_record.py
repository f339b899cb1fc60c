"""What one case-log row holds: only what the model saw and said, cleaned of identifiers.

Lab keys that name a person or a file are dropped, text is never a lab value, warnings have file
names masked, the image is a pixel digest, the user a sign-in name. pneumo.service.case_log stores
these rows in its SQLite file.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping

from pneumo.errors import PneumoError
from pneumo.inference.disclosure import shown
from pneumo.models.names import inputs_words

ORIGINS = ("app", "cli", "batch", "dicom-node")

COLUMNS = ("time", "origin", "image_digest", "labs", "probability", "label", "threshold", "band",
           "validity", "warnings", "contribution", "model_name", "model_version", "weights_sha256",
           "batch_id", "row_index", "user", "intended_use", "inputs", "outside_allowed")

# pneumo.service.auth's rule for a sign-in name.
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# Lab dict keys that name a person or a file are dropped, whatever their value.
_IDENTIFIER_KEY = re.compile(r"(patient|name|mrn|subject|accession|birth|dob|path|file|^id$|_id$|^id_)",
                             re.IGNORECASE)
_LAB_KEY = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Path-like or image-file-like tokens in a warning are replaced: a warning never names a file.
_PATHLIKE = re.compile(r"(?<![^\s'\"(\[])(?:[A-Za-z]:[\\/]|\\\\|~?/|\.\.?/)\S*"   # /abs, ~/x, ./x, C:\\x
                       r"|\S*\\\S*"                                               # any backslash path
                       r"|[^\s'\"]+\.(?:dcm|dicom|png|jpe?g|tiff?|bmp|gif|csv|json)\b",  # a file name
                       re.IGNORECASE)


@dataclass(frozen=True)
class LogEntry:
    """One case to record (the batch uses record_many with these)."""
    result: Any
    labs: Any = None
    origin: str = "batch"
    batch_id: str | None = None
    row_index: int | None = None
    user: str | None = None


def _get(result: Any, name: str, default: Any = None) -> Any:
    """Result attribute or dict key: works with predictor.Result, a look-alike, or a dict."""
    if isinstance(result, Mapping):
        return result.get(name, default)
    return getattr(result, name, default)


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def clean_labs(labs: Any) -> dict[str, float | None]:
    """Only numeric values under lab-looking keys survive; identifiers and text never do."""
    if labs is None:
        return {}
    values = labs if isinstance(labs, Mapping) else getattr(labs, "values", None)  # a LabReading: .values
    if not isinstance(values, Mapping):
        return {}
    out: dict[str, float | None] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _LAB_KEY.match(key) or _IDENTIFIER_KEY.search(key):
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[key] = None
        elif isinstance(value, bool) or isinstance(value, str):
            continue                          # text is never a lab value here (it may be a name)
        elif (x := _number(value)) is not None:
            out[key] = x
    return out


def clean_warnings(warnings: Any) -> list[str]:
    if not warnings:
        return []
    if isinstance(warnings, str):
        warnings = [warnings]
    return [" ".join(_PATHLIKE.sub("<file>", str(w)).split()) for w in warnings]


def _digest(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if not _HEX64.match(text):
        raise PneumoError("case log: image_digest must be a sha256 hex digest of the pixels")
    return text


def row_values(entry: LogEntry) -> tuple:
    """The values of one `cases` row, in COLUMNS order: cleaned, never an identifier."""
    if entry.origin not in ORIGINS:
        raise PneumoError(f"case log: origin must be one of {', '.join(ORIGINS)}, not {entry.origin!r}")
    r = entry.result
    probability = _number(_get(r, "probability"))
    if probability is None:
        raise PneumoError("case log: the result has no probability")
    model = _get(r, "model") or {}
    threshold = _number(_get(r, "threshold"))
    # the one rule: outside the intended use no label is stored unless the user asked for this case
    show = shown({"probability": probability, "threshold": 0.5 if threshold is None else threshold,
                  "intended_use": _get(r, "intended_use"), "intended_use_reason": _get(r, "intended_use_reason")},
                 bool(_get(r, "outside_allowed", False)))
    label = str(_get(r, "label", "") or "")
    if show.outside:
        label = (show.label if threshold is not None else label) if show.asked else ""
    contribution = _get(r, "modality_contribution")
    contribution = ({k: _number(v) for k, v in contribution.items() if k in ("image", "labs")}
                    if isinstance(contribution, Mapping) else None)
    return (datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            entry.origin,
            _digest(_get(r, "image_digest")),
            json.dumps(clean_labs(entry.labs), sort_keys=True),
            probability,
            label,
            threshold,
            None if _get(r, "band") is None else str(_get(r, "band")),
            None if _get(r, "validity") is None else str(_get(r, "validity")),
            json.dumps(clean_warnings(_get(r, "warnings"))),
            None if contribution is None else json.dumps(contribution, sort_keys=True),
            _str_or_none(model.get("name") if isinstance(model, Mapping) else None),
            _str_or_none(model.get("version") if isinstance(model, Mapping) else None),
            _str_or_none(model.get("weights_sha256") if isinstance(model, Mapping) else None),
            entry.batch_id,
            None if entry.row_index is None else int(entry.row_index),
            clean_user(entry.user),
            _str_or_none(_get(r, "intended_use")),
            _inputs(_get(r, "modalities")),
            int(show.asked))


def _inputs(modalities: Any) -> str | None:
    """Which inputs the case had, in words (never the inputs themselves)."""
    if not isinstance(modalities, Mapping):
        return None
    return inputs_words(bool(modalities.get("image")), bool(modalities.get("labs")))


def clean_user(user: Any) -> str | None:
    """A sign-in name (pneumo.service.auth's rule: letters, digits . _ @ -, at most 64) or None."""
    if user is None or user == "":
        return None
    if not isinstance(user, str) or not _USER.match(user):
        raise PneumoError("case log: a user name is letters, digits and . _ @ - (at most 64)")
    return user


def utc_stamp(moment: date | datetime | str) -> str:
    """The log's time format for the start of a day or a moment: '2026-01-31T00:00:00.000Z'."""
    if isinstance(moment, str):
        try:
            moment = date.fromisoformat(moment.strip())
        except ValueError:
            raise PneumoError(f"not a date (YYYY-MM-DD): {moment[:40]!r}") from None
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
