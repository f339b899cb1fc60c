"""diagnostic-report.json: the answer as a FHIR R4 DiagnosticReport whose Observations (the
finding, the probability with the threshold and modality contributions, the intended-use
verdict) and Device (the model) are contained resources, LOINC-coded where LOINC has a code.
No subject: a FHIR text never carries a patient identifier (the receiving system links it).
Checked against fhir.resources' R4B models: DiagnosticReport and Observation are unchanged
from R4 in R4B, and the R4B models run on the pydantic 2 the other pins need."""
from __future__ import annotations

from datetime import datetime, timezone

from pneumo.inference.disclosure import shown
from pneumo.present import case_words as words

LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
LOCAL = "urn:pneumo:codes"       # what no standard code names (the model's own quantities)


def _concept(system, code, display, text=None):
    out = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def _ratio(value):
    return {"value": round(float(value), 6), "unit": "1", "system": UCUM, "code": "1"}


def _observation(ident, code, status, **value):
    return {"resourceType": "Observation", "id": ident, "status": status,
            "category": [_concept("http://terminology.hl7.org/CodeSystem/observation-category",
                                  "imaging", "Imaging")],
            "code": code, "device": {"reference": "#model"}, **value}


def diagnostic_report(result, *, created: datetime | None = None, refusal: str | None = None,
                      model: dict | None = None) -> dict:
    """The DiagnosticReport as a JSON-ready dict, validated (ValueError if it ever is not)."""
    created = created or datetime.now(timezone.utc)
    model = dict(model or (result.model if result is not None else {}) or {})
    status = "preliminary"          # a second opinion awaiting the clinician's reading
    show = shown(result) if result is not None else None    # the one rule: outside, no score unless asked
    verdict = show.label if show is not None and show.verdict_colour else None
    finding = (_concept(SNOMED, "233604007", "Pneumonia") if verdict == "PNEUMONIA"
               else _concept(SNOMED, "17621005", "Normal") if verdict == "NORMAL"
               else _concept(SNOMED, "373068000", "Undetermined"))
    observations = [_observation("finding", _concept(LOINC, "59776-5", "Procedure findings",
                                                     "Pneumonia second opinion"), status,
                                 valueCodeableConcept=finding)]
    if show is not None and show.probability is not None:
        components = [{"code": _concept(LOCAL, key, text), "valueQuantity": _ratio(value)}
                      for key, text, value in (
                          ("threshold", "Operating threshold", result.threshold),
                          ("image-contribution", "Contribution of the film", result.modality_contribution.get("image")),
                          ("labs-contribution", "Contribution of the labs", result.modality_contribution.get("labs")))
                      if value is not None]
        observations.append(_observation(
            "probability", _concept(LOCAL, "pneumonia-probability", "Calibrated probability of pneumonia"),
            status, valueQuantity=_ratio(result.probability), component=components,
            note=[{"text": result.decision_rule}]))
    if result is not None:
        observations.append(_observation(
            "intended-use", _concept(LOCAL, "intended-use", "Intended use"), status,
            valueCodeableConcept=_concept(LOCAL, result.intended_use, words.intended_use_line(result))))
    device = {"resourceType": "Device", "id": "model",
              "deviceName": [{"name": str(model.get("name") or "pneumo"), "type": "model-name"}],
              "version": [{"value": str(model.get("version") or "unknown")},
                          {"type": {"text": "weights sha256"}, "value": str(model.get("weights_sha256") or "unknown")}]}
    conclusion = words.verdict_line(result) if result is not None else "No second opinion: the film was not read."
    if refusal:
        conclusion += f" {refusal}"
    report = {"resourceType": "DiagnosticReport", "status": status,
              "category": [_concept(LOINC, "LP29684-5", "Radiology")],
              "code": _concept(LOINC, "18748-4", "Diagnostic imaging study", "Chest X-ray: pneumonia second opinion"),
              "issued": created.isoformat(timespec="seconds"),
              "contained": [device, *observations],
              "result": [{"reference": f"#{o['id']}"} for o in observations],
              "conclusion": conclusion, "conclusionCode": [finding]}
    validate(report)
    return report


def validate(report: dict) -> None:
    """Parse the dict with the R4(B) model: a missing or mistyped element raises ValueError."""
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    try:
        DiagnosticReport.model_validate(report)
    except Exception as err:     # pydantic's ValidationError: one line is enough to say it
        raise ValueError(f"not a valid FHIR R4 DiagnosticReport: {str(err).splitlines()[0]}") from None
