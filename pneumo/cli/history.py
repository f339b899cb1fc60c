"""`python -m pneumo history`: the most recent logged cases, or retention by hand.

    python -m pneumo history [--limit 50] [--log PATH]
    python -m pneumo history --purge-before YYYY-MM-DD [--log PATH]
"""
from __future__ import annotations

import argparse

from pneumo.service.case_log import CaseLog, utc_stamp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo history", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=50, help="how many cases (default 50)")
    parser.add_argument("--purge-before", metavar="YYYY-MM-DD",
                        help="delete every case logged before this day (00:00 UTC)")
    parser.add_argument("--log", metavar="PATH", help="the case log (default: PNEUMO_HOME/cases.sqlite)")
    args = parser.parse_args(argv)
    if args.purge_before:
        stamp = utc_stamp(args.purge_before)          # a bad date fails before the log is opened
        log = CaseLog(args.log, retention_days=0)
        removed = log.purge_before(args.purge_before)
        print(f"removed {removed} case(s) logged before {stamp[:10]} from {log.path}")
        return 0
    frame = CaseLog(args.log).recent(args.limit)
    print(frame.to_string(index=False) if len(frame) else "no cases logged yet")
    return 0
