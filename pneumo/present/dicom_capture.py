"""gradcam.dcm: the Grad-CAM overlay as a DICOM Secondary Capture image (highdicom), in its own
series of the film's study, so a PACS viewer shows it beside the film. A DICOM film's patient and
study modules are copied (the only way a PACS files it there); a PNG/JPEG film gets a new study
and no patient data."""
from __future__ import annotations

import numpy as np
from PIL import Image

MAX_SIDE = 1024                  # a heat map needs no more; keeps the file ~3 MB uncompressed
SERIES_NUMBER = 9901             # high, so the derived series sorts after the film's own
SERIES_DESCRIPTION = "pneumo Grad-CAM (second opinion, not a diagnosis)"
MANUFACTURER = "pneumo"


def new_study_reference():
    """A stand-in 'source' for a film that is not DICOM: new UIDs, no patient, no dates."""
    import highdicom as hd
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.StudyInstanceUID = hd.UID()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "", "", "", ""
    ds.AccessionNumber, ds.StudyID, ds.StudyDate, ds.StudyTime = "", "", "", ""
    ds.ReferringPhysicianName = ""
    return ds


def _shrunk(overlay: np.ndarray) -> np.ndarray:
    img = Image.fromarray(np.asarray(overlay, dtype=np.uint8))
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def gradcam_image(overlay: np.ndarray, source=None):
    """The overlay (H, W, 3) uint8 as a Secondary Capture Dataset. source: the film's DICOM header
    (pneumo.data.dicom_source.source_header), or None for a PNG/JPEG film."""
    import highdicom as hd
    from pydicom.dataset import Dataset

    reference = source if source is not None else new_study_reference()
    orientation = tuple(str(v) for v in (reference.get("PatientOrientation") or ()))
    sc = hd.sc.SCImage.from_ref_dataset(
        reference, _shrunk(overlay), photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=hd.UID(), series_number=SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        patient_orientation=orientation if len(orientation) == 2 else ("L", "F"),
        transfer_syntax_uid="1.2.840.10008.1.2.1")
    sc.SeriesDescription = SERIES_DESCRIPTION
    sc.SpecificCharacterSet = "ISO_IR 192"     # UTF-8: a copied name may be any script
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = "Grad-CAM heat map of the pneumonia model over the film"
    # text burned into a PNG film is unknown, so it is declared possible; a DICOM film says its own
    sc.BurnedInAnnotation = str(source.get("BurnedInAnnotation") or "YES") if source is not None else "YES"
    if source is not None:
        item = Dataset()
        item.ReferencedSOPClassUID = source.SOPClassUID
        item.ReferencedSOPInstanceUID = source.SOPInstanceUID
        sc.SourceImageSequence = [item]
    return sc
