"""Data sources -> one Cohort table: kermany (images), mimic (labs, optional MIMIC-CXR images),
paired (semi-real image + lab cohorts), manifest (a user's CSV), synthetic (tests only)."""
from pneumo.data.cohorts import kermany, manifest, mimic, mimic_cxr, paired, synthetic
from pneumo.data.cohorts.base import SPLITS, Cohort, count_table, counts_dict, split_groups
from pneumo.data.cohorts.manifest import resolve_inside

__all__ = ["SPLITS", "Cohort", "count_table", "counts_dict", "kermany", "manifest", "mimic", "mimic_cxr",
           "paired", "resolve_inside", "split_groups", "synthetic"]
