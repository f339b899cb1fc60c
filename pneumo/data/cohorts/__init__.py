"""Data sources -> one Cohort table: kermany (images), mimic (labs, optional MIMIC-CXR images),
real_pairs (MIMIC-IV labs with the same stay's MIMIC-CXR-JPG film), paired (semi-real image + lab
cohorts), same_source (the paper's 550 films from one Kermany release, paired with labs), manifest
(a user's CSV), synthetic (tests only)."""
from pneumo.data.cohorts import kermany, manifest, mimic, mimic_cxr, paired, real_pairs, same_source, synthetic
from pneumo.data.cohorts.base import SPLITS, Cohort, count_table, counts_dict, split_groups
from pneumo.data.cohorts.manifest import resolve_inside

__all__ = ["SPLITS", "Cohort", "count_table", "counts_dict", "kermany", "manifest", "mimic", "mimic_cxr",
           "paired", "real_pairs", "resolve_inside", "same_source", "split_groups", "synthetic"]
