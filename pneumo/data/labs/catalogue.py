"""Every lab test pneumo knows: MIMIC-IV itemids and LOINC codes (from d_labitems, Blood fluid),
units as MIMIC reports them written in UCUM, adult reference ranges, wide plausible limits."""
from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

from pneumo.data.labs.panel import LabPanel, LabTest
from pneumo.errors import LabError

T = LabTest
_TESTS = [
    # basic metabolic panel (MIMIC "Chemistry")
    T("sodium", "Sodium", 50983, "2951-2", "meq/L", 135, 145, 90, 200, aliases=("na", "na+", "serum sodium", "2947-0")),
    T("potassium", "Potassium", 50971, "2823-3", "meq/L", 3.5, 5.1, 1, 12, aliases=("k", "k+", "serum potassium", "6298-4")),
    T("chloride", "Chloride", 50902, "2075-0", "meq/L", 96, 108, 50, 160, aliases=("cl", "cl-", "2069-3")),
    T("bicarbonate", "Bicarbonate", 50882, "1963-8", "meq/L", 22, 32, 2, 60,
      aliases=("hco3", "hco3-", "bicarb", "total co2", "tco2", "co2", "2028-9")),
    T("anion_gap", "Anion gap", 50868, "1863-0", "meq/L", 8, 20, 0, 70, aliases=("ag", "anion gap")),
    T("bun", "Urea nitrogen (BUN)", 51006, "3094-0", "mg/dL", 6, 20, 1, 300,
      aliases=("urea nitrogen", "blood urea nitrogen", "urea_nitrogen", "bun")),
    T("creatinine", "Creatinine", 50912, "2160-0", "mg/dL", 0.5, 1.2, 0.1, 30, aliases=("creat", "cr", "scr", "serum creatinine")),
    T("glucose", "Glucose", 50931, "6777-7", "mg/dL", 70, 100, 10, 2000, aliases=("glu", "blood glucose", "2345-7", "2339-0")),
    T("magnesium", "Magnesium", 50960, "2601-3", "mg/dL", 1.6, 2.6, 0.2, 10, aliases=("mg", "mg2+", "19123-9")),
    T("phosphate", "Phosphate", 50970, "2777-1", "mg/dL", 2.7, 4.5, 0.2, 20, aliases=("phos", "phosphorus", "po4")),
    T("calcium", "Calcium (total)", 50893, "2000-8", "mg/dL", 8.4, 10.3, 2, 20,
      aliases=("ca", "calcium, total", "total calcium", "calcium_total", "17861-6")),
    # complete blood count (MIMIC "Hematology")
    T("wbc", "White blood cells", 51301, "804-5", "10*3/uL", 4.0, 11.0, 0, 500,
      aliases=("white blood cells", "white blood cell count", "wbc count", "leukocytes", "6690-2", "26464-8")),
    T("rbc", "Red blood cells", 51279, "789-8", "10*6/uL", 4.2, 6.1, 0.5, 10,
      aliases=("red blood cells", "red blood cell count", "rbc count", "erythrocytes", "26453-1")),
    T("hemoglobin", "Hemoglobin", 51222, "718-7", "g/dL", 12.0, 17.5, 1, 25, aliases=("hgb", "hb", "haemoglobin", "30313-1")),
    T("hematocrit", "Hematocrit", 51221, "4544-3", "%", 36, 52, 3, 75, aliases=("hct", "haematocrit", "pcv", "20570-8")),
    T("platelets", "Platelet count", 51265, "777-3", "10*3/uL", 150, 440, 0, 3000,
      aliases=("plt", "platelet", "platelet count", "thrombocytes", "26515-7")),
    T("mcv", "Mean corpuscular volume (MCV)", 51250, "787-2", "fL", 82, 98, 40, 150, aliases=("mean corpuscular volume",)),
    T("mch", "Mean corpuscular hemoglobin (MCH)", 51248, "785-6", "pg", 27, 32, 10, 60, aliases=("mean corpuscular hemoglobin",)),
    T("mchc", "Mean corpuscular hemoglobin concentration (MCHC)", 51249, "786-4", "g/dL", 31, 37, 15, 50,
      aliases=("mean corpuscular hemoglobin concentration",)),
    T("rdw", "Red cell distribution width (RDW)", 51277, "788-0", "%", 10.5, 15.5, 5, 40,
      aliases=("red cell distribution width", "rdw-cv")),
    # common extras (not in the MIMIC-demo selection)
    T("lactate", "Lactate", 50813, "2524-7", "mmol/L", 0.5, 2.0, 0.1, 30, aliases=("lactic acid", "lac", "32693-4")),
    T("crp", "C-reactive protein", 50889, "1988-5", "mg/L", 0, 5, 0, 700, aliases=("c-reactive protein", "c reactive protein")),
    T("procalcitonin", "Procalcitonin", None, "33959-8", "ng/mL", 0, 0.5, 0, 1000, aliases=("pct", "75241-0")),
    T("neutrophils_pct", "Neutrophils (%)", 51256, "761-7", "%", 50, 70, 0, 100, aliases=("neutrophils", "neut %", "neut", "770-8")),
    T("lymphocytes_pct", "Lymphocytes (%)", 51244, "731-0", "%", 18, 42, 0, 100, aliases=("lymphocytes", "lymph %", "lymph", "736-9")),
    T("albumin", "Albumin", 50862, "1751-7", "g/dL", 3.5, 5.2, 0.5, 7, aliases=("alb",)),
    T("bilirubin_total", "Bilirubin (total)", 50885, "1975-2", "mg/dL", 0, 1.5, 0, 60,
      aliases=("bilirubin", "bilirubin, total", "total bilirubin", "tbil", "t bili")),
    T("alt", "Alanine aminotransferase (ALT)", 50861, "1742-6", "U/L", 0, 40, 0, 20000,
      aliases=("alanine aminotransferase", "alanine aminotransferase (alt)", "sgpt", "alat")),
    T("ast", "Aspartate aminotransferase (AST)", 50878, "1920-8", "U/L", 0, 40, 0, 30000,
      aliases=("aspartate aminotransferase", "asparate aminotransferase (ast)", "sgot", "asat")),
    T("inr", "INR", 51237, "5895-7", "{INR}", 0.9, 1.1, 0.5, 20, aliases=("inr(pt)", "inr (pt)", "34714-6", "6301-6")),
    T("pt", "Prothrombin time (PT)", 51274, "5902-2", "s", 9.4, 12.5, 5, 150, aliases=("prothrombin time",)),
    T("ptt", "Partial thromboplastin time (PTT)", 51275, "5898-2", "s", 25, 36.5, 10, 250,
      aliases=("aptt", "partial thromboplastin time", "3173-2", "14979-9")),
    T("ph", "pH (blood gas)", 50820, "11558-4", "[pH]", 7.35, 7.45, 6.5, 8.0, aliases=("blood ph", "2744-1")),
    T("po2", "pO2 (blood gas)", 50821, "11556-8", "mm[Hg]", 85, 105, 10, 700, aliases=("pao2", "2703-7")),
    T("pco2", "pCO2 (blood gas)", 50818, "11557-6", "mm[Hg]", 35, 45, 5, 200, aliases=("paco2", "2019-8")),
]
del T

CATALOGUE: dict[str, LabTest] = {t.key: t for t in _TESTS}
_BY_ITEMID = {t.itemid: t for t in _TESTS if t.itemid is not None}


def catalogue_by_itemid(itemid) -> LabTest | None:
    """The catalogue test for a MIMIC-IV itemid (a copy), or None."""
    try:
        test = _BY_ITEMID.get(int(itemid))
    except (TypeError, ValueError):
        return None
    return replace(test) if test is not None else None


def panel_of(keys: list[str]) -> LabPanel:
    """A panel of catalogue tests in the given order; LabError names any unknown key."""
    missing = [k for k in keys if k not in CATALOGUE]
    if missing:
        raise LabError(f"unknown lab test keys: {missing}")
    return LabPanel([replace(CATALOGUE[k]) for k in keys])


def default_panel() -> LabPanel:
    """The shipped panel: the 20 tests the paper-style selection keeps on the MIMIC-IV demo."""
    text = resources.files("pneumo.data.labs").joinpath("default_panel.json").read_text(encoding="utf-8")
    return LabPanel.from_dict(json.loads(text))
