"""SDTM-shaped datasets of one trial as of a data cut: DM, EX, LB, AE, RS, DS.

Built from the records cut at `as_of` (the same as every figure), and, when the source is
an events file, from the accepted events and the bytes they came as, for what a record does
not keep (an infusion's product, dose and lot; a lab's result and unit as sent, and the
analytes the definitions do not read). Pure: `streams/reports/datasets.py` writes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cartwatch.models.data_cut import records_as_of
from cartwatch.models.events import Event, Infusion, Lab
from cartwatch.models.patient import PatientRecord
from cartwatch.models.sdtm.adverse import ae_rows
from cartwatch.models.sdtm.findings import lb_rows, rs_rows
from cartwatch.models.sdtm.subjects import dm_row, ds_rows, ex_rows
from cartwatch.models.sdtm.variables import VARIABLES, Variable, define_rows

__all__ = ["VARIABLES", "Datasets", "Variable", "define_rows", "trial_datasets"]

# An accepted event and the bytes it came as (`cartwatch.alerts.replay.Accepted`).
Sent = tuple[Event, bytes]


@dataclass(frozen=True, slots=True)
class Datasets:
    """Rows of each domain, in VARIABLES' order of domains; each row a dict by variable."""

    trial_id: str
    tables: dict[str, list[dict]]


def trial_datasets(
    trial_id: str,
    records: Iterable[PatientRecord],
    as_of: float,
    events: Iterable[Sent] | None = None,
) -> Datasets | None:
    """The trial's datasets as of the cut; None when the trial has no data then."""
    cut = records_as_of((r for r in records if r.trial_id == trial_id), as_of)
    if not cut:
        return None
    raw: dict[str, list[Sent]] | None = None
    if events is not None:
        raw = {}
        for event, sent in events:
            if event.trial_id == trial_id and event.occurred_at.timestamp() <= as_of:
                raw.setdefault(event.patient_id, []).append((event, sent))
    tables: dict[str, list[dict]] = {domain: [] for domain in VARIABLES}
    for record in cut:
        mine = None if raw is None else raw.get(record.patient_id, [])
        tables["DM"].append(dm_row(record))
        tables["EX"] += ex_rows(record, _of(mine, Infusion))
        tables["LB"] += lb_rows(record, _of(mine, Lab))
        tables["AE"] += ae_rows(record, as_of)
        tables["RS"] += rs_rows(record, as_of)
        tables["DS"] += ds_rows(record)
    return Datasets(trial_id, tables)


def _of(events: list[Sent] | None, kind: type) -> list | None:
    return None if events is None else [(e, b) for e, b in events if isinstance(e, kind)]
