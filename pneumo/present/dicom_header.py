"""The one gate between a film's header and the DICOM outputs (sr.dcm, gradcam.dcm): every
patient and study value they copy is made a valid value of its VR first. A sending modality's
header is free text in practice (PatientSex 'MALE', 'U' or a name; a birth date '1950-01-01'; an
accession number of 40 characters): highdicom refuses such values, and pydicom warns quoting
them. An invalid Type 2 value is blanked (the attribute stays, empty), any other is removed;
PatientSex is mapped to M, F, O or empty. Only the count leaves this module, never a value."""
from __future__ import annotations

import copy
import logging
import re
import warnings

log = logging.getLogger("pneumo.dicom_outputs")

# Type 2 in the patient and general study modules: present in a derived object, empty if unknown
TYPE_2 = frozenset({"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "AccessionNumber", "StudyID", "ReferringPhysicianName"})
# Study-level attributes outside group 0010 that the outputs' study modules copy
STUDY = frozenset({"StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName",
                   "StudyDescription", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
                   "AdmittingDiagnosesDescription", "IssuerOfAccessionNumberSequence",
                   "ReferringPhysicianIdentificationSequence"})
_SEX = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "O": "O", "OTHER": "O"}
_AS = re.compile(r"^\d{3}[DWMY]$")


def clean_patient_study(source):
    """(a copy of `source` whose patient/study values are all valid, how many were blanked or
    removed). source None -> (None, 0). The source itself is never changed."""
    if source is None:
        return None, 0
    from pydicom.datadict import dictionary_VM

    ds = copy.deepcopy(source)
    changed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # pydicom's warnings quote the value
        for elem in list(ds):
            keyword = elem.keyword
            if not (elem.tag.group == 0x0010 or keyword in STUDY) or elem.VR == "SQ":
                continue
            try:
                value = ds[elem.tag].value       # a raw element converts here (and may fail)
                fixed = _fixed(keyword, elem.VR, value, _single(keyword, dictionary_VM))
            except Exception:   # noqa: BLE001 - any value pydicom cannot even convert
                fixed = None
            if fixed is _SAME:
                continue
            changed += 1
            if keyword in TYPE_2:
                ds[elem.tag].value = fixed or ""
            else:
                del ds[elem.tag]
        for keyword in TYPE_2:                   # a derived object must hold them, empty if unknown
            if keyword not in ds:
                setattr(ds, keyword, "")
    if changed:
        log.warning("%d patient/study value(s) of the film's header were not valid DICOM; "
                    "the DICOM outputs leave them empty", changed)
    return ds, changed


_SAME = object()


def _single(keyword, dictionary_vm) -> bool:
    try:
        return dictionary_vm(keyword) == "1"
    except KeyError:
        return False


def _fixed(keyword: str, vr: str, value, single: bool):
    """_SAME when `value` is valid as it is; else the replacement ('' or the mapped sex)."""
    from pydicom import config
    from pydicom.multival import MultiValue
    from pydicom.valuerep import DA, DT, TM, validate_value

    if value is None or value == "":
        return _SAME
    if keyword == "PatientSex":
        text = str(value).strip().upper()
        mapped = _SEX.get(text, "")
        return _SAME if mapped == str(value) else mapped
    values = list(value) if isinstance(value, MultiValue) else [value]
    if single and len(values) > 1:
        return ""
    for v in values:
        validate_value(vr, v, config.RAISE)
        text = str(v).strip()
        if vr == "AS" and not _AS.match(text):
            return ""
        if text and vr in ("DA", "TM", "DT"):
            parsed = {"DA": DA, "TM": TM, "DT": DT}[vr](text)    # a real date, not only its shape
            if parsed is None:
                return ""
    return _SAME
