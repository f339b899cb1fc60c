"""Does a fresh run of an experiment reproduce a committed results file? Counted, cell by cell.

`python -m pneumo experiment CONFIG --check results/NAME.json` runs the grid, then compares:
- the config and the test cases (the same protocol on the same films, or the comparison means nothing);
- per model, regime and run: the threshold chosen on val, the test confusion counts at it, and every
  per-case test probability.
`--runs N` runs the first N seeds only (a run of the same-source grid is about 10 minutes) and
compares those runs with the committed file's runs of the same seeds.
Verdicts: "bit for bit" (every probability and threshold equal), "same answers" (every run's
confusion counts equal, the probabilities off by float rounding), "differs" (some count differs).
Training on one machine with the same threads is deterministic (the film network twice: max |diff|
0.0); another CPU's kernels round differently, and training can grow that into another decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COUNTS = ("tp", "fp", "fn", "tn")


@dataclass
class Reproduction:
    verdict: str                       # "bit for bit" | "same answers" | "differs" | "not comparable"
    max_prob_diff: float = 0.0
    max_threshold_diff: float = 0.0
    runs_compared: int = 0             # fits: model x regime x run
    differences: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = (f"reproduction: {self.verdict} ({self.runs_compared} fits compared; max |Δp| on test "
                f"{self.max_prob_diff:.2g}, max |Δthreshold| {self.max_threshold_diff:.2g})")
        return [head] + [f"  {d}" for d in self.differences[:20]] + (
            [f"  ... and {len(self.differences) - 20} more"] if len(self.differences) > 20 else [])


def _config(results: dict) -> dict:
    """The protocol: the config less what does not change a run's result (the time budget, a safety
    net that flags a run it stops; which seeds were run, compared seed by seed)."""
    cfg = {k: v for k, v in results.get("config", {}).items() if k not in ("runs", "seeds")}
    film = dict(cfg.get("film", {}) or {})
    film.pop("max_minutes", None)
    return cfg | {"film": film}


def compare(fresh: dict, committed: dict) -> Reproduction:
    """How far `fresh` (a results dict just written) is from `committed` (the file in results/).
    Fresh runs are matched to committed ones by seed, so a fresh subset of the seeds can be checked."""
    if _config(fresh) != _config(committed):
        keys = sorted(k for k in set(_config(fresh)) | set(_config(committed))
                      if _config(fresh).get(k) != _config(committed).get(k))
        return Reproduction("not comparable", differences=[f"the configs differ in: {', '.join(keys)}"])
    missing = sorted(set(fresh.get("seeds", [])) - set(committed.get("seeds", [])))
    if missing:
        return Reproduction("not comparable", differences=[f"seeds {missing} are not in the committed file"])
    entries = {(e["model"], e["regime"]): e for e in committed.get("entries", [])}
    out = Reproduction("bit for bit")
    for new in fresh.get("entries", []):
        key = (new["model"], new["regime"])
        old = entries.pop(key, None)
        if old is None:
            out.differences.append(f"{key[0]}/{key[1]}: not in the committed file")
            continue
        if new["test_cases"]["case_id"] != old["test_cases"]["case_id"]:
            return Reproduction("not comparable", differences=[f"{key[0]}/{key[1]}: other test cases"])
        old_runs = {run["seed"]: (run, p) for run, p in zip(old["runs"], old["test_cases"]["p"])}
        for run_new, p_run in zip(new["runs"], new["test_cases"]["p"]):
            run_old, p_old = old_runs[run_new["seed"]]
            out.runs_compared += 1
            out.max_prob_diff = max(out.max_prob_diff, float(np.abs(np.subtract(p_run, p_old)).max(initial=0.0)))
            out.max_threshold_diff = max(out.max_threshold_diff, abs(run_new["threshold"] - run_old["threshold"]))
            got, want = [run_new["test"][c] for c in COUNTS], [run_old["test"][c] for c in COUNTS]
            if got != want:
                out.differences.append(f"{key[0]}/{key[1]} seed {run_new['seed']}: test tp/fp/fn/tn {got}, "
                                       f"committed {want}")
    out.differences += [f"{m}/{r}: only in the committed file" for m, r in entries]   # the same models and regimes
    if out.differences:
        out.verdict = "differs"
    elif out.max_prob_diff > 0 or out.max_threshold_diff > 0:
        out.verdict = "same answers"
    return out
