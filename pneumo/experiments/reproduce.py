"""Does a fresh run of an experiment reproduce a committed results file? Counted, cell by cell.

`python -m pneumo experiment CONFIG --check results/NAME.json` runs the grid, then compares:
- the config and the test cases (the same protocol on the same films, or the comparison means nothing);
- per model, regime and run: the threshold chosen on val, the test confusion counts at it, and every
  per-case test probability.
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
    runs_compared: int = 0
    differences: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = (f"reproduction: {self.verdict} ({self.runs_compared} runs compared; max |Δp| on test "
                f"{self.max_prob_diff:.2g}, max |Δthreshold| {self.max_threshold_diff:.2g})")
        return [head] + [f"  {d}" for d in self.differences[:20]] + (
            [f"  ... and {len(self.differences) - 20} more"] if len(self.differences) > 20 else [])


def _config(results: dict) -> dict:
    cfg = dict(results.get("config", {}))
    film = dict(cfg.get("film", {}) or {})
    film.pop("max_minutes", None)      # a safety net, not the protocol (a run it stops is flagged)
    return cfg | {"film": film}


def compare(fresh: dict, committed: dict) -> Reproduction:
    """How far `fresh` (a results dict just written) is from `committed` (the file in results/)."""
    if _config(fresh) != _config(committed):
        keys = sorted(k for k in set(_config(fresh)) | set(_config(committed))
                      if _config(fresh).get(k) != _config(committed).get(k))
        return Reproduction("not comparable", differences=[f"the configs differ in: {', '.join(keys)}"])
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
        p_new, p_old = np.asarray(new["test_cases"]["p"], float), np.asarray(old["test_cases"]["p"], float)
        if p_new.shape != p_old.shape:
            out.differences.append(f"{key[0]}/{key[1]}: {len(p_new)} runs, committed {len(p_old)}")
            continue
        out.max_prob_diff = max(out.max_prob_diff, float(np.abs(p_new - p_old).max(initial=0.0)))
        for run_new, run_old in zip(new["runs"], old["runs"]):
            out.runs_compared += 1
            out.max_threshold_diff = max(out.max_threshold_diff, abs(run_new["threshold"] - run_old["threshold"]))
            got, want = [run_new["test"][c] for c in COUNTS], [run_old["test"][c] for c in COUNTS]
            if got != want:
                out.differences.append(f"{key[0]}/{key[1]} seed {run_new['seed']}: test tp/fp/fn/tn {got}, "
                                       f"committed {want}")
    out.differences += [f"{m}/{r}: only in the committed file" for m, r in entries]
    if out.differences:
        out.verdict = "differs"
    elif out.max_prob_diff > 0 or out.max_threshold_diff > 0:
        out.verdict = "same answers"
    return out
