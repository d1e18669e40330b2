"""The JSON API's operations, as the handlers of streams/http/api.py answer them (each
one's 401, 403 and 503 from the identity middleware are added by operation.py)."""

from __future__ import annotations

from cartwatch.streams.http.operation import Operation, Parameter, Response
from cartwatch.streams.http.report_schemas import TrialReport
from cartwatch.streams.http.schemas import (
    Acknowledgement,
    Alerts,
    AlreadyAcknowledged,
    DeadLetter,
    DeadLetters,
    Health,
    PatientSummary,
    StoredAlert,
    ToxicityBoundary,
    Trials,
)

TRIAL = Parameter("trial_id", "path", "a trial id (CONTRACT 1)")
PATIENT = Parameter("patient_id", "path", "a pseudonymous patient id (CONTRACT 1)")
AS_OF = Parameter(
    "as_of",
    "query",
    "RFC 3339 timestamp with offset; only events that occurred by then count (default: now)",
    {"type": "string", "format": "date-time"},
)
BAD_AS_OF = Response("`as_of` is not an RFC 3339 timestamp with offset in years 1-9999 (UTC)")
NO_DATABASE = Response("This worker has no database configured")

API_OPERATIONS = (
    Operation(
        "GET",
        "/healthz",
        "getHealth",
        "Whether the worker consumes (partitions assigned, tables restored)",
        "operations",
        {200: Response("Consuming", Health), 503: Response("Not consuming (yet)", Health)},
        role=None,
    ),
    Operation(
        "GET",
        "/metrics",
        "getMetrics",
        "Prometheus exposition (no patient identifier in any label)",
        "operations",
        {200: Response("The metrics", "text/plain")},
        role=None,
    ),
    Operation(
        "GET",
        "/openapi.json",
        "getOpenApi",
        "This document (open: it describes the API and holds no patient data)",
        "operations",
        {200: Response("The OpenAPI 3.1 document", None)},
        role=None,
    ),
    Operation(
        "GET",
        "/trials",
        "listTrials",
        "The trial ids the worker knows",
        "trials",
        {
            200: Response(
                "The trial ids",
                Trials,
                links={
                    "report": {
                        "operationId": "getTrialReport",
                        "parameters": {"trial_id": "$response.body#/trials/0"},
                    },
                    "boundary": {
                        "operationId": "getToxicityBoundary",
                        "parameters": {"trial_id": "$response.body#/trials/0"},
                    },
                },
            )
        },
    ),
    Operation(
        "GET",
        "/trials/{trial_id}/report",
        "getTrialReport",
        "The trial report of CONTRACT 5, as of `as_of`",
        "trials",
        {200: Response("The report", TrialReport), 400: BAD_AS_OF, 404: Response("No such trial")},
        parameters=(TRIAL, AS_OF),
    ),
    Operation(
        "GET",
        "/trials/{trial_id}/patients/{patient_id}",
        "getPatient",
        "A patient's derived state, as of `as_of`",
        "trials",
        {
            200: Response("The patient's state", PatientSummary),
            400: BAD_AS_OF,
            404: Response("No such patient in this trial"),
        },
        parameters=(TRIAL, PATIENT, AS_OF),
    ),
    Operation(
        "GET",
        "/trials/{trial_id}/toxicity-boundary",
        "getToxicityBoundary",
        "The stopping boundary for dose-limiting toxicity and where the trial stands",
        "trials",
        {
            200: Response("The boundary", ToxicityBoundary),
            400: BAD_AS_OF,
            404: Response("No such trial"),
        },
        parameters=(TRIAL, AS_OF),
    ),
    Operation(
        "GET",
        "/trials/{trial_id}/report.pdf",
        "getTrialReportPdf",
        "The data monitoring committee's report of the trial as of a data cut (PDF)",
        "trials",
        {
            200: Response("The report", "application/pdf"),
            400: BAD_AS_OF,
            404: Response("No such trial, or nothing of it at or before `as_of`"),
        },
        parameters=(TRIAL, AS_OF),
    ),
    Operation(
        "GET",
        "/alerts",
        "listAlerts",
        "Recent alerts, newest detection first",
        "alerts",
        {
            200: Response(
                "The alerts",
                Alerts,
                links={
                    "acknowledge": {
                        "operationId": "acknowledgeAlert",
                        "parameters": {"alert_id": "$response.body#/alerts/0/alert_id"},
                    },
                    "patient": {
                        "operationId": "getPatient",
                        "parameters": {
                            "trial_id": "$response.body#/alerts/0/trial_id",
                            "patient_id": "$response.body#/alerts/0/patient_id",
                        },
                    },
                },
            )
        },
        parameters=(Parameter("trial_id", "query", "only this trial's alerts"),),
    ),
    Operation(
        "POST",
        "/alerts/{alert_id}/ack",
        "acknowledgeAlert",
        "Acknowledge an alert as the signed-in person, with an optional note",
        "alerts",
        {
            200: Response("Acknowledged: the alert as stored", StoredAlert),
            400: Response("The body is not a JSON object whose `note` is text without NUL"),
            404: Response("No such alert"),
            409: Response(
                "Acknowledged before: the first acknowledgement stands", AlreadyAcknowledged
            ),
            413: Response("The body is larger than 1 MiB"),
            503: NO_DATABASE,
        },
        role="physician",
        parameters=(Parameter("alert_id", "path", "`trial:patient:rule:level` (CONTRACT 4)"),),
        body=Acknowledgement,
    ),
    Operation(
        "GET",
        "/dead-letters",
        "listDeadLetters",
        "Messages that broke the contract, newest first",
        "dead-letters",
        {
            200: Response("A page of dead letters; payloads over 64 KiB left out", DeadLetters),
            400: Response("`status` is not new or redriven, `limit` not 1-1000, `after` bad"),
            503: NO_DATABASE,
        },
        role="data-manager",
        parameters=(
            Parameter("status", "query", "only these", {"enum": ["new", "redriven"]}),
            Parameter("limit", "query", "at most this many (1-1000)", {"type": "integer"}),
            Parameter("after", "query", "the `next` of the page before", {"type": "integer"}),
        ),
    ),
    Operation(
        "GET",
        "/dead-letters/{dead_letter_id}",
        "getDeadLetter",
        "One dead letter, its key and value whole",
        "dead-letters",
        {
            200: Response("The dead letter", DeadLetter),
            400: Response("The id is not a whole number"),
            404: Response("No such dead letter"),
            503: NO_DATABASE,
        },
        role="data-manager",
        parameters=(Parameter("dead_letter_id", "path", "its id", {"type": "integer"}),),
    ),
)
