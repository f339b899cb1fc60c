"""Run the paper's protocol from a TOML config into one results JSON (pneumo.experiments.protocol).

    python -m pneumo experiment configs/paper.toml
    python -m pneumo experiment configs/paper-same-source.toml --out /tmp/again --check results/paper-same-source.json
"""
from __future__ import annotations

import argparse

from pneumo.experiments import reproduce
from pneumo.experiments.config import load as load_config
from pneumo.experiments.paper_tables import load_results
from pneumo.experiments.protocol import run_experiment
from pneumo.experiments.results_json import comparison_table, summary_table
from pneumo.training.backbone import set_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo experiment", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="experiment config (TOML), e.g. configs/paper.toml")
    parser.add_argument("--out", default=None, help="results folder (default: the repository's results/)")
    parser.add_argument("--finetune", action="store_true",
                        help="train the whole network end to end per fit instead of caching frozen embeddings (GPU)")
    parser.add_argument("--encoder", default=None,
                        help="override encoder.weights: 'bundle', a bundle folder, an encoder .weights.h5, or 'random'")
    parser.add_argument("--check", default=None, metavar="RESULTS_JSON",
                        help="compare the fresh results with this committed file, cell by cell; exit 1 if a count differs")
    parser.add_argument("--runs", type=int, default=None, metavar="N",
                        help="run only the config's first N seeds (with --check: compare those runs)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    committed = load_results(args.check) if args.check else None   # read first: --out may overwrite it
    if args.encoder:
        cfg.encoder.weights = args.encoder
    if args.runs is not None:
        if not 1 <= args.runs <= cfg.runs:
            parser.error(f"--runs must be between 1 and the config's {cfg.runs}")
        cfg.runs, cfg.seeds = args.runs, cfg.seeds[:args.runs]
    set_threads()
    log = lambda line: print(line, flush=True)
    results, path = run_experiment(cfg, out_dir=args.out, finetune=args.finetune, progress=log)
    print(summary_table(results))
    if results["comparisons"]:
        print(comparison_table(results))
    print(f"wrote {path} in {results['timing']['wall_seconds']:.0f} s")
    if committed is None:
        return 0
    check = reproduce.compare(results, committed)
    print("\n".join(check.lines()))
    return 0 if check.verdict in ("bit for bit", "same answers") else 1
