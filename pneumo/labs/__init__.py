"""Lab panel schema, catalogue, unit conversion and parsers (CSV, FHIR, dict)."""
from pneumo.labs.catalogue import CATALOGUE, catalogue_by_itemid, default_panel
from pneumo.labs.panel import LabPanel, LabTest

__all__ = ["CATALOGUE", "LabPanel", "LabTest", "catalogue_by_itemid", "default_panel"]
