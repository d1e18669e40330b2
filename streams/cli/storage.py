"""`cartwatch db upgrade` and `cartwatch dlq list|show|replay`: parsers and what they do."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cartwatch.streams.worker.settings import Settings

if TYPE_CHECKING:  # the parser is built on every `cartwatch` run: no database imports
    from sqlalchemy import Engine

    from cartwatch.streams.storage.redrive import Sender


def add_storage_commands(
    sub: argparse._SubParsersAction, add_setting_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add `db` and `dlq` with their sub-commands; settings options go on the leaves."""
    db = sub.add_parser("db", help="database schema (migrations)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="migrate CARTWATCH_DATABASE_URL to the latest")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")

    dlq = sub.add_parser("dlq", help="dead letters stored in the database")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    listing = dlq_sub.add_parser("list", help="print a page of dead letters, newest first")
    listing.add_argument("--status", choices=["new", "redriven"], help="only this status")
    listing.add_argument("--limit", type=_page_limit, default=100, help="at most this many")
    listing.add_argument("--after", type=_dead_letter_id, help="the next page: ids below this")
    listing.add_argument(
        "--values", action="store_true", help="print each original message up to 64 KiB"
    )
    show = dlq_sub.add_parser("show", help="write one dead letter's original bytes to stdout")
    show.add_argument("--id", type=_dead_letter_id, required=True, help="the dead letter's id")
    replay = dlq_sub.add_parser("replay", help="re-drive one dead letter to its type's topic")
    replay.add_argument("--id", type=int, required=True, help="the dead letter's id")
    replay.add_argument("--file", type=Path, help="a corrected message to send instead")
    replay.add_argument("--actor", default=getpass.getuser(), help="who, for the audit log")
    for leaf in (upgrade, listing, show, replay):
        add_setting_options(leaf)


def _page_limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError("a whole number from 1 to 1000")
    return int(text)


def _dead_letter_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("a dead letter's id, a whole number")
    return int(text)


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch db upgrade`."""
    from cartwatch.streams.storage.migrate import upgrade

    upgrade(settings.database_url, args.revision)
    print(f"db: upgraded to {args.revision}", file=sys.stderr)
    return 0


def run_dlq(args: argparse.Namespace, settings: Settings, send: Sender | None = None) -> int:
    """`cartwatch dlq list|show|replay`; `send` defaults to a Kafka producer (acks=all)."""
    from cartwatch.streams.storage.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        if args.dlq_command == "list":
            return _list(engine, args)
        if args.dlq_command == "show":
            return _show(engine, args)
        sender = send if send is not None else _KafkaSender(settings)
        return _replay(engine, args, settings, sender)
    finally:
        engine.dispose()


def _list(engine: Engine, args: argparse.Namespace) -> int:
    from cartwatch.streams.storage.dead_letters import dead_letter_page

    page = dead_letter_page(engine, status=args.status, limit=args.limit, after=args.after)
    for d in page.dead_letters:
        print(_summary(d))
        if args.values and d["value_omitted"]:
            print(f"\t({d['value_size']} bytes, left out: cartwatch dlq show --id {d['id']})")
        elif args.values:
            print(f"\t{d['value']}")
    if page.next is not None:
        print(f"dlq list: older dead letters: --after {page.next}", file=sys.stderr)
    return 0


def _summary(d: dict) -> str:
    """One line: id, status, when, source coordinates and reasons."""
    source = f"{d['source_topic']}[{d['source_partition']}]@{d['source_offset']}"
    return f"{d['id']}\t{d['status']}\t{d['received_at']}\t{source}\t{json.dumps(d['reasons'])}"


def _show(engine: Engine, args: argparse.Namespace) -> int:
    from cartwatch.streams.storage.dead_letters import get_dead_letter
    from cartwatch.streams.storage.errors import DeadLetterNotFound

    try:
        d = get_dead_letter(engine, args.id)
    except DeadLetterNotFound as exc:
        print(f"dlq show: {exc}", file=sys.stderr)
        return 1
    print(_summary(d), file=sys.stderr)
    if d["value_base64"] is None:
        print("dlq show: a tombstone: no value", file=sys.stderr)
        return 0
    sys.stdout.flush()  # the exact bytes, to edit and re-drive with `replay --file`
    sys.stdout.buffer.write(base64.b64decode(d["value_base64"]))
    return 0


def _replay(engine: Engine, args: argparse.Namespace, settings: Settings, send: Sender) -> int:
    from cartwatch.streams.storage.errors import StorageError
    from cartwatch.streams.storage.redrive import redrive_dead_letter

    corrected = args.file.read_bytes().strip() if args.file else None
    try:
        done = redrive_dead_letter(
            engine,
            args.id,
            send,
            topic_prefix=settings.topic_prefix,
            actor=args.actor,
            corrected=corrected,
        )
    except StorageError as exc:
        print(f"dlq replay: refused: {exc}", file=sys.stderr)
        return 1
    finally:
        getattr(send, "close", lambda: None)()
    what = "corrected message" if done.corrected else "original message"
    print(f"dlq replay: dead letter {done.dead_letter_id} re-driven ({what}) to {done.topic}")
    return 0


class _KafkaSender:
    """Sends and waits for the broker's acknowledgement; connects only on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = None

    def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        from cartwatch.streams.kafka.producer import kafka_producer

        self._producer = self._producer or kafka_producer(self._settings)
        self._producer.send(topic, key=key, value=value).get(timeout=30)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
