"""LB (every lab result) and RS (the responses of CONTRACT 2).

LB: with the events (a replayed file) each row holds the result as sent (LBORRES,
LBORRESU, read from the message's bytes: a decoded event is already canonical) and its
conversion to the contract's canonical unit (LBSTRESN, LBSTRESU) by `models/units.py`, the
intake's own conversion. With records only (the database), the
record keeps the canonical value of the analytes the definitions read: LBORRES is that value
in the canonical unit (docs/DECISIONS.md).
"""

from __future__ import annotations

import json

from cartwatch.models.events import Lab
from cartwatch.models.outcomes import MARROW_REMISSION_BELOW, derive_outcome, response_at
from cartwatch.models.patient import PatientRecord
from cartwatch.models.sdtm.dates import dtc, study_day
from cartwatch.models.sdtm.subjects import base, reference_start
from cartwatch.models.units import canonical_unit, to_canonical

# analyte -> (LBTESTCD, LBTEST, LBSPEC, LBMETHOD): CDISC test codes where one exists.
TESTS = {
    "IL6": ("IL6", "Interleukin 6", "", ""),
    "IFNG": ("IFNG", "Interferon Gamma", "", ""),
    "CRP": ("CRP", "C Reactive Protein", "", ""),
    "FERRITIN": ("FERRITIN", "Ferritin", "", ""),
    "LDH": ("LDH", "Lactate Dehydrogenase", "", ""),
    "CREATININE": ("CREAT", "Creatinine", "", ""),
    "ANC": ("NEUT", "Neutrophils", "", ""),
    "PLT": ("PLAT", "Platelets", "", ""),
    "BM_BLASTS": ("BLASTS", "Blasts", "BONE MARROW", ""),
    "PB_BLASTS": ("BLASTS", "Blasts", "BLOOD", ""),
    "MRD": ("MRD", "Measurable Residual Disease", "", "FLOW CYTOMETRY"),
}
ASSESSMENT = {"RSTESTCD": "OVRLRESP", "RSTEST": "Overall Response"}


def number_text(value: float) -> str:
    """The shortest text that reads back as the same float: 12, 0.1, 45.23."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def lb_rows(record: PatientRecord, labs: list[tuple[Lab, bytes]] | None) -> list[dict]:
    """One row per lab result, in time order."""
    if labs is None:
        results = [
            (t, analyte, value, canonical_unit(analyte), value, canonical_unit(analyte), None)
            for analyte, rows in record.labs.items()
            for t, value in rows
        ]
    else:
        results = [_as_sent(e, raw) for e, raw in labs]
    t0 = reference_start(record)
    rows = []
    for seq, (at, analyte, value, unit, standard, standard_unit, loinc) in enumerate(
        sorted(results, key=lambda r: (r[0], r[1], r[2])), start=1
    ):
        code, name, specimen, method = TESTS[analyte]
        rows.append(
            base(record, "LB") | {
                "LBSEQ": seq, "LBTESTCD": code, "LBTEST": name, "LBSPEC": specimen,
                "LBMETHOD": method, "LBLOINC": loinc or "",
                "LBORRES": number_text(value), "LBORRESU": unit,
                "LBSTRESC": number_text(standard), "LBSTRESN": standard,
                "LBSTRESU": standard_unit, "LBDTC": dtc(at), "LBDY": study_day(at, t0),
            }
        )  # fmt: skip
    return rows


def _as_sent(lab: Lab, raw: bytes) -> tuple:
    sent = json.loads(raw)  # accepted: a JSON object with a number `value` and a `unit`
    value, unit = float(sent["value"]), sent["unit"]
    standard, standard_unit = to_canonical(lab.analyte.value, value, unit)
    return (lab.occurred_at.timestamp(), lab.analyte.value, value, unit, standard,
            standard_unit, lab.loinc)  # fmt: skip


def rs_rows(record: PatientRecord, as_of: float) -> list[dict]:
    """Each remission assessment before relapse (CR or CRi, CONTRACT 2), then the relapse."""
    outcome = derive_outcome(record, as_of)
    if outcome is None or outcome.remission_onset is None:
        return []
    labs = {a: sorted(rows) for a, rows in record.labs.items()}
    relapse = outcome.relapse_at
    found = [
        (t, response_at(t, labs))
        for t, v in labs.get("BM_BLASTS", [])
        if t > outcome.t0 and v < MARROW_REMISSION_BELOW and (relapse is None or t < relapse)
    ]
    if relapse is not None:
        found.append((relapse, "RELAPSE"))
    return [
        base(record, "RS") | {"RSSEQ": seq} | ASSESSMENT | {
            "RSORRES": result, "RSSTRESC": result, "RSDTC": dtc(at),
            "RSDY": study_day(at, outcome.t0),
        }
        for seq, (at, result) in enumerate(found, start=1)
    ]  # fmt: skip
