"""`cartwatch users add|revoke|list`: local accounts of the API (streams/storage/users.py)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from cartwatch.streams.worker.settings import Settings

if TYPE_CHECKING:  # the parser is built on every `cartwatch` run: no database imports
    from sqlalchemy import Engine


def add_user_commands(
    sub: argparse._SubParsersAction, add_setting_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add `users` with its sub-commands; settings options go on the leaves."""
    users = sub.add_parser("users", help="local accounts of the HTTP API")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add = users_sub.add_parser("add", help="create an account and print its token, once")
    add.add_argument("name", help="who: shown as who acknowledged an alert")
    add.add_argument(
        "--role",
        action="append",
        default=[],
        help="viewer, physician, data-manager or admin (repeatable)",
    )
    revoke = users_sub.add_parser("revoke", help="revoke an account's token, at once")
    revoke.add_argument("name", help="the account")
    listing = users_sub.add_parser("list", help="print the accounts (never a token)")
    for leaf in (add, revoke):
        leaf.add_argument("--actor", default=getpass.getuser(), help="who, for the audit log")
    for leaf in (add, revoke, listing):
        add_setting_options(leaf)


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch users add|revoke|list` against the configured database."""
    from cartwatch.streams.storage.engine import make_engine
    from cartwatch.streams.storage.errors import StorageError

    engine = make_engine(settings.database_url)
    try:
        return _COMMANDS[args.users_command](engine, args)
    except (StorageError, ValueError) as exc:
        print(f"cartwatch users {args.users_command}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _add(engine: Engine, args: argparse.Namespace) -> int:
    from cartwatch.streams.http.identity import parse_roles
    from cartwatch.streams.storage.users import add_user

    roles = parse_roles(args.role)
    if not roles:
        raise ValueError("give the account a role: --role ROLE (repeatable)")
    token = add_user(engine, args.name, roles, actor=args.actor)
    print(token)
    print(
        f"users add: {args.name} ({', '.join(sorted(roles))}) added; the token above is "
        "shown this once (only its hash is stored)",
        file=sys.stderr,
    )
    return 0


def _revoke(engine: Engine, args: argparse.Namespace) -> int:
    from cartwatch.streams.storage.users import revoke_user

    done = revoke_user(engine, args.name, actor=args.actor)
    what = "revoked" if done else "was revoked before"
    print(f"users revoke: {args.name} {what}", file=sys.stderr)
    return 0


def _list(engine: Engine, args: argparse.Namespace) -> int:
    from cartwatch.streams.storage.users import list_users

    for user in list_users(engine):
        status = f"revoked {user['revoked_at']}" if user["revoked_at"] else "active"
        print(f"{user['name']}\t{','.join(user['roles'])}\t{user['created_at']}\t{status}")
    return 0


_COMMANDS = {"add": _add, "revoke": _revoke, "list": _list}
