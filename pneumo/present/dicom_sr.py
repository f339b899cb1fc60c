"""sr.dcm: the case's answer as a DICOM Comprehensive 3D SR holding a TID 1500 measurement report
(highdicom): the probability, the threshold and the rule, an assessment of pneumonia coded by
its result (Pneumonia, Normal or Undetermined; no finding type asserts pneumonia of every case), the intended-use verdict,
each modality's contribution, the model (name, version, weights sha256) and the source film.
A case outside the intended use (pneumo.inference.disclosure), or a refused film, gets a report that
says why first and no score; an outside case the user asked to see carries the number, never a label.
Patient and study come from the evidence (the film's header, or the new-study overlay)."""
from __future__ import annotations

from pneumo.inference.disclosure import shown
from pneumo.present import case_words as words
from pneumo.present.app_support import DISCLAIMER

SCHEME = "99PNEUMO"              # a private coding scheme: for what no standard code names
SERIES_NUMBER = 9902
SERIES_DESCRIPTION = "pneumo second opinion (structured report)"


def _concepts():
    from highdicom.sr import CodedConcept as C

    def own(value, meaning):
        return C(value, SCHEME, meaning)

    return {
        "procedure": C("399208008", "SCT", "Plain chest X-ray"),
        "label": own("PNA-A", "Assessment of pneumonia by the decision rule"),
        "pneumonia": C("233604007", "SCT", "Pneumonia"),
        "normal": C("17621005", "SCT", "Normal"),
        "undetermined": C("373068000", "SCT", "Undetermined"),
        "unit": C("1", "UCUM", "no units"),
        "probability": own("PNA-P", "Calibrated probability of pneumonia"),
        "threshold": own("PNA-T", "Operating threshold"),
        "image_step": own("PNA-CI", "Contribution of the film to the probability"),
        "labs_step": own("PNA-CL", "Contribution of the labs to the probability"),
        "baseline": own("PNA-B", "Probability with neither film nor labs"),
        "intended_use": own("IU", "Intended use"),
        "within": own("IU-IN", "Within the intended use"),
        "outside": own("IU-OUT", "Outside the intended use"),
        "unknown": own("IU-UNK", "Intended use not established"),
        "reason": own("IU-WHY", "Intended-use reason"),
        "rule": own("RULE", "Decision rule"),
        "verdict": own("VERDICT", "Second opinion"),
        "warning": own("WARN", "Warning"),
        "not_read": own("REFUSED", "Why the film was not read"),
        "disclaimer": own("DISCLAIMER", "Disclaimer"),
        "source": own("SOURCE", "Source image"),
    }


def structured_report(result, evidence, *, source=None, refusal: str | None = None,
                      model: dict | None = None):
    """A highdicom Comprehensive3DSR. result: the Result (None when the film was refused, then
    `refusal` says why); evidence: the film's header, or the gradcam image of a PNG/JPEG film
    (patient and study are inherited from it); source: the film's header when it is DICOM."""
    import highdicom as hd
    from highdicom.sr import (AlgorithmIdentification, Measurement, MeasurementReport,
                              MeasurementsAndQualitativeEvaluations, ObservationContext,
                              ObserverContext, QualitativeEvaluation, RelationshipTypeValues,
                              SourceImageForMeasurementGroup, TextContentItem, TrackingIdentifier)
    from pydicom.sr.codedict import codes

    k = _concepts()
    model = dict(model or (result.model if result is not None else {}) or {})
    algorithm = AlgorithmIdentification(
        name=str(model.get("name") or "pneumo"), version=str(model.get("version") or "unknown"),
        parameters=[f"weights sha256 {model.get('weights_sha256') or 'unknown'}"])
    show = shown(result) if result is not None else None   # the one rule: outside, no score unless asked
    measurements, evaluations = [], []
    if show is not None and show.probability is not None:
        for key, value in (("probability", result.probability), ("threshold", result.threshold),
                           ("baseline", result.baseline),
                           ("image_step", result.modality_contribution.get("image")),
                           ("labs_step", result.modality_contribution.get("labs"))):
            if value is not None:
                measurements.append(Measurement(name=k[key], value=float(value), unit=k["unit"],
                                                algorithm_id=algorithm))
    if show is not None and show.verdict_colour:
        evaluations.append(QualitativeEvaluation(k["label"], k[show.label.lower()]))
    else:
        evaluations.append(QualitativeEvaluation(k["label"], k["undetermined"]))
    if result is not None:
        evaluations.append(QualitativeEvaluation(k["intended_use"], k.get(result.intended_use, k["unknown"])))
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier="pneumo second opinion"),
        algorithm_id=algorithm, measurements=measurements or None,
        qualitative_evaluations=evaluations,     # no finding type: "Finding = Pneumonia" would assert it of every case
        source_images=[SourceImageForMeasurementGroup.from_source_image(source)] if source is not None else None)
    texts = [("verdict", words.verdict_line(result) if result is not None else "No second opinion: the film was not read.")]
    if result is not None:
        texts += [("reason", words.intended_use_line(result)), ("rule", result.decision_rule)]
        texts += [("warning", str(w)) for w in result.warnings]
    if refusal:
        texts.append(("not_read", refusal))
    if source is None:
        texts.append(("source", "a PNG/JPEG file, not a DICOM instance; pixel sha256 "
                      f"{(result.image_digest if result is not None else None) or 'unknown'}"))
    texts.append(("disclaimer", DISCLAIMER))
    content = group[0].ContentSequence
    for key, text in texts:
        content.append(TextContentItem(name=k[key], value=_sr_text(text),
                                       relationship_type=RelationshipTypeValues.CONTAINS))
    device = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="pneumo", model_name=str(model.get("name") or "pneumo")))
    report = MeasurementReport(observation_context=ObservationContext(observer_device_context=device),
                               procedure_reported=k["procedure"], imaging_measurements=[group])
    sr = hd.sr.Comprehensive3DSR(
        evidence=[evidence], content=report[0], series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="pneumo", is_complete=True, is_final=False, is_verified=False)
    sr.SeriesDescription = SERIES_DESCRIPTION
    sr.SpecificCharacterSet = "ISO_IR 192"     # UTF-8: the words hold '·' and '—'
    return sr


def _sr_text(text: str) -> str:
    """UT holds any length, but some viewers cut at 1024: one line, trimmed."""
    text = " ".join(str(text).split())
    return text if len(text) <= 1024 else text[:1021] + "..."
