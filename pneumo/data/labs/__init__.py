"""Lab panel schema, catalogue, unit conversion and parsers (CSV, FHIR, dict)."""
from pneumo.data.labs.catalogue import CATALOGUE, catalogue_by_itemid, default_panel, panel_of
from pneumo.data.labs.panel import LabPanel, LabTest
from pneumo.data.labs.parse import LabIssue, LabReading, parse_labs, read_wide_csv
from pneumo.data.labs.units import normalize_unit, to_panel_unit

__all__ = ["CATALOGUE", "LabIssue", "LabPanel", "LabReading", "LabTest", "catalogue_by_itemid",
           "default_panel", "normalize_unit", "panel_of", "parse_labs", "read_wide_csv", "to_panel_unit"]
