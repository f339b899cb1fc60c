"""The Cohort table every data source returns, and the seeded patient-level splitter they share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pneumo.data.labs.panel import LabPanel
from pneumo.errors import CohortError

SPLITS = ("train", "val", "test")
BASE_COLUMNS = ("case_id", "patient_id", "image_path", "label", "split", "source")
LABEL_NAMES = {0: "NORMAL", 1: "PNEUMONIA"}
PAPER_PRESETS = {"paper": {"n_pos": 50, "n_neg": 500}}   # Ivanova et al. 2024: 50 pneumonia vs 500 other


@dataclass
class Cohort:
    """One row per case: ids, image path (absolute str or None), label (1 = PNEUMONIA), split,
    source, and one float column per lab key of `panel` (NaN = missing). Extra columns are kept."""

    frame: pd.DataFrame
    panel: LabPanel | None
    name: str
    description: dict = field(default_factory=dict)
    semi_real: bool = False

    def __post_init__(self):
        missing = [c for c in BASE_COLUMNS if c not in self.frame.columns]
        if missing:
            raise CohortError(f"cohort {self.name!r} frame lacks columns {missing}")
        if self.panel is not None:
            absent = [k for k in self.panel.keys if k not in self.frame.columns]
            if absent:
                raise CohortError(f"cohort {self.name!r} frame lacks lab columns {absent}")
        bad = sorted(set(self.frame["split"].dropna()) - set(SPLITS))
        if bad:
            raise CohortError(f"cohort {self.name!r} has unknown splits {bad}; expected {list(SPLITS)}")

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"Cohort({self.name!r}, n={len(self)}, labs={len(self.lab_keys)}, semi_real={self.semi_real})"

    @property
    def lab_keys(self) -> list[str]:
        return list(self.panel.keys) if self.panel is not None else []

    @property
    def has_images(self) -> bool:
        return bool(self.frame["image_path"].notna().any())

    def split(self, name: str) -> "Cohort":
        """The rows of one split ("train", "val" or "test") as a Cohort with the same panel."""
        if name not in SPLITS:
            raise CohortError(f"unknown split {name!r}; expected one of {list(SPLITS)}")
        sub = self.frame[self.frame["split"] == name].reset_index(drop=True)
        desc = dict(self.description, split=name)
        return Cohort(sub, self.panel, f"{self.name} [{name}]", desc, self.semi_real)

    def counts(self) -> pd.DataFrame:
        """Split x label case counts (rows train/val/test present, columns 0 and 1, plus total)."""
        return count_table(self.frame)

    def lab_matrix(self, keys: Sequence[str] | None = None) -> np.ndarray:
        """(n, k) float array of lab values in panel order (or `keys`), NaN where missing."""
        keys = list(keys) if keys is not None else self.lab_keys
        absent = [k for k in keys if k not in self.frame.columns]
        if absent:
            raise CohortError(f"cohort {self.name!r} has no lab columns {absent}")
        return self.frame[keys].to_numpy(dtype=np.float64) if keys else np.zeros((len(self), 0))


def count_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Split x label counts with a total column; splits in train/val/test order."""
    splits = [s for s in SPLITS if (frame["split"] == s).any()]
    table = pd.crosstab(frame["split"], frame["label"]).reindex(index=splits, columns=[0, 1], fill_value=0)
    table = table.astype(int)
    table["total"] = table.sum(axis=1)
    table.index.name, table.columns.name = "split", "label"
    return table


def counts_dict(frame: pd.DataFrame, names: Sequence[str] = ("NORMAL", "PNEUMONIA")) -> dict:
    """JSON-friendly counts: {split: {"NORMAL": n, "PNEUMONIA": n, "total": n}} (label names as given)."""
    table = count_table(frame)
    return {s: {names[0]: int(r[0]), names[1]: int(r[1]), "total": int(r["total"])}
            for s, r in table.iterrows()}


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split n items by fractions (largest remainder); every positive fraction gets >= 1 when n allows."""
    f = np.asarray(fractions, dtype=float) / float(np.sum(fractions))
    raw = f * n
    sizes = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - sizes), kind="stable")[: n - sizes.sum()]:
        sizes[i] += 1
    # a split with no case of a class cannot be evaluated, so borrow one from the largest part
    wanted = [i for i in range(len(f)) if f[i] > 0]
    if n >= len(wanted):
        for i in wanted:
            if sizes[i] == 0:
                sizes[int(np.argmax(sizes))] -= 1
                sizes[i] += 1
    return sizes.tolist()


def sample_by_split(frame: pd.DataFrame, n_pos: int, n_neg: int, fractions: Sequence[float],
                    rng: np.random.Generator) -> pd.DataFrame:
    """n_pos / n_neg rows overall, allocated to the splits by `fractions`, without replacement."""
    parts = []
    for label, n in ((1, n_pos), (0, n_neg)):
        for split, size in zip(SPLITS, _allocate(n, fractions)):
            pool = frame[(frame["split"] == split) & (frame["label"] == label)]
            if size > len(pool):
                raise CohortError(f"asked for {size} {split} cases of class {label}, the cohort has {len(pool)}")
            parts.append(pool.iloc[np.sort(rng.choice(len(pool), size, replace=False))])
    return pd.concat(parts)


def split_groups(group_labels: pd.Series, fractions: Sequence[float], seed: int,
                 names: Iterable[str] = SPLITS) -> dict:
    """Assign each group (patient) to a split, stratified by its label, seeded.

    group_labels: index = group id, value = the group's class (0/1).
    fractions: one per split name (need not sum to 1; they are normalised).
    Returns {group id: split name}."""
    names = list(names)
    if len(fractions) != len(names) or any(x < 0 for x in fractions) or sum(fractions) <= 0:
        raise CohortError(f"split fractions must be {len(names)} non-negative numbers, got {tuple(fractions)}")
    rng = np.random.default_rng(seed)
    out: dict = {}
    for cls in sorted(group_labels.unique()):
        groups = np.array(sorted(group_labels.index[group_labels == cls]), dtype=object)
        groups = groups[rng.permutation(len(groups))]
        start = 0
        for name, size in zip(names, _allocate(len(groups), fractions)):
            out.update({g: name for g in groups[start:start + size]})
            start += size
    return out


def cycle_draw(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n items from pool, reuse balanced: concatenated fresh shuffles of the pool (not iid draws)."""
    if len(pool) == 0:
        raise CohortError("cannot draw from an empty pool")
    reps = -(-n // len(pool))
    return np.concatenate([pool[rng.permutation(len(pool))] for _ in range(reps)])[:n]
