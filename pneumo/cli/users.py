"""The users of a shared app: add one or change a password (pneumo.service.auth).

    python -m pneumo users add-user NAME [--admin] [--file PATH]
"""
from __future__ import annotations

import sys
from pathlib import Path

from pneumo import config
from pneumo.service.auth import AuthError, _read_password, add_user


def main(argv: list[str] | None = None) -> int:
    """`python -m pneumo users add-user NAME [--admin] [--file PATH]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pneumo users", description="Users of the pneumo app.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="add a user, or set a user's password and role "
                                          "(password from the terminal, or stdin's first line)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may see every user's cases")
    add.add_argument("--file", help="the users file (default: PNEUMO_USERS_FILE)")
    args = parser.parse_args(argv)
    path = Path(args.file) if args.file else config.users_file()
    if path is None:
        print("pneumo: name the users file with --file or PNEUMO_USERS_FILE", file=sys.stderr)
        return 2
    try:
        new = add_user(path, args.name, _read_password(), admin=args.admin)
    except (AuthError, OSError) as err:
        print(f"pneumo: {err}", file=sys.stderr)
        return 2
    print(f"{'added' if new else 'updated'} {args.name} ({'admin' if args.admin else 'user'}) in {path}")
    return 0
