"""The source film's DICOM header, kept whole, for one purpose only: the DICOM outputs (sr.dcm,
gradcam.dcm) copy its patient and study modules so that the PACS files them in the film's own
study. Nothing read here may reach a screen, a log, a report or the case log (dicom_io.py is the
reader for everything else, and returns no identifier)."""
from __future__ import annotations

import io
import os
import warnings

from pneumo.data.dicom_io import looks_like_dicom

# Without these a PACS cannot file a derived object beside the film: treat it as a plain image.
REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
# Type 2 in the patient and study modules: a derived object must hold them, empty if the film has none
TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "AccessionNumber", "StudyID", "ReferringPhysicianName")


def source_header(data: bytes | str | os.PathLike | None):
    """The header (no pixel data) of a DICOM film (its bytes or path) as a pydicom Dataset, or None
    when it is not DICOM or lacks the UIDs a PACS files by (its outputs then get new UIDs and no
    patient data)."""
    if data is None:
        return None
    if not isinstance(data, (bytes, bytearray)):
        with open(data, "rb") as fh:           # the header only: a film's pixels can be 100 MB
            head = fh.read(132)
        stream = data
    else:
        head, stream = bytes(data[:132]), io.BytesIO(data)
    if not looks_like_dicom(head):
        return None
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(stream, force=head[128:132] != b"DICM", stop_before_pixels=True)
        if all(str(ds.get(k) or "").strip() for k in REQUIRED):
            for keyword in TYPE_2:
                if keyword not in ds:
                    setattr(ds, keyword, "")
            return ds
    except Exception:      # an unreadable header was already refused (or accepted) by dicom_io
        return None
    return None
