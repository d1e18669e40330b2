"""The JSON the API answers and accepts, as pydantic models: the OpenAPI document's schemas
(streams/http/openapi.py) and what the tests validate every answer against.

The handlers build plain dicts (the same code serves `replay`); these models describe them
exactly, so an answer that drifts from its model fails the tests (extra="forbid"). The
trial report, CONTRACT 5's field for field, is in report_schemas.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

from cartwatch.alerts.model import AlertRaised, Severity

Role = Literal["viewer", "physician", "data-manager", "admin"]  # identity.ROLES (a test checks)


def _absent_when_unset(schema: dict[str, Any]) -> None:
    """A field the answer leaves out rather than setting to null: no `default: null`."""
    schema.pop("default", None)


class Answer(BaseModel):
    """An answer whose fields are exactly these (a new field is a change of the document)."""

    model_config = ConfigDict(extra="forbid")


class ErrorAnswer(Answer):
    """Every error answer: a reason in words."""

    error: str = Field(description="what went wrong, for a person to read")


class RoleMissing(Answer):
    """403: the identity lacks the route's role (or a browser's request came from another
    site, then without `role`)."""

    error: str
    role: Role | SkipJsonSchema[None] = Field(
        None, description="the role the route needs", json_schema_extra=_absent_when_unset
    )


class AlreadyAcknowledged(Answer):
    """409: the first acknowledgement stands; who made it, and when."""

    error: str
    acknowledged_by: str
    acknowledged_at: datetime


class Health(Answer):
    """/healthz: whether the worker consumes (partitions assigned, tables restored)."""

    consuming: bool
    error: str | SkipJsonSchema[None] = Field(
        None, description="why not, when it does not", json_schema_extra=_absent_when_unset
    )


class Trials(Answer):
    trials: list[str] = Field(description="the trial ids the worker knows, sorted")


class Alert(AlertRaised):
    """An alert as the worker raised it (CONTRACT 4), with its delivery state as the
    database derives it from the deliveries (null: no database, or it cannot be read)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_status: Literal["pending", "delivered", "failed"] | None
    delivered_at: datetime | None


class Alerts(Answer):
    alerts: list[Alert] = Field(description="recent alerts, newest detection first")


class StoredAlert(Answer):
    """An alert as stored, with its delivery and acknowledgement."""

    alert_id: str
    rule: str
    severity: Severity
    trial_id: str
    patient_id: str | None
    level: int
    value: float | None
    threshold: float | None
    triggered_at: datetime
    detected_at: datetime
    source_event_id: str
    message: str
    delivery_status: Literal["pending", "delivered", "failed"]
    delivered_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None


class Acknowledgement(BaseModel):
    """The body of an acknowledgement (optional: no body is no note). Who acknowledges is
    the signed-in identity, never a name in the body (a `by` is accepted and ignored)."""

    note: str | None = Field(None, pattern=r"^[^\x00]*$", description="no NUL character")


class DeadLetter(Answer):
    """A message that broke the contract, kept with every reason (CONTRACT 1)."""

    id: int
    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None = Field(description="the key as text (undecodable bytes replaced)")
    key_base64: str | None = Field(description="the key's exact bytes")
    key_omitted: bool = Field(description="left out of a list: over 64 KiB (fetch it by id)")
    key_size: int | None = Field(description="bytes; null: no key")
    value: str | None = Field(description="the message as text; null: a tombstone or omitted")
    value_base64: str | None
    value_omitted: bool = Field(description="left out of a list: over 64 KiB (fetch it by id)")
    value_size: int | None = Field(description="bytes; null: a tombstone")
    reasons: list[str]
    received_at: datetime
    status: Literal["new", "redriven"]
    redriven_at: datetime | None
    redriven_event_id: str | None


class DeadLetters(Answer):
    dead_letters: list[DeadLetter] = Field(description="newest first")
    next: int | None = Field(description="`after` of the next page; null on the last")


class Toxicity(Answer):
    term: str
    grade: int = Field(ge=1, le=5)
    onset_at: datetime
    resolved_at: datetime | None


class PatientNotInfused(Answer):
    """A patient with no infusion as of `as_of`: no figures yet."""

    trial_id: str
    patient_id: str
    as_of: datetime
    events_accepted: int
    infused: Literal[False]
    alerted_levels: dict[str, int] = Field(description="rule -> highest level alerted")


class InfusedPatient(Answer):
    """An infused patient's derived figures as of `as_of` (CONTRACT 2)."""

    trial_id: str
    patient_id: str
    as_of: datetime
    events_accepted: int
    infused: Literal[True]
    alerted_levels: dict[str, int]
    t0: datetime
    day: float = Field(description="days since t0")
    remission_onset: datetime | None
    best_response: Literal["CR", "CRi"] | None
    mrd_negative: bool
    relapse_at: datetime | None
    death_at: datetime | None
    duration_of_remission_days: float | None
    duration_of_remission_event: bool | None
    follow_up_days: float
    crs_worst_grade: int = Field(ge=0, le=5)
    icans_worst_grade: int = Field(ge=0, le=5)
    toxicities: list[Toxicity]


class PatientSummary(RootModel[InfusedPatient | PatientNotInfused]):
    """A patient's state as of an instant."""


class Crossing(Answer):
    n_evaluable: int
    n_dlt: int


class BoundaryStatus(Answer):
    n_evaluable: int
    n_dlt: int
    stop_at_dlt: int | None = Field(description="the DLT count that stops at n_evaluable")
    crossed: bool
    crossed_at: Crossing | None


class BoundaryRow(Answer):
    n_evaluable: int
    stop_at_dlt: int | None = Field(description="null: the trial cannot stop at this size")


class ToxicityBoundary(Answer):
    """The trial's stopping boundary for dose-limiting toxicity and where the trial stands
    (docs/ALERT_RULES.md)."""

    trial_id: str
    method: Literal["bayes", "pocock"]
    p0: float
    max_patients: int
    status: BoundaryStatus
    table: list[BoundaryRow]
