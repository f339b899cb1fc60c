"""FHIR R4 Observations (alone or in a Bundle) -> (names, value, unit) entries for the parser."""
from __future__ import annotations

from typing import Any

from pneumo.errors import LabError

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
_SKIP_STATUS = {"entered-in-error", "cancelled"}
MAX_ENTRIES = 5000   # a lab bundle with more Observations than this is not one case


def _text(value: Any) -> str:
    """str() of a code or display; an int too long for str() or a too-deep list is not a name."""
    try:
        return str(value)[:200]
    except (ValueError, RecursionError):
        return "(unreadable code)"


def _names(obs: dict) -> list[str]:
    """LOINC codes first (most specific), then other codes' displays and the text."""
    code = obs.get("code")
    if not isinstance(code, dict):
        return []
    codings = [c for c in code.get("coding") or [] if isinstance(c, dict)] if isinstance(code.get("coding"), list) else []
    loinc = [_text(c["code"]) for c in codings if c.get("system") == LOINC_SYSTEM and c.get("code") is not None]
    other = [_text(c[k]) for c in codings for k in ("display",) if c.get(k)]
    text = [_text(code["text"])] if code.get("text") else []
    return loinc + other + text


def _value(obs: dict) -> tuple[Any, str | None]:
    q = obs.get("valueQuantity")
    if isinstance(q, dict):
        unit = q.get("code") if q.get("system") == UCUM_SYSTEM and q.get("code") else q.get("unit", q.get("code"))
        return q.get("value"), None if unit is None else _text(unit)
    for k in ("valueString", "valueInteger"):
        if k in obs:
            return obs[k], None
    return None, None


def observation_entries(doc: Any) -> list[tuple[list[str], Any, str | None]]:
    """Entries of an Observation or a Bundle of them; LabError for anything that is not one."""
    if not isinstance(doc, dict):
        raise LabError("JSON lab file is not a FHIR resource (expected an object with resourceType)")
    rtype = doc.get("resourceType")
    if rtype is None:
        raise LabError("JSON lab file is not FHIR: it has no resourceType")
    if rtype == "Observation":
        observations = [doc]
    elif rtype == "Bundle":
        entries = doc.get("entry") or []
        if not isinstance(entries, list):
            raise LabError("FHIR Bundle 'entry' is not a list")
        if len(entries) > MAX_ENTRIES:
            raise LabError(f"FHIR Bundle has {len(entries)} entries (at most {MAX_ENTRIES} for one case)")
        observations = [e["resource"] for e in entries
                        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                        and e["resource"].get("resourceType") == "Observation"]
        if not observations:
            raise LabError("FHIR Bundle holds no Observation resources")
    else:
        raise LabError(f"FHIR {_text(rtype)[:40]} is not lab results (expected an Observation or a Bundle of them)")
    out = []
    for obs in observations:
        if isinstance(obs.get("status"), str) and obs["status"] in _SKIP_STATUS:
            continue
        names = _names(obs)
        value, unit = _value(obs)
        out.append((names or ["(uncoded observation)"], value, unit))
    return out
