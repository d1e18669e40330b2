"""`cartwatch report` (the DMC report, PDF) and `cartwatch export` (the datasets): parsers
and what they do. Errors a user can fix (an unknown trial, a bad --as-of) are one line and
exit 1."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cartwatch.models.events import parse_timestamp
from cartwatch.streams.worker.settings import Settings


def add_report_commands(
    sub: argparse._SubParsersAction, add_setting_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add `report` and `export`."""
    report = sub.add_parser("report", help="the data monitoring committee's report (PDF)")
    export = sub.add_parser("export", help="SDTM-shaped datasets (CSV or SAS transport)")
    for parser in (report, export):
        parser.add_argument("trial", help="trial id")
        parser.add_argument("--as-of", required=True, help="the data cut (RFC 3339 timestamp)")
        parser.add_argument(
            "--events", type=Path, help="read this JSON Lines file (default: the database)"
        )
        add_setting_options(parser)
    report.add_argument("--out", type=Path, required=True, help="the PDF file to write")
    export.add_argument("--format", choices=["csv", "xpt"], required=True, help="file format")
    export.add_argument("--out", type=Path, required=True, help="the directory to write into")


class _Refused(Exception):
    """What the user can fix; main prints it as one line."""


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write the trial's DMC report as of the cut."""
    from cartwatch.streams.reports.pdf import trial_report_pdf

    started = time.perf_counter()
    try:
        as_of = _as_of(args.as_of)
        data = _trial_data(args, settings, as_of)
        pdf = trial_report_pdf(
            data, as_of, args.as_of, settings.thresholds.toxicity, datetime.now(UTC)
        )
    except _Refused as exc:
        return _fail("report", str(exc))
    args.out.write_bytes(pdf)
    took = time.perf_counter() - started
    print(f"report: {args.out} ({len(pdf) // 1024} KB, {took:.1f} s)", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write the trial's datasets as of the cut."""
    from cartwatch.models.sdtm import trial_datasets
    from cartwatch.streams.reports.datasets import write_datasets

    try:
        as_of = _as_of(args.as_of)
        data = _trial_data(args, settings, as_of)
        datasets = trial_datasets(data.trial_id, data.records, as_of.timestamp(), data.events)
        if datasets is None:
            raise _Refused(f"no data of trial {args.trial!r} at or before {args.as_of}")
    except _Refused as exc:
        return _fail("export", str(exc))
    written = write_datasets(datasets, args.out, args.format)
    rows = ", ".join(f"{name} {n}" for name, n in written.items())
    print(f"export: {args.out} ({args.format}): {rows}", file=sys.stderr)
    return 0


def _as_of(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise _Refused(f"--as-of: {exc}") from None


def _trial_data(args: argparse.Namespace, settings: Settings, as_of: datetime):
    from cartwatch.streams.reports.sources import UnknownTrial, from_database, from_events

    try:
        if args.events is not None:
            return from_events(args.events, args.trial, as_of, settings.thresholds)
        from cartwatch.streams.storage.engine import make_engine

        engine = make_engine(settings.database_url)
        try:
            return from_database(engine, args.trial, as_of)
        finally:
            engine.dispose()
    except UnknownTrial as exc:
        raise _Refused(str(exc)) from None


def _fail(command: str, reason: str) -> int:
    print(f"cartwatch {command}: error: {reason}", file=sys.stderr)
    return 1
