"""Chest films for the DICOM tests: a real Kermany film where the data is there (else a made-up
chest-like picture), written as a CR DICOM with invented identifiers that the tests then hunt for, or as a PNG."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
from PIL import Image

# Invented identifiers: each must appear in the DICOM outputs of a DICOM film and nowhere else.
PHI = {"PatientName": "Doe^Jane", "PatientID": "PHI-4711-MRN", "AccessionNumber": "ACC98765X",
       "PatientBirthDate": "20220314", "StudyID": "STUDY-5521"}


def in_ci() -> bool:
    """As tests/conftest.py reads CI (not imported: under tests/e2e, `conftest` is another module)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def chest_pixels(n: int = 512, seed: int = 0) -> np.ndarray:
    """A float (n, n) image in [0, 1] the shipped model reads as a chest film: one of Kermany's test
    films, resized, where the data is there (the shipped gate refuses a made-up chest since 2.0.0),
    else a made-up chest picture (a body, two darker lungs)."""
    from pneumo import config
    films = sorted((config.kermany_dir() / "test" / "PNEUMONIA").glob("*.jpeg"))
    if films:
        film = Image.open(films[seed % len(films)]).convert("L").resize((n, n), Image.BILINEAR)
        return np.asarray(film, np.float32) / 255.0
    y, x = np.mgrid[0:n, 0:n] / n
    body = np.exp(-((x - .5) ** 2 / .12 + (y - .55) ** 2 / .2))
    lungs = (np.exp(-((x - .33) ** 2 / .012 + (y - .5) ** 2 / .05))
             + np.exp(-((x - .67) ** 2 / .012 + (y - .5) ** 2 / .05)))
    img = 0.15 + 0.75 * body - 0.55 * lungs + np.random.default_rng(seed).normal(0, .02, (n, n))
    return np.clip(img, 0, 1).astype(np.float32)


def cr_dataset(modality: str = "CR", n: int = 512, identifiers: bool = True):
    """A CR (or other modality's) single-frame film as a pydicom Dataset, 12-bit MONOCHROME2."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ComputedRadiographyImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = modality, "CHEST", "PA"
    ds.PatientAge, ds.PatientSex = "003Y", "F"
    today = dt.date.today().strftime("%Y%m%d")
    ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = today, "101500", 1, 1
    ds.ReferringPhysicianName = ""
    for key, value in PHI.items():
        setattr(ds, key, value if identifiers else "")
    ds.PatientOrientation = ["L", "F"]
    ds.Rows = ds.Columns = n
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (chest_pixels(n) * 4095).astype("<u2").tobytes()
    return ds


def write_cr(path: Path, **kw) -> Path:
    cr_dataset(**kw).save_as(path, enforce_file_format=True)
    return path


def write_png(path: Path, n: int = 512) -> Path:
    Image.fromarray((chest_pixels(n) * 255).astype(np.uint8)).save(path)
    return path
