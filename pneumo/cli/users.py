"""The users of a shared app: add one, change a password, or remove one (pneumo.service.auth).

    python -m pneumo users add-user NAME [--admin] [--file PATH]
    python -m pneumo users remove-user NAME [--file PATH]
"""
from __future__ import annotations

import sys
from pathlib import Path

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.service.auth import AuthError, _read_password, add_user, remove_user
from pneumo.service.sessions import SessionStore


def main(argv: list[str] | None = None) -> int:
    """`python -m pneumo users add-user|remove-user NAME [--admin] [--file PATH]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pneumo users", description="Users of the pneumo app.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="add a user, or set a user's password and role "
                                          "(password from the terminal, or stdin's first line)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may see every user's cases")
    add.add_argument("--file", help="the users file (default: PNEUMO_USERS_FILE)")
    rm = sub.add_parser("remove-user", help="remove a user; their open sessions end at once")
    rm.add_argument("name")
    rm.add_argument("--file", help="the users file (default: PNEUMO_USERS_FILE)")
    args = parser.parse_args(argv)
    path = Path(args.file) if args.file else config.users_file()
    if path is None:
        print("pneumo: name the users file with --file or PNEUMO_USERS_FILE", file=sys.stderr)
        return 2
    if args.command == "remove-user":
        return _remove(path, args.name)
    try:
        new = add_user(path, args.name, _read_password(), admin=args.admin)
    except (AuthError, OSError) as err:
        print(f"pneumo: {err}", file=sys.stderr)
        return 2
    print(f"{'added' if new else 'updated'} {args.name} ({'admin' if args.admin else 'user'}) in {path}")
    return 0


def _remove(path: Path, name: str) -> int:
    try:
        if not remove_user(path, name):
            print(f"pneumo: no user {name} in {path}", file=sys.stderr)
            return 2
    except (AuthError, OSError) as err:
        print(f"pneumo: {err}", file=sys.stderr)
        return 2
    try:   # the app re-reads the users file on every run; this also voids their sign-in cookies
        ended = SessionStore().revoke_user(name)
    except PneumoError as err:
        print(f"removed {name} from {path}; warning: sign-in cookies not revoked: {err}", file=sys.stderr)
        return 0
    print(f"removed {name} from {path}" + (f"; {ended} signed-in browser(s) signed out" if ended else ""))
    return 0
