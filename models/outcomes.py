"""Per-patient definitions of CONTRACT section 2, derived from a record as of an instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cartwatch.models.patient import AeReport, PatientRecord

DAY = 86400.0
# Remission assessment: marrow blasts below 5% (CONTRACT 2).
MARROW_REMISSION_BELOW = 5.0
# Relapse: marrow blasts >= 5% or blood blasts >= 1% after remission onset (CONTRACT 2).
MARROW_RELAPSE_AT = 5.0
BLOOD_RELAPSE_AT = 1.0
# Count recovery for CR: ANC >= 1.0 x10^9/L and PLT >= 100 x10^9/L within 7 days (CONTRACT 2).
ANC_RECOVERED_AT = 1.0
PLT_RECOVERED_AT = 100.0
COUNT_WINDOW = 7 * DAY
# MRD negativity: flow MRD below 0.01% (CONTRACT 2).
MRD_NEGATIVE_BELOW = 0.01

Response = Literal["CR", "CRi"]


@dataclass(frozen=True, slots=True)
class Toxicity:
    """One counted adverse event, as its reports stand as of the instant."""

    term: str
    grade: int
    onset: float
    resolved: float | None


@dataclass(frozen=True, slots=True)
class PatientOutcome:
    """What the cohort figures need to know about one infused patient."""

    t0: float
    remission_onset: float | None
    best_response: Response | None
    mrd_negative: bool
    relapse_at: float | None
    death_at: float | None
    dor_days: float | None
    dor_event: bool
    follow_up_days: float
    follow_up_event: bool  # reverse KM: True unless follow-up ended in death
    toxicities: list[Toxicity] = field(default_factory=list)


def derive_outcome(record: PatientRecord, as_of: float | None) -> PatientOutcome | None:
    """The patient's outcome counting events up to `as_of`; None when not infused."""

    def counted(t: float) -> bool:
        return as_of is None or t <= as_of

    infusions = [t for t in record.infusions if counted(t)]
    if not infusions:
        return None
    t0 = min(infusions)
    labs = {a: sorted(r for r in rows if counted(r[0])) for a, rows in record.labs.items()}
    marrow, blood = labs.get("BM_BLASTS", []), labs.get("PB_BLASTS", [])

    assessments = [t for t, v in marrow if t > t0 and v < MARROW_REMISSION_BELOW]
    onset = assessments[0] if assessments else None
    relapse = _relapse(onset, marrow, blood)
    death = min((t for t, s in record.dispositions if s == "death" and counted(t)), default=None)
    dor_days, dor_event = _duration_of_remission(onset, relapse, death, marrow + blood)
    follow_up_days, follow_up_event = _follow_up(record, t0, counted)
    return PatientOutcome(
        t0=t0,
        remission_onset=onset,
        best_response=_best_response(assessments, relapse, labs),
        mrd_negative=onset is not None
        and any(
            v < MRD_NEGATIVE_BELOW and t >= onset and (relapse is None or t < relapse)
            for t, v in labs.get("MRD", [])
        ),
        relapse_at=relapse,
        death_at=death,
        dor_days=dor_days,
        dor_event=dor_event,
        follow_up_days=follow_up_days,
        follow_up_event=follow_up_event,
        toxicities=counted_toxicities(record, t0, as_of),
    )


def _relapse(onset: float | None, marrow: list, blood: list) -> float | None:
    if onset is None:
        return None
    return min(
        [t for t, v in marrow if t > onset and v >= MARROW_RELAPSE_AT]
        + [t for t, v in blood if t > onset and v >= BLOOD_RELAPSE_AT],
        default=None,
    )


def _best_response(assessments: list[float], relapse: float | None, labs: dict) -> Response | None:
    if not assessments:
        return None
    anc, plt = _recovered(labs)
    for t in assessments:
        if relapse is not None and t >= relapse:
            break
        if _near(anc, t) and _near(plt, t):
            return "CR"
    return "CRi"


def response_at(assessment: float, labs: dict[str, list[tuple[float, float]]]) -> Response:
    """The response of one remission assessment: CR when ANC and PLT recovered within
    7 days of it (CONTRACT 2), else CRi. `labs` holds the labs counted as of the instant."""
    anc, plt = _recovered(labs)
    return "CR" if _near(anc, assessment) and _near(plt, assessment) else "CRi"


def _recovered(labs: dict) -> tuple[list[float], list[float]]:
    """Times of the recovered ANC and of the recovered PLT counts."""
    anc = [t for t, v in labs.get("ANC", []) if v >= ANC_RECOVERED_AT]
    plt = [t for t, v in labs.get("PLT", []) if v >= PLT_RECOVERED_AT]
    return anc, plt


def _near(times: list[float], t: float) -> bool:
    return any(abs(x - t) <= COUNT_WINDOW for x in times)


def _duration_of_remission(
    onset: float | None, relapse: float | None, death: float | None, blasts: list
) -> tuple[float | None, bool]:
    if onset is None:
        return None, False
    ends = [t for t in (relapse, death) if t is not None]
    if ends:
        return (min(ends) - onset) / DAY, True
    last = max(t for t, _ in blasts if t >= onset)  # the onset marrow itself qualifies
    return (last - onset) / DAY, False


def _follow_up(record: PatientRecord, t0: float, counted) -> tuple[float, bool]:
    ends = sorted((t, s) for t, s in record.dispositions if counted(t))
    if ends:
        at, status = ends[0]
        return (at - t0) / DAY, status != "death"
    last = max(t for t in record.event_times if counted(t))
    return (last - t0) / DAY, True


def counted_toxicities(record: PatientRecord, t0: float, as_of: float | None) -> list[Toxicity]:
    """Adverse events as of `as_of`: not withdrawn, onset at or after t0."""
    return [tox for tox in adverse_events_as_of(record, as_of).values() if tox.onset >= t0]


def adverse_events_as_of(record: PatientRecord, as_of: float | None) -> dict[str, Toxicity]:
    """Every adverse event (by ae_id) as its reports stand at `as_of`, withdrawn ones left
    out, whatever its onset; a resolution after `as_of` is not one yet."""
    out = {}
    for ae_id, reports in record.adverse_events.items():
        tox = _consolidate([r for r in reports if as_of is None or r.occurred <= as_of])
        if tox is None:
            continue
        if as_of is not None and tox.resolved is not None and tox.resolved > as_of:
            tox = Toxicity(tox.term, tox.grade, tox.onset, None)  # not yet resolved as of then
        out[ae_id] = tox
    return out


def _consolidate(reports: list[AeReport]) -> Toxicity | None:
    """Worst grade of the reports; term, onset and resolution of the latest one."""
    if not reports or any(r.entered_in_error for r in reports):
        return None
    latest = max(reports, key=lambda r: (r.occurred, r.arrival))
    grade = max(r.grade for r in reports)
    return Toxicity(latest.term, grade, latest.onset, latest.resolved)


def worst_grade(toxicities: list[Toxicity], term: str) -> int:
    """Highest grade among the toxicities of `term`; 0 when none."""
    return max((t.grade for t in toxicities if t.term == term), default=0)
