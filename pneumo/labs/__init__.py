"""Lab panel schema, catalogue, unit conversion and parsers (CSV, FHIR, dict)."""
from pneumo.labs.catalogue import CATALOGUE, catalogue_by_itemid, default_panel
from pneumo.labs.panel import LabPanel, LabTest
from pneumo.labs.parse import LabIssue, LabReading, parse_labs, read_wide_csv
from pneumo.labs.units import normalize_unit, to_panel_unit

__all__ = ["CATALOGUE", "LabIssue", "LabPanel", "LabReading", "LabTest", "catalogue_by_itemid",
           "default_panel", "normalize_unit", "parse_labs", "read_wide_csv", "to_panel_unit"]
