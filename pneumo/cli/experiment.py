"""Run the paper's protocol from a TOML config into one results JSON (pneumo.experiments.protocol).

    python -m pneumo experiment configs/paper.toml
"""
from __future__ import annotations

import argparse

from pneumo.experiments.config import load as load_config
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
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if args.encoder:
        cfg.encoder.weights = args.encoder
    set_threads()
    log = lambda line: print(line, flush=True)
    results, path = run_experiment(cfg, out_dir=args.out, finetune=args.finetune, progress=log)
    print(summary_table(results))
    if results["comparisons"]:
        print(comparison_table(results))
    print(f"wrote {path} in {results['timing']['wall_seconds']:.0f} s")
    return 0
