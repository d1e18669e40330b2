"""Local accounts: issue a token once, keep only its hash, look it up, revoke it.

A token is `cw_` and 32 random bytes (secrets.token_urlsafe: 256 bits). Only its SHA-256
is stored. A slow, salted password hash (bcrypt, scrypt) exists to make guessing a
*human-chosen* secret expensive; a 256-bit random token cannot be guessed, so one fast
hash loses nothing, and it lets the worker find the account by an indexed lookup on
every request (a salted hash could not be looked up). For the same reason comparing the
hash in SQL needs no constant-time care: timing can reveal at most a prefix of a hash,
and no preimage of a hash can be found.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from cartwatch.streams.storage.audit import append_audit
from cartwatch.streams.storage.engine import now, utc
from cartwatch.streams.storage.errors import InvalidUser, UserExists, UserNotFound
from cartwatch.streams.storage.schema import users

TOKEN_PREFIX = "cw_"
USER_ADDED = "user.added"
USER_REVOKED = "user.revoked"

# 128: the width of users.name, alerts.acknowledged_by and audit_log.actor. Letters,
# digits and . _ @ + - only: a name is shown as who acknowledged an alert.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


@dataclass(frozen=True)
class Account:
    """A local account that may act: its name and its roles."""

    name: str
    roles: frozenset[str]


def token_hash(token: str) -> str:
    """The SHA-256 of a token, in hex: what the users table keeps (module docstring)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def add_user(engine: Engine, name: str, roles: Iterable[str], *, actor: str) -> str:
    """Create an account and audit it; returns its token, which is not kept anywhere."""
    roles = sorted(set(roles))
    if not _NAME.fullmatch(name):
        raise InvalidUser(
            f"name {name!r}: 1-128 letters, digits or . _ @ + -, starting with a letter or digit"
        )
    if not roles:
        raise InvalidUser("an account needs at least one role")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = {"name": name, "roles": roles, "token_hash": token_hash(token), "created_at": now()}
    try:
        with engine.begin() as conn:
            conn.execute(insert(users).values(row))
            audit = {"action": USER_ADDED, "subject": f"user:{name}", "details": {"roles": roles}}
            append_audit(conn, actor=actor, **audit)
    except IntegrityError:
        raise UserExists(f"user {name} exists (names of revoked users are not reused)") from None
    return token


def revoke_user(engine: Engine, name: str, *, actor: str) -> bool:
    """Revoke an account's token at once and audit it; False when it was revoked before."""
    revoke = (
        update(users)
        .where(users.c.name == name, users.c.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    with engine.begin() as conn:
        if conn.execute(revoke).rowcount == 1:
            append_audit(conn, actor=actor, action=USER_REVOKED, subject=f"user:{name}")
            return True
        if conn.execute(select(users.c.name).where(users.c.name == name)).first() is None:
            raise UserNotFound(f"no user {name}")
    return False


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every account by name, revoked ones too; never a token nor its hash."""
    columns = (users.c.name, users.c.roles, users.c.created_at, users.c.revoked_at)
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(users.c.name)).mappings().all()
    return [
        {
            **row,
            "created_at": utc(row["created_at"]).isoformat(),
            "revoked_at": row["revoked_at"] and utc(row["revoked_at"]).isoformat(),
        }
        for row in rows
    ]


def active_account(engine: Engine, token: str) -> Account | None:
    """The unrevoked account the token was issued to, or None."""
    stmt = select(users.c.name, users.c.roles).where(
        users.c.token_hash == token_hash(token), users.c.revoked_at.is_(None)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else Account(row.name, frozenset(row.roles))


def any_users(engine: Engine) -> bool:
    """Whether an account was ever created (revoked ones count)."""
    with engine.connect() as conn:
        return conn.execute(select(users.c.name).limit(1)).first() is not None
