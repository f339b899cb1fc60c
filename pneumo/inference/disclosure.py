"""What one answer may show, decided once for every surface (the page, the HTML/PDF report, the
DICOM SR, FHIR, the batch CSV, the case log, History, the DICOM node and the command line).

A case outside the model's intended use (an adult, a lateral film) gets no label anywhere, no number
and no Grad-CAM image, unless the user asked for it *for this case* (`allow_outside`: the page's
per-case "show the number anyway", the CLI's `--allow-outside`). Even then it never gets a verdict:
no red/green colour and no label word on a screen or in a report, the reason said before the number.
Inside (or where the intended use is not established) the answer shows as it is.

    >>> s = shown(result)            # the request recorded with the result (Result.outside_allowed)
    >>> s.label, s.probability, s.verdict_colour, s.lead_reason, s.gradcam
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from pneumo.inference.decision_rule import label_of
from pneumo.inference.intended_use import OUTSIDE


@dataclass(frozen=True)
class Shown:
    label: str | None           # PNEUMONIA | NORMAL for the data fields (CSV, JSON, SR, FHIR, log); None: none
    probability: float | None   # None: no number on this case's outputs
    verdict_colour: bool        # a verdict may be drawn: the label word, in red/green
    lead_reason: str | None     # said first, before any number: why this case is outside
    gradcam: bool               # a Grad-CAM image may be made, shown or written
    asked: bool = False         # the user asked to see this outside case anyway (recorded with it)

    @property
    def outside(self) -> bool:
        return self.lead_reason is not None


def _get(result: Any, name: str, default: Any = None) -> Any:
    """A Result, or a mapping of its fields (a case-log row)."""
    if isinstance(result, Mapping):
        value = result.get(name, default)
        return default if value is None else value
    return getattr(result, name, default)


def shown(result: Any, allow_outside: bool | None = None) -> Shown:
    """The one rule. result: a Result (or a mapping with probability, threshold, intended_use and
    intended_use_reason, as a case-log row); allow_outside: the user asked, for this case, to see it
    outside the intended use; None: the request recorded with the result (`outside_allowed`)."""
    if allow_outside is None:
        allow_outside = bool(_get(result, "outside_allowed", False))
    probability = float(_get(result, "probability"))
    label = label_of(probability, float(_get(result, "threshold")))
    if _get(result, "intended_use") != OUTSIDE:
        return Shown(label, probability, True, None, True)
    reason = str(_get(result, "intended_use_reason", "") or "outside the model's intended use")
    if allow_outside:
        return Shown(label, probability, False, reason, True, asked=True)
    return Shown(None, None, False, reason, False)


def as_asked(result, allow_outside: bool):
    """The Result as this case's request leaves it: its label the rule's, or "" outside unless asked,
    and the request recorded (`outside_allowed`) so every later surface reads the same answer."""
    s = shown(result, allow_outside)
    return replace(result, label=s.label or "", outside_allowed=s.asked)
