"""Speed and memory of the shipped model, as JSON (pneumo.qa.bench).

    python -m pneumo bench [--parts LIST] [--n 30] [--out bench/out/bench.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.qa.bench import DEFAULT_PARTS, PARTS, run
from pneumo.qa.bench_report import markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pneumo bench", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="bundle folder (default: the shipped model)")
    ap.add_argument("--n", type=int, default=30, help="cases for the per-case timings (default 30)")
    ap.add_argument("--parts", default=DEFAULT_PARTS, help=f"comma-separated of {', '.join(PARTS)}, or all")
    ap.add_argument("--batch-limit", type=int, default=0, help="images for the batch part (default 0: all 624)")
    ap.add_argument("--grid-config", default=str(config.REPO_ROOT / "configs" / "paper.toml"),
                    help="experiment config the grid part runs (default configs/paper.toml)")
    ap.add_argument("--grid-timeout", type=float, default=1800, help="seconds before the grid is stopped")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each cold process in the runtime part (default 3)")
    ap.add_argument("--out", default="bench/out/bench.json", help="JSON output (default bench/out/bench.json)")
    args = ap.parse_args(argv)
    parts = list(PARTS) if args.parts.strip() == "all" else [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise PneumoError(f"unknown bench part(s) {', '.join(unknown) or '(none given)'}; one of {', '.join(PARTS)}")
    if args.n < 1 or args.repeats < 1:
        raise PneumoError("--n and --repeats must be at least 1")
    model = Path(args.model) if args.model else config.default_model_dir()
    if not (model / "bundle.json").is_file():
        raise PneumoError(f"no model bundle at {model}; pass --model DIR")
    report = run(model, parts, args.n, args.batch_limit or None, args.grid_timeout, Path(args.grid_config),
                 log=lambda s: print(s, file=sys.stderr, flush=True), repeats=args.repeats)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(markdown(report))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0
