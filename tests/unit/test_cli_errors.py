"""A command that cannot use its file, broker or database says so in one line and exits 1,
with no traceback; anything else (a defect) still shows its traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from cartwatch.streams.cli import commands
from cartwatch.streams.cli import main as cli

AS_OF = "2025-06-01T00:00:00Z"


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def test_replay_of_a_missing_file(capsys, tmp_path: Path):
    code, err = _run(
        capsys, "replay", str(tmp_path / "nope.jsonl"), "--as-of", AS_OF,
        "--report-out", str(tmp_path / "r.json"), "--alerts-out", str(tmp_path / "a.jsonl"),
    )  # fmt: skip
    assert (code, err) == (
        1,
        f"cartwatch replay: error: No such file or directory: {tmp_path / 'nope.jsonl'}\n",
    )


def test_replay_of_a_directory_and_into_a_missing_directory(capsys, tmp_path: Path):
    events = tmp_path / "events.jsonl"
    events.write_text("")
    code, err = _run(
        capsys, "replay", str(tmp_path), "--as-of", AS_OF,
        "--report-out", str(tmp_path / "r.json"), "--alerts-out", str(tmp_path / "a.jsonl"),
    )  # fmt: skip
    assert (code, err) == (1, f"cartwatch replay: error: Is a directory: {tmp_path}\n")
    missing = tmp_path / "no" / "r.json"
    code, err = _run(
        capsys, "replay", str(events), "--as-of", AS_OF,
        "--report-out", str(missing), "--alerts-out", str(tmp_path / "a.jsonl"),
    )  # fmt: skip
    assert (code, err.splitlines()[-1]) == (
        1,
        f"cartwatch replay: error: No such file or directory: {missing}",
    )


def test_produce_without_a_broker(capsys, tmp_path: Path, monkeypatch):
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "lab"}\n')

    def no_broker(*args, **kwargs):
        raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")

    monkeypatch.setattr("cartwatch.streams.kafka.producer.kafka_producer", no_broker)
    code, err = _run(capsys, "produce", str(events), "--kafka-bootstrap", "127.0.0.1:1")
    assert (code, err) == (
        1,
        (
            "cartwatch produce: error: Kafka at 127.0.0.1:1: "
            "KafkaTimeoutError: Unable to bootstrap from 127.0.0.1:1\n"
        ),
    )


def test_dead_letters_of_a_database_never_migrated(capsys, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, err = _run(capsys, "dlq", "list", "--database-url", url)
    assert code == 1
    assert err == (
        "cartwatch dlq: error: database: OperationalError: no such table: dead_letters "
        "(a new database? run `cartwatch db upgrade` first)\n"
    )


def test_a_defect_keeps_its_traceback(capsys, tmp_path: Path, monkeypatch):
    def broken(args, settings):
        raise KeyError("a bug")

    monkeypatch.setattr(commands, "run_simulate", broken)
    with pytest.raises(KeyError):
        cli.main(["simulate", "--out", str(tmp_path / "x.jsonl")])


class _Producer:
    """kafka-python's producer as far as `produce` uses it: refuses records over 100 bytes."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, topic, key=None, value=None, headers=None):
        if len(value) > 100:
            raise MessageSizeTooLargeError(f"The message is {len(value)} bytes")
        self.sent.append(value)

    def flush(self) -> None: ...

    def close(self) -> None: ...


def test_produce_sends_every_line_but_those_too_large_and_names_them(capsys, tmp_path, monkeypatch):
    small = b'{"type": "lab", "patient_id": "P1"}'
    large = b'{"type": "lab", "patient_id": "P1", "x": "' + b"y" * 200 + b'"}'
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([small, large, small, large, small]) + b"\n")
    producer = _Producer()
    monkeypatch.setattr(
        "cartwatch.streams.kafka.producer.kafka_producer", lambda settings: producer
    )
    code, err = _run(capsys, "produce", str(events), "--topic-prefix", "cw")
    assert producer.sent == [small, small, small]
    assert (code, err) == (
        1,
        "cw.labs: 3\n"
        f"cartwatch produce: error: lines too large for a Kafka request, not sent: "
        f"2 ({len(large)} bytes), 4 ({len(large)} bytes)\n",
    )
