"""DM (one row per patient), EX (one per infusion) and DS (one per disposition)."""

from __future__ import annotations

from cartwatch.models.events import Infusion
from cartwatch.models.patient import PatientRecord
from cartwatch.models.sdtm.dates import dtc, study_day

# The contract's dispositions and their CDISC terms (NCOMPLT); "withdrawn" names no party,
# and withdrawal by the subject is what a trial's withdrawal of consent records.
DSDECOD = {
    "death": "DEATH",
    "withdrawn": "WITHDRAWAL BY SUBJECT",
    "lost_to_follow_up": "LOST TO FOLLOW-UP",
}
# When the source holds records only (the database), the infusion's product, dose and lot
# are not known: the record keeps each infusion's time (docs/DECISIONS.md).
UNNAMED_PRODUCT = "CAR T-CELL PRODUCT"
ROUTE = "INTRAVENOUS"


def usubjid(record: PatientRecord) -> str:
    """STUDYID-SUBJID: unique per patient across trials (docs/DECISIONS.md)."""
    return f"{record.trial_id}-{record.patient_id}"


def base(record: PatientRecord, domain: str) -> dict:
    """The identifiers every row starts with."""
    return {"STUDYID": record.trial_id, "DOMAIN": domain, "USUBJID": usubjid(record)}


def reference_start(record: PatientRecord) -> float | None:
    """RFSTDTC: the first infusion (t0), None when not infused."""
    return min(record.infusions, default=None)


def dm_row(record: PatientRecord) -> dict:
    """Reference dates, end of participation (where follow-up ends, CONTRACT 2: the earliest
    disposition, else the latest event) and death, of a record cut at the data cut."""
    t0 = reference_start(record)
    ends = sorted(t for t, _ in record.dispositions)
    end = ends[0] if ends else max(record.event_times, default=None)
    death = min((t for t, s in record.dispositions if s == "death"), default=None)
    return base(record, "DM") | {
        "SUBJID": record.patient_id,
        "RFSTDTC": dtc(t0),
        "RFENDTC": dtc(end),
        "RFXSTDTC": dtc(t0),
        "RFXENDTC": dtc(max(record.infusions, default=None)),
        "RFPENDTC": dtc(end),
        "DTHDTC": dtc(death),
        "DTHFL": "Y" if death is not None else "",
    }


def ex_rows(record: PatientRecord, infusions: list[tuple[Infusion, bytes]] | None) -> list[dict]:
    """One row per infusion: product, dose and lot from the events when the source has them."""
    t0 = reference_start(record)
    if infusions is None:
        given = [(t, UNNAMED_PRODUCT, None, "") for t in sorted(record.infusions)]
    else:
        given = sorted(
            (e.occurred_at.timestamp(), e.product, e.dose_cells_per_kg, e.lot or "")
            for e, _ in infusions
        )
    return [
        base(record, "EX") | {
            "EXSEQ": seq, "EXTRT": product, "EXDOSE": dose,
            "EXDOSU": "cells/kg" if dose is not None else "", "EXROUTE": ROUTE, "EXLOT": lot,
            "EXSTDTC": dtc(at), "EXENDTC": dtc(at),
            "EXSTDY": study_day(at, t0), "EXENDY": study_day(at, t0),
        }
        for seq, (at, product, dose, lot) in enumerate(given, start=1)
    ]  # fmt: skip


def ds_rows(record: PatientRecord) -> list[dict]:
    """One row per disposition (death, withdrawal, loss to follow-up), in time order."""
    t0 = reference_start(record)
    return [
        base(record, "DS") | {
            "DSSEQ": seq, "DSTERM": status, "DSDECOD": DSDECOD[status],
            "DSCAT": "DISPOSITION EVENT", "DSSTDTC": dtc(at), "DSSTDY": study_day(at, t0),
        }
        for seq, (at, status) in enumerate(sorted(record.dispositions), start=1)
    ]  # fmt: skip
