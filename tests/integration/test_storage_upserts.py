"""Stream writes are idempotent upserts, a snapshot never goes back in time, and the
audit log cannot be changed: on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DatabaseError

from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.codec import decode_event
from cartwatch.streams.storage.audit import (
    ALERT_ACKNOWLEDGE_REFUSED,
    ALERT_ACKNOWLEDGED,
    append_audit,
    configuration_of,
    list_audit,
    record_configuration,
)
from cartwatch.streams.storage.dead_letters import dead_letter_page
from cartwatch.streams.storage.engine import now, utc
from cartwatch.streams.storage.errors import AlertAlreadyAcknowledged, AlertNotFound
from cartwatch.streams.storage.items import AdverseEventReport
from cartwatch.streams.storage.operations import acknowledge_alert, list_alerts
from cartwatch.streams.storage.outbox import claim_due, enqueue_new, mark_delivered
from cartwatch.streams.storage.schema import adverse_event_reports, audit_log, patient_snapshots
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.worker.settings import Settings
from tests.integration.test_storage_support import alert, database, dead_letter, snapshot, trial

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    with database(request.param, tmp_path_factory.mktemp(request.param)) as engine:
        yield engine


def _write(engine: Engine, items: list) -> None:
    with engine.begin() as conn:
        write_batch(conn, items)


def _rows(engine: Engine, table, trial_id: str) -> list[dict]:
    stmt = select(table).where(table.c.trial_id == trial_id)
    with engine.connect() as conn:
        return sorted((dict(r) for r in conn.execute(stmt).mappings()), key=repr)


def _report(trial_id: str, event_id: str, grade: int) -> AdverseEventReport:
    message = {
        "event_id": event_id,
        "type": "adverse_event",
        "trial_id": trial_id,
        "patient_id": "P1",
        "occurred_at": "2025-02-07T12:00:00+01:00",
        "ae_id": "AE1",
        "term": "CRS",
        "grade": grade,
        "onset_at": "2025-02-06T12:00:00Z",
        "treatments": ["tocilizumab"],
    }
    return AdverseEventReport.of(decode_event(json.dumps(message)))


def test_the_same_batch_written_twice_leaves_the_same_rows(engine: Engine) -> None:
    t = trial()
    batch = [
        snapshot(t, "P1", 3),
        snapshot(t, "P2", 1),
        _report(t, f"{t}-ae1", 2),
        alert(t, "P1"),
        dead_letter(f"{t}.labs", 7),
    ]
    _write(engine, batch)
    first = [_rows(engine, table, t) for table in (patient_snapshots, adverse_event_reports)]
    first_alerts = list_alerts(engine, trial_id=t)
    _write(engine, batch)
    assert [_rows(engine, table, t) for table in (patient_snapshots, adverse_event_reports)] == (
        first
    )
    assert list_alerts(engine, trial_id=t) == first_alerts
    assert len(first_alerts) == 1 and len(first[0]) == 2 and len(first[1]) == 1
    listed = dead_letter_page(engine, limit=1000).dead_letters
    assert [d["source_offset"] for d in listed if t in d["source_topic"]] == [7]


def test_duplicates_inside_one_batch_make_one_row_each(engine: Engine) -> None:
    t = trial()
    report = _report(t, f"{t}-ae1", 2)
    _write(engine, [report, report, alert(t, "P1"), alert(t, "P1"), snapshot(t, "P1", 1)] * 2)
    assert len(_rows(engine, adverse_event_reports, t)) == 1
    assert len(list_alerts(engine, trial_id=t)) == 1


def test_a_second_report_with_the_same_event_id_changes_nothing(engine: Engine) -> None:
    t = trial()
    _write(engine, [_report(t, f"{t}-ae1", 2)])
    _write(engine, [_report(t, f"{t}-ae1", 4)])
    (row,) = _rows(engine, adverse_event_reports, t)
    assert (row["grade"], row["ae_id"], row["treatments"]) == (2, "AE1", ["tocilizumab"])
    # Stored as the same instants, in UTC.
    assert utc(row["occurred_at"]) == datetime(2025, 2, 7, 11, tzinfo=UTC)
    assert utc(row["onset_at"]) == datetime(2025, 2, 6, 12, tzinfo=UTC)


def test_an_older_snapshot_never_overwrites_a_newer_one(engine: Engine) -> None:
    t = trial()
    _write(engine, [snapshot(t, "P1", 5)])
    _write(engine, [snapshot(t, "P1", 4)])  # a replayed, older snapshot
    _write(engine, [snapshot(t, "P1", 9), snapshot(t, "P1", 6)])  # newest first in a batch
    (row,) = _rows(engine, patient_snapshots, t)
    assert row["events_accepted"] == 9 and row["record"]["n"] == 9


def test_a_newer_snapshot_replaces_the_stored_one(engine: Engine) -> None:
    t = trial()
    _write(engine, [snapshot(t, "P1", 1)])
    _write(engine, [snapshot(t, "P1", 2)])
    (row,) = _rows(engine, patient_snapshots, t)
    assert row["record"]["n"] == 2


def test_a_re_raised_alert_keeps_its_delivery_and_acknowledgement(engine: Engine) -> None:
    t = trial()
    raised = alert(t, "P1", level=3)
    _write(engine, [raised])
    enqueue_new(engine, {"webhook": ["critical"]}, now())
    (claimed,) = [
        c for c in claim_due(engine, "webhook", now(), now(), 100) if c.alert_id == raised.alert_id
    ]
    mark_delivered(engine, claimed, now())
    acknowledge_alert(engine, raised.alert_id, actor="dr.safety", note="tocilizumab given")
    _write(engine, [raised])  # redelivered after a restart
    (stored,) = list_alerts(engine, trial_id=t)
    assert stored["delivery_status"] == "delivered"
    assert stored["acknowledged_by"] == "dr.safety"
    assert stored["ack_note"] == "tocilizumab given"


def test_acknowledging_an_alert_audits_who_and_the_alert_as_they_saw_it(engine: Engine) -> None:
    t = trial()
    raised = alert(t, "P1")
    _write(engine, [raised])
    first = acknowledge_alert(engine, raised.alert_id, actor="dr.a", note="seen")
    assert first["acknowledged_by"] == "dr.a"
    (entry,) = list_audit(engine, subject=f"alert:{raised.alert_id}")
    assert (entry["action"], entry["actor"]) == (ALERT_ACKNOWLEDGED, "dr.a")
    assert entry["details"] == {
        "note": "seen",
        "alert": {
            "rule": "crs_grade",
            "level": 2,
            "value": 2.0,
            "severity": "warning",
            "triggered_at": "2025-02-07T13:00:00+00:00",
        },
    }


def test_a_second_acknowledgement_is_refused_naming_the_first_and_audited(engine: Engine) -> None:
    t = trial()
    raised = alert(t, "P1")
    _write(engine, [raised])
    first = acknowledge_alert(engine, raised.alert_id, actor="dr.a")
    with pytest.raises(AlertAlreadyAcknowledged) as refused:
        acknowledge_alert(engine, raised.alert_id, actor="dr.b", note="late")
    assert (refused.value.by, refused.value.at) == ("dr.a", first["acknowledged_at"])
    (stored,) = list_alerts(engine, trial_id=t)
    assert (stored["acknowledged_by"], stored["ack_note"]) == ("dr.a", None)
    entries = list_audit(engine, subject=f"alert:{raised.alert_id}")
    assert [(e["action"], e["actor"]) for e in entries] == [
        (ALERT_ACKNOWLEDGE_REFUSED, "dr.b"),
        (ALERT_ACKNOWLEDGED, "dr.a"),
    ]
    details = entries[0]["details"]
    assert details["acknowledged_by"] == "dr.a" and details["note"] == "late"
    assert details["acknowledged_at"] == first["acknowledged_at"]


def test_acknowledging_an_unknown_alert_is_refused(engine: Engine) -> None:
    with pytest.raises(AlertNotFound):
        acknowledge_alert(engine, f"{trial()}:P1:crs_grade:2", actor="dr.a")


def test_the_database_refuses_to_update_or_delete_the_audit_log(engine: Engine) -> None:
    with engine.begin() as conn:
        entry = append_audit(conn, actor="ops", action="test", subject=trial(), details={})
    for stmt in (
        update(audit_log).where(audit_log.c.id == entry).values(actor="someone else"),
        delete(audit_log).where(audit_log.c.id == entry),
        delete(audit_log),
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(stmt)
    with engine.connect() as conn:
        actor = conn.execute(select(audit_log.c.actor).where(audit_log.c.id == entry)).scalar()
        assert actor == "ops"
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() >= 1


def test_a_configuration_change_is_audited_once(engine: Engine) -> None:
    settings = Settings(topic_prefix=trial(), api_token="secret-token")
    config = configuration_of(settings)
    assert "secret-token" not in repr(config) and config["api_token_set"] is True
    assert record_configuration(engine, config, actor="worker") is True
    assert record_configuration(engine, config, actor="worker") is False
    changed = configuration_of(
        settings.model_copy(update={"rules": RuleThresholds(crs_grade_min=3)})
    )
    assert record_configuration(engine, changed, actor="worker") is True
