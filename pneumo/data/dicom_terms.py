"""What the DICOM header's codes mean here, in one place: view positions and modalities.

Every reader of ViewPosition (the validity gate, the intended-use check, the cohorts) and of
Modality (the decoder, the storage node, the intended population) takes its terms from here."""
from __future__ import annotations

# ViewPosition terms (PS3.3 C.8.11.5.1.1 and what vendors write), upper case.
FRONTAL_VIEWS = frozenset({"PA", "AP", "AP SUPINE", "PA ERECT", "AP ERECT"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT", "LLD", "RLD"})
# Oblique projections are neither lateral nor frontal: outside a frontal-only model too.
OBLIQUE_VIEWS = frozenset({"LAO", "RAO", "LPO", "RPO", "LLO", "RLO"})
NOT_FRONTAL_VIEWS = LATERAL_VIEWS | OBLIQUE_VIEWS


def view_kind(view: str | None) -> str | None:
    """'frontal' | 'lateral' | 'oblique' for a known ViewPosition term, else None."""
    term = (view or "").strip().upper()
    for kind, terms in (("frontal", FRONTAL_VIEWS), ("lateral", LATERAL_VIEWS), ("oblique", OBLIQUE_VIEWS)):
        if term in terms:
            return kind
    return None


# Modalities the decoder takes as a plain radiograph. DR is not a DICOM code but some vendors
# write it; OT ("other") says no more than a missing tag and is what digitised films often carry.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "OT"})
# The storage classes a PACS sends digital chest films as: what the DICOM node takes.
DIGITAL_MODALITIES = RADIOGRAPH_MODALITIES & {"CR", "DX"}
# Codes a message or a log line may name (PS3.3 C.7.3.1.1.1); anything else is free text that
# could be a name, so it is shown as "unrecognised".
KNOWN_MODALITIES = frozenset(
    "CT MR US NM PT XA RF MG IO PX ES SM OP OPT OCT OPM ECG EEG EMG SEG SR RTDOSE RTPLAN "
    "RTSTRUCT RTIMAGE RTRECORD REG KO PR DOC XC GM BI HD EPS AU IVUS IVOCT LS OAM BDUS BMD "
    "DG FID HC LEN M3D PLAN RESP SMR SRF STAIN TG VA XAPLAN ASMT CTPROTOCOL".split()
) | RADIOGRAPH_MODALITIES


def shown_modality(code, unknown: str = "an unrecognised code") -> str:
    """A Modality value as a message may show it: a known code, or `unknown` (never free text)."""
    text = str(code or "").strip().upper()
    return text if text in KNOWN_MODALITIES else unknown


def film_kind(code) -> str | None:
    """What a Modality value says of the film: DR is vendors' word for DX; OT, a missing tag and
    free text say nothing (None); any other known code is itself."""
    text = str(code or "").strip().upper()
    if text == "DR":
        return "DX"
    return text if text in KNOWN_MODALITIES and text != "OT" else None


def accepted_text(modalities=RADIOGRAPH_MODALITIES) -> str:
    """'CR, DR, DX, OT, RG': the codes for a message, built from the set so it cannot drift."""
    return ", ".join(sorted(modalities))
