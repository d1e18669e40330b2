"""What each `cartwatch` command does; the parser lives in `cartwatch.streams.cli.main`."""

from __future__ import annotations

import argparse
import os
import sys

from cartwatch.streams.worker.settings import Settings


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Offline replay of a file: REPORT.json and ALERTS.jsonl (CONTRACT 5)."""
    from cartwatch.alerts.replay import replay_file

    result = replay_file(
        args.events, args.as_of, args.report_out, args.alerts_out, settings.thresholds
    )
    print(
        f"replay: {result.accepted} accepted, {result.duplicates} duplicates, "
        f"{len(result.invalid)} invalid, {result.after_as_of} after as_of, "
        f"{result.blank} blank; "
        f"{len(result.alerts)} alerts",
        file=sys.stderr,
    )
    for number, reasons in result.invalid:
        print(f"  line {number}: invalid: {'; '.join(reasons)}", file=sys.stderr)
    return 0


def run_produce(args: argparse.Namespace, settings: Settings) -> int:
    """Publish a file of events to their topics."""
    from cartwatch.streams.kafka.producer import LinesNotSent, produce_lines

    with args.events.open("rb") as fh:
        try:
            sent, failed = produce_lines(fh, settings, source=f"file:{args.events.name}"), None
        except LinesNotSent as exc:
            sent, failed = exc.sent, exc
    for topic, n in sorted(sent.items()):
        print(f"{topic}: {n}", file=sys.stderr)
    if failed is not None:
        print(f"cartwatch produce: error: {failed}", file=sys.stderr)
        return 1
    return 0


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Write or publish the synthetic trial."""
    from cartwatch.streams.devtools.simulator import simulate_trial

    trial = simulate_trial(seed=args.seed)
    print(f"simulate: data cut {trial.data_cut.isoformat()}", file=sys.stderr)
    if args.publish:
        from cartwatch.streams.kafka.producer import produce_lines

        sent = produce_lines(trial.lines(), settings, source=f"simulate:{args.seed}")
        print(f"simulate: published {sum(sent.values())} messages", file=sys.stderr)
    elif args.out:
        with args.out.open("wb") as fh:
            fh.writelines(line + b"\n" for line in trial.lines())
    else:
        sys.stdout.buffer.writelines(line + b"\n" for line in trial.lines())
    return 0


def run_broker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the embedded development broker in the foreground."""
    from cartwatch.streams.devtools.broker import BrokerStartError, run_broker

    port = int(settings.kafka_bootstrap.rsplit(":", 1)[1])
    try:
        return run_broker(port)
    except BrokerStartError as exc:
        print(f"cartwatch broker: {exc}", file=sys.stderr)
        return 1


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the stream processors and the HTTP API until SIGTERM or Ctrl-C."""
    from cartwatch.streams.http.errors import ExposedWithoutIdentity
    from cartwatch.streams.kafka.topics import TopicLayoutError
    from cartwatch.streams.worker.main import run_worker

    try:
        return run_worker(settings)
    except (TopicLayoutError, ExposedWithoutIdentity) as exc:  # set-up: it says what to fix
        print(f"cartwatch worker: {exc}", file=sys.stderr)
        return 2


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The whole system on one machine."""
    from cartwatch.streams.devtools.demo import run_demo

    return run_demo(settings, seed=args.seed, duration=args.duration, once=args.once)


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Benchmarks against the configured Kafka, or an embedded broker when none is set."""
    from cartwatch.streams.devtools.bench import BenchOptions, run_bench
    from cartwatch.streams.devtools.broker import EmbeddedBroker

    options = BenchOptions(
        trials=args.trials,
        workloads=args.workloads,
        interleaved_patients=args.interleaved_patients,
        events_per_patient=args.events_per_patient,
        seed=args.seed,
        latency_rate=args.latency_rate,
        latency_duration_s=args.latency_duration,
        restart_patients=args.restart_patients,
        skip_restart=args.skip_restart,
        profile_dir=args.profile,
        out=args.out,
    )
    if "CARTWATCH_KAFKA_BOOTSTRAP" in os.environ or args.kafka_bootstrap:
        run_bench(settings, options)
        return 0
    with EmbeddedBroker() as broker:
        embedded = {"kafka_bootstrap": broker.bootstrap, "embedded_broker": True}
        run_bench(settings.model_copy(update=embedded), options)
    return 0


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch db upgrade`: migrate the configured database."""
    from cartwatch.streams.cli.storage import run_db

    return run_db(args, settings)


def run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch dlq list|replay`: dead letters stored in the database."""
    from cartwatch.streams.cli.storage import run_dlq

    return run_dlq(args, settings)


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch users add|revoke|list`: local accounts of the HTTP API."""
    from cartwatch.streams.cli.users import run_users

    return run_users(args, settings)


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch report TRIAL --as-of TS --out FILE.pdf [--events F]`: the DMC report."""
    from cartwatch.streams.cli.reports import run_report

    return run_report(args, settings)


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    """`cartwatch export TRIAL --as-of TS --format csv|xpt --out DIR [--events F]`."""
    from cartwatch.streams.cli.reports import run_export

    return run_export(args, settings)
