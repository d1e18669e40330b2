"""Dead letters are operable: listed, fixed and re-driven once, with an audit trail, on
SQLite and on the real PostgreSQL (the sender stands in for the Kafka producer)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine

from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.cli.main import build_parser, main, settings_from
from cartwatch.streams.cli.storage import run_dlq
from cartwatch.streams.http.schemas import DeadLetters
from cartwatch.streams.storage.audit import DEAD_LETTER_REDRIVEN, list_audit
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.errors import AlreadyRedriven, DeadLetterNotFound, InvalidCorrection
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.operations import get_dead_letter, list_dead_letters
from cartwatch.streams.storage.redrive import redrive_dead_letter
from cartwatch.streams.storage.upserts import write_batch
from tests.integration.conftest import create_topics
from tests.integration.test_storage_support import database, dead_letter, trial

pytestmark = pytest.mark.integration

PREFIX = "cw"


class Sent(list):
    """Records what would have gone to Kafka: (topic, key, value)."""

    def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        self.append((topic, key, value))


def _lab(trial_id: str, unit: str) -> bytes:
    return json.dumps(
        {
            "event_id": f"{trial_id}-lab-1",
            "type": "lab",
            "trial_id": trial_id,
            "patient_id": "P1",
            "occurred_at": "2025-02-07T12:00:00+01:00",
            "analyte": "IL6",
            "value": 120.0,
            "unit": unit,
        }
    ).encode()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    with database(request.param, tmp_path_factory.mktemp(request.param)) as engine:
        yield engine


@pytest.fixture
def stored(engine: Engine) -> tuple[int, str]:
    """A dead letter (a lab with an unknown unit) and its trial id."""
    t = trial()
    offset = uuid.uuid4().int % 10**12  # source coordinates no other test uses
    with engine.begin() as conn:
        write_batch(conn, [dead_letter(f"{PREFIX}.labs", offset, _lab(t, "pg/dl"))])
    (row,) = [d for d in list_dead_letters(engine) if d["value"] == _lab(t, "pg/dl").decode()]
    return row["id"], t


def _redrive(engine: Engine, dl_id: int, send: Sent, corrected: bytes | None = None):
    return redrive_dead_letter(
        engine, dl_id, send, topic_prefix=PREFIX, actor="ops", corrected=corrected
    )


def test_a_corrected_dead_letter_is_sent_marked_and_audited(engine, stored) -> None:
    (dl_id, t), send = stored, Sent()
    fixed = _lab(t, "pg/mL")
    done = _redrive(engine, dl_id, send, fixed)
    assert send == [(f"{PREFIX}.labs", b"P1", fixed)]
    assert (done.topic, done.event_id, done.corrected) == (f"{PREFIX}.labs", f"{t}-lab-1", True)
    row = get_dead_letter(engine, dl_id)
    assert (row["status"], row["redriven_event_id"]) == ("redriven", f"{t}-lab-1")
    (entry,) = list_audit(engine, subject=f"dead_letter:{dl_id}")
    assert (entry["action"], entry["actor"]) == (DEAD_LETTER_REDRIVEN, "ops")
    assert entry["details"]["sha256"] == hashlib.sha256(fixed).hexdigest()
    assert entry["details"]["source"][:2] == [f"{PREFIX}.labs", 0]


def test_a_second_re_drive_of_the_same_dead_letter_is_refused(engine, stored) -> None:
    (dl_id, t), send = stored, Sent()
    _redrive(engine, dl_id, send, _lab(t, "ng/L"))
    with pytest.raises(AlreadyRedriven, match="already re-driven"):
        _redrive(engine, dl_id, send, _lab(t, "ng/L"))
    assert len(send) == 1
    assert len(list_audit(engine, subject=f"dead_letter:{dl_id}")) == 1


def test_a_re_driven_correction_counts_exactly_once(engine, stored) -> None:
    (dl_id, t), send = stored, Sent()
    _redrive(engine, dl_id, send, _lab(t, "pg/mL"))
    pipeline = Pipeline({}, RuleThresholds())
    # The original (still invalid) and the correction sent twice (a retried send).
    outcomes = [pipeline.handle(raw).outcome for raw in (_lab(t, "pg/dl"), *[send[0][2]] * 2)]
    assert outcomes.count("accepted") == 1 and outcomes[0] == "invalid"


def test_a_correction_that_still_breaks_the_contract_is_refused(engine, stored) -> None:
    (dl_id, t), send = stored, Sent()
    with pytest.raises(InvalidCorrection) as refused:
        _redrive(engine, dl_id, send, _lab(t, "furlongs"))
    assert refused.value.reasons and send == []
    with pytest.raises(InvalidCorrection):
        _redrive(engine, dl_id, send)  # the original bytes are still invalid
    assert get_dead_letter(engine, dl_id)["status"] == "new"
    assert list_audit(engine, subject=f"dead_letter:{dl_id}") == []


def test_a_failed_send_leaves_the_dead_letter_to_re_drive_later(engine, stored) -> None:
    dl_id, t = stored
    fixed = _lab(t, "pg/mL")

    def broker_down(topic: str, key: bytes, value: bytes) -> None:
        raise TimeoutError("no broker")

    with pytest.raises(TimeoutError):
        _redrive(engine, dl_id, broker_down, fixed)
    assert get_dead_letter(engine, dl_id)["status"] == "new"
    assert list_audit(engine, subject=f"dead_letter:{dl_id}") == []
    _redrive(engine, dl_id, Sent(), fixed)
    assert get_dead_letter(engine, dl_id)["status"] == "redriven"


def test_a_tombstone_is_kept_as_one_and_re_driven_only_corrected(engine) -> None:
    # A record with no value on an input topic: stored as null, not as zero bytes.
    t, offset = trial(), uuid.uuid4().int % 10**12
    with engine.begin() as conn:
        write_batch(conn, [dead_letter(f"{PREFIX}.labs", offset, None)])
    (row,) = [d for d in list_dead_letters(engine) if d["source_offset"] == offset]
    assert (row["value"], row["value_base64"]) == (None, None)  # both keys, both null
    DeadLetters.model_validate({"dead_letters": list_dead_letters(engine)})  # as documented
    send = Sent()
    with pytest.raises(InvalidCorrection) as refused:
        _redrive(engine, row["id"], send)
    assert refused.value.reasons == ["a tombstone (no value): re-drive a corrected message"]
    _redrive(engine, row["id"], send, _lab(t, "pg/mL"))
    assert send == [(f"{PREFIX}.labs", b"P1", _lab(t, "pg/mL"))]


def test_re_driving_an_unknown_dead_letter_is_refused(engine) -> None:
    with pytest.raises(DeadLetterNotFound):
        _redrive(engine, 10**9, Sent())


def test_cartwatch_dlq_list_and_replay(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'dlq.db'}"
    options = ["--database-url", url, "--topic-prefix", PREFIX]
    assert main(["db", "upgrade", *options]) == 0
    engine = make_engine(url)
    with engine.begin() as conn:
        write_batch(conn, [dead_letter(f"{PREFIX}.labs", 3, _lab("T1", "pg/dl"))])
    engine.dispose()
    assert main(["dlq", "list", "--values", *options]) == 0
    listed = capsys.readouterr().out
    assert "1\tnew\t" in listed and f"{PREFIX}.labs[0]@3" in listed and "pg/dl" in listed
    corrected = tmp_path / "corrected.json"
    corrected.write_bytes(_lab("T1", "pg/mL") + b"\n")
    replay = ["dlq", "replay", "--id", "1", "--file", str(corrected), *options]
    args, send = build_parser().parse_args(replay), Sent()
    assert run_dlq(args, settings_from(args), send) == 0
    assert send == [(f"{PREFIX}.labs", b"P1", _lab("T1", "pg/mL"))]
    # Refused before any broker is contacted: no Kafka runs in this test.
    assert main(["dlq", "replay", "--id", "1", *options]) == 1
    assert "already re-driven" in capsys.readouterr().err


def test_cartwatch_dlq_replay_sends_the_correction_through_a_real_broker(
    tmp_path: Path, broker, capsys
) -> None:
    prefix = f"dlq{uuid.uuid4().hex[:8]}"
    topic = create_topics(broker.bootstrap, f"{prefix}.labs")[0]
    url = f"sqlite:///{tmp_path / 'dlq.db'}"
    options = ["--database-url", url, "--topic-prefix", prefix]
    options += ["--kafka-bootstrap", broker.bootstrap]
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        write_batch(conn, [dead_letter(topic, 5, _lab("T1", "pg/dl"))])
    engine.dispose()
    corrected = tmp_path / "corrected.json"
    corrected.write_bytes(_lab("T1", "pg/mL"))
    assert main(["dlq", "replay", "--id", "1", "--file", str(corrected), *options]) == 0
    assert f"re-driven (corrected message) to {topic}" in capsys.readouterr().out
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        records = []
        for _ in range(50):
            records += [r for rs in consumer.poll(timeout_ms=200).values() for r in rs]
            if records:
                break
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in records] == [(b"P1", _lab("T1", "pg/mL"))]
