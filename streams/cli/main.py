"""The `cartwatch` command line (CONTRACT 6): one entry point, `--help` on every command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from cartwatch.models.events import parse_timestamp
from cartwatch.streams.cli.reports import add_report_commands
from cartwatch.streams.cli.storage import add_storage_commands
from cartwatch.streams.cli.users import add_user_commands
from cartwatch.streams.devtools.bench_workload import WORKLOADS
from cartwatch.streams.worker.settings import Settings, setting_errors

# CLI options that override the environment, named as the CARTWATCH_* variables.
_SETTING_OPTIONS = {
    "kafka_bootstrap": "Kafka bootstrap servers (CARTWATCH_KAFKA_BOOTSTRAP)",
    "topic_prefix": "prefix of every topic (CARTWATCH_TOPIC_PREFIX)",
    "database_url": "SQLAlchemy database URL (CARTWATCH_DATABASE_URL)",
    "api_port": "HTTP API port (CARTWATCH_API_PORT)",
    "api_token": "bearer token the API requires (CARTWATCH_API_TOKEN)",
}


def _timestamp(text: str) -> str:
    """An RFC 3339 timestamp with offset, kept as given (REPORT.json echoes it)."""
    try:
        parse_timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _workloads(text: str) -> tuple[str, ...]:
    """`cartwatch bench --workloads`: names of `WORKLOADS`, comma-separated, each once."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in WORKLOADS]
    if not names or unknown or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one or more of {', '.join(WORKLOADS)}, comma-separated, each once"
        )
    return names


def _positive(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _add_setting_options(parser: argparse.ArgumentParser) -> None:
    for name, help_text in _SETTING_OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, help=help_text)


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the options given on the command line."""
    given = {k: getattr(args, k) for k in _SETTING_OPTIONS if getattr(args, k, None) is not None}
    return Settings(**given)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="cartwatch", description="Monitoring of CAR T-cell therapy trials over Kafka."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the whole system on one machine, no set-up")
    demo.add_argument("--once", action="store_true", help="exit after the final report")
    demo.add_argument("--seed", type=int, default=2026, help="simulator seed")
    demo.add_argument(
        "--duration", type=float, default=60.0, help="seconds to stream the trial over"
    )

    sub.add_parser("broker", help="run the embedded Kafka-compatible development broker")
    sub.add_parser("worker", help="run the stream processors and the HTTP API")

    produce = sub.add_parser("produce", help="publish a file of events to their topics")
    produce.add_argument("events", type=Path, help="JSON Lines file of events")

    replay = sub.add_parser("replay", help="offline run of a file through the same core")
    replay.add_argument("events", type=Path, help="JSON Lines file of events")
    replay.add_argument("--as-of", type=_timestamp, required=True, help="RFC 3339 timestamp")
    replay.add_argument("--report-out", type=Path, required=True, help="REPORT.json path")
    replay.add_argument("--alerts-out", type=Path, required=True, help="ALERTS.jsonl path")

    simulate = sub.add_parser("simulate", help="a synthetic trial calibrated to the publication")
    simulate.add_argument("--seed", type=int, default=2026, help="random seed")
    target = simulate.add_mutually_exclusive_group()
    target.add_argument("--out", type=Path, help="write JSON Lines here (default: stdout)")
    target.add_argument("--publish", action="store_true", help="publish to Kafka instead")

    bench = sub.add_parser("bench", help="measure throughput, latency, memory and restart")
    bench.add_argument("--trials", type=int, default=3, help="simulated trials to stream")
    bench.add_argument(
        "--workloads",
        type=_workloads,
        default=WORKLOADS,
        help=f"comma-separated, of {','.join(WORKLOADS)} (default: both)",
    )
    bench.add_argument(
        "--interleaved-patients", type=_positive, default=2000, help="interleaved workload"
    )
    bench.add_argument(
        "--events-per-patient", type=_positive, default=100, help="interleaved workload"
    )
    bench.add_argument("--seed", type=int, default=2026, help="interleaved workload's seed")
    bench.add_argument("--out", type=Path, help="write the JSON result here")
    bench.add_argument("--latency-rate", type=float, default=2000.0, help="events/s")
    bench.add_argument("--latency-duration", type=float, default=25.0, help="seconds")
    bench.add_argument("--restart-patients", type=int, default=100_000, help="patients")
    bench.add_argument("--skip-restart", action="store_true", help="no restart phase")
    bench.add_argument("--profile", type=Path, help="py-spy/cProfile output directory")

    for command in sub.choices.values():
        _add_setting_options(command)
    # Added after the loop: `db`, `dlq` and `users` take the settings options on their
    # sub-commands; `report` and `export` add their own.
    add_storage_commands(sub, _add_setting_options)
    add_user_commands(sub, _add_setting_options)
    add_report_commands(sub, _add_setting_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cartwatch` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValidationError as exc:  # one line per setting, named as its variable
        return _fail(args.command, "configuration: " + "; ".join(setting_errors(exc)))
    from cartwatch.streams.cli import commands  # heavy imports only once a command runs

    handler = getattr(commands, f"run_{args.command}")
    try:
        return handler(args, settings) or 0
    except BrokenPipeError:  # `cartwatch dlq list | head`: the reader went, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file missing, a directory, no permission...
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(args.command, f"{exc.strerror or exc}{where}")
    except Exception as exc:
        reason = _environment_error(exc, settings)
        if reason is None:
            raise
        return _fail(args.command, reason)


def _fail(command: str, reason: str) -> int:
    print(f"cartwatch {command}: error: {reason}", file=sys.stderr)
    return 1


def _environment_error(exc: Exception, settings: Settings) -> str | None:
    """What to tell of a broker or database the command could not use; None for anything
    else (a defect: its traceback is shown). Never the SQL or its parameters (patient ids)."""
    from kafka.errors import KafkaError
    from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

    if isinstance(exc, KafkaError):
        return f"Kafka at {settings.kafka_bootstrap}: {exc}"  # kafka-python's names its class
    if isinstance(exc, OperationalError | ProgrammingError | InterfaceError):  # not a defect's
        cause = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        new = "no such table" in cause or "does not exist" in cause
        hint = " (a new database? run `cartwatch db upgrade` first)" if new else ""
        return f"database: {type(exc.orig).__name__}: {cause}{hint}"
    return None


if __name__ == "__main__":
    sys.exit(main())
