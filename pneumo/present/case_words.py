"""The words a clinician reads about one answer, in one place, so the page, the report and the
command line say the same thing: the verdict (or why there is none), the decision rule, the one
attribution story (baseline -> film -> labs, the lab bars splitting the last step), and what the
uncertainty band means. Plain strings; no screen code."""
from __future__ import annotations

from pneumo.inference.disclosure import shown
from pneumo.models.names import inputs_words

BANDS = {
    "clear": "no warning, the ensemble's members agree, and the probability is at least 0.10 from "
             "the threshold",
    "near threshold": "the probability is within 0.10 of the threshold: a small change in the case "
                      "could change the label",
    "members disagree": "the members of the ensemble fall on both sides of the threshold: the model "
                        "itself is unsure",
    "caution": "a warning fired (an unusual film, a lab problem, or a case outside the intended use): "
               "read the warnings before the number",
}


def rule_sentence(threshold: float) -> str:
    """The decision rule in one sentence."""
    return (f"PNEUMONIA when the calibrated probability is at least {threshold:.2f}, for every case "
            "(film and labs, film only, labs only); the threshold was chosen on validation cases to "
            "balance sensitivity and specificity.")


def verdict_line(result, allow_outside: bool | None = None) -> str:
    """'PNEUMONIA · P(pneumonia) 0.84 (threshold 0.52) · clear'; outside the intended use the reason
    first, and the number (never the label word) only when asked for this case (pneumo.inference.disclosure).
    allow_outside None: the request recorded with the result."""
    s = shown(result, allow_outside)
    if s.outside:
        return outside_line(s.lead_reason) + (" " + number_on_request(result) if s.probability is not None else "")
    return (f"{s.label} · P(pneumonia) {s.probability:.2f} "
            f"(threshold {result.threshold:.2f}) · {result.band}")


def outside_line(reason: str) -> str:
    """Why there is no second opinion, said before any number."""
    return "No second opinion: this case is outside the model's intended use. " + capital(reason) + "."


def number_on_request(result) -> str:
    """The number of an outside case the user asked to see: no label word, no verdict."""
    return (f"Shown on request, not validated for this case: P(pneumonia) {result.probability:.2f} "
            f"(threshold {result.threshold:.2f}); not a second opinion.")


def band_meaning(band: str) -> str:
    return BANDS.get(band, "")


def attribution_sentence(result) -> str:
    """Baseline -> film -> labs, each step's size; these add up to the probability (the lab bars
    are read against a normal panel instead: pneumo.present.lab_effects)."""
    base = result.baseline
    if base is None:
        return ""
    c, m = result.modality_contribution, result.modalities
    parts = [f"With neither film nor labs the model starts at {base:.2f}"]
    level = base
    if m.get("image"):
        level += c["image"]
        parts.append(f"the film takes it to {level:.2f} ({signed(c['image'])})")
    if m.get("labs"):
        level += c["labs"]
        parts.append(f"the labs {'then ' if m.get('image') else ''}take it to {level:.2f} ({signed(c['labs'])})")
    return "; ".join(parts) + "."


def shap_caption(result, n_shown: int, n_panel: int) -> str:
    """What the lab bars are, and why some tests have none."""
    film = "the film and " if result.modalities.get("image") else ""
    text = ("Each bar is what moving one lab value from a normal value (mid-reference range) to this "
            f"patient's did to P(pneumonia), with {film}the other tests as given. "
            "Red raises the probability, blue lowers it.")
    missing = n_panel - n_shown
    if missing:
        text += f" The {missing} tests not given have no bar: the model reads them as not measured."
    return text


def intended_use_line(result) -> str:
    status = {"within": "Within the intended use", "outside": "Outside the intended use",
              "unknown": "Intended use not established"}.get(result.intended_use, result.intended_use)
    return f"{status}: {result.intended_use_reason}."


def inputs_given(result) -> str:
    """'film and labs' | 'film only' | 'labs only'."""
    m = result.modalities
    return inputs_words(bool(m.get("image")), bool(m.get("labs")))


def signed(x: float) -> str:
    """+0.41, or +0.003 when two decimals would read as a meaningless -0.00."""
    return f"{x:+.2f}" if abs(x) >= 0.005 else f"{x:+.3f}"


def capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def labs_only_headline(probability: float) -> str:
    """A labs-only answer in words, never a verdict: 'Labs only: weak evidence (P 0.47)'."""
    return f"Labs only: weak evidence (P {probability:.2f})"


def labs_only_sub(threshold: float, metrics: dict | None) -> str:
    """Why the labs alone are weak, from the bundle's own test figures where it has them."""
    m = ((metrics or {}).get("test") or {}).get("labs_only") or {}
    sens = m.get("sensitivity")
    told = (f"on the test split the labs alone found {sens:.2f} of pneumonias (sensitivity); "
            if isinstance(sens, (int, float)) else "")
    return f"threshold {threshold:.2f} · {told}add the chest film for a second opinion"

