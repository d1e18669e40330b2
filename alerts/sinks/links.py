"""Links to the safety desk's pages, shared by the sinks (the alert's `desk_url`) and the desk.

Ids go in the path, each percent-encoded as one segment (a `/` in an id stays inside its
segment), never in a query string: URLs end up in logs and browser histories.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

DESK_PATH = "/desk"


def segment(value: str) -> str:
    """An id as one percent-encoded path segment."""
    return quote(value, safe="")


def trial_path(trial_id: str) -> str:
    """`/desk/trials/{trial_id}`: the trial's figures."""
    return f"{DESK_PATH}/trials/{segment(trial_id)}"


def patient_path(trial_id: str, patient_id: str) -> str:
    """`/desk/trials/{trial_id}/patients/{patient_id}`: the patient's course and alerts."""
    return f"{trial_path(trial_id)}/patients/{segment(patient_id)}"


def acknowledge_path(alert_id: str) -> str:
    """`/desk/alerts/{alert_id}/ack`: where the desk's acknowledgement form posts."""
    return f"{DESK_PATH}/alerts/{segment(alert_id)}/ack"


def alert_path(alert: dict[str, Any]) -> str:
    """The page of an alert: its patient's, or its trial's for a trial-level alert."""
    if alert.get("patient_id"):
        return patient_path(alert["trial_id"], alert["patient_id"])
    return trial_path(alert["trial_id"])


def desk_url(base_url: str, alert: dict[str, Any]) -> str:
    """The absolute link to an alert's page under the desk's public base URL."""
    return base_url.rstrip("/") + alert_path(alert)
