"""AE: every adverse event as its reports stand at the cut (CONTRACT 1: the worst grade of
its reports; term, onset and resolution of the latest), withdrawn ones left out.

Unlike the figures, AE keeps events with onset before the first infusion (lymphodepletion,
say); AETRTEM says whether an event counts as a toxicity (onset at or after t0, CONTRACT 2).
AEDECOD is the MedDRA preferred term for CRS and ICANS; any other term is taken as the
producer sent it (the contract asks for a MedDRA preferred term, e.g.).
"""

from __future__ import annotations

from cartwatch.models.outcomes import adverse_events_as_of
from cartwatch.models.patient import PatientRecord
from cartwatch.models.sdtm.dates import dtc, study_day
from cartwatch.models.sdtm.subjects import base, reference_start

PREFERRED_TERMS = {
    "CRS": "Cytokine release syndrome",
    "ICANS": "Immune effector cell-associated neurotoxicity syndrome",
}


def ae_rows(record: PatientRecord, as_of: float) -> list[dict]:
    """One row per adverse event, by onset."""
    t0 = reference_start(record)
    events = sorted(
        adverse_events_as_of(record, as_of).items(), key=lambda item: (item[1].onset, item[0])
    )
    return [
        base(record, "AE") | {
            "AESEQ": seq, "AESPID": ae_id, "AETERM": tox.term,
            "AEDECOD": PREFERRED_TERMS.get(tox.term, tox.term), "AETOXGR": str(tox.grade),
            "AESTDTC": dtc(tox.onset), "AEENDTC": dtc(tox.resolved),
            "AESTDY": study_day(tox.onset, t0), "AEENDY": study_day(tox.resolved, t0),
            "AETRTEM": "Y" if t0 is not None and tox.onset >= t0 else "N",
        }
        for seq, (ae_id, tox) in enumerate(events, start=1)
    ]  # fmt: skip
