"""Compose trained fusion bundles into one seed-ensemble bundle (pneumo.training.ensemble).

    python -m pneumo ensemble --preset shipped --out models/pneumo-fusion
    python -m pneumo ensemble --members runs/a runs/b runs/c --out runs/ens --version 1.4.0
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pneumo.errors import PneumoError
from pneumo.training.ensemble import PRESETS, build, train_members


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pneumo ensemble", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--members", nargs="+", help="member bundle folders (single models)")
    src.add_argument("--preset", choices=sorted(PRESETS), help="train the preset's seed members first when absent")
    ap.add_argument("--members-dir", default="runs/members", help="where --preset keeps its members")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="pneumo-fusion")
    ap.add_argument("--version")
    ap.add_argument("--cohort", default="kermany+mimic", help="the cohort whose val split calibrates it")
    ap.add_argument("--seed", type=int, default=0, help="the cohort's pairing seed")
    ap.add_argument("--no-reference", action="store_true", help="skip the gate/SHAP reference set")
    a = ap.parse_args(argv)
    try:
        members = a.members or train_members(a.preset, Path(a.members_dir))
        version = a.version or (PRESETS[a.preset]["version"] if a.preset else "1.4.0")
        build(members, a.out, name=a.name, version=version, cohort_spec=a.cohort, seed=a.seed,
              reference=not a.no_reference)
        from pneumo.models.runtime_export import export_runtime   # TensorFlow: the ensemble's fast inference graph
        export_runtime(a.out)
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
