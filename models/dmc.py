"""Everything the data monitoring committee's report shows of one trial as of a data cut.

The figures are those of the JSON trial report (CONTRACT 5, `trial_report`) over the
records cut at `as_of` (`models/data_cut.py`), with what a DMC reads beside them: the
intervals of the two medians, the curves, onset and duration ranges, every patient's lane,
the listings, the alerts and the stopping boundary. Pure: the shell draws and prints it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cartwatch.models.alert_summary import AlertLine, alert_lines
from cartwatch.models.cohort import DAYS_PER_MONTH, toxicity_times, trial_report
from cartwatch.models.data_cut import fingerprint, records_as_of
from cartwatch.models.dlt import boundary_report
from cartwatch.models.listings import Death, SevereEvent, deaths, severe_events
from cartwatch.models.outcomes import PatientOutcome, derive_outcome
from cartwatch.models.patient import PatientRecord
from cartwatch.models.stopping import StoppingConfig
from cartwatch.models.survival import km_median_ci, reverse_km_median_ci
from cartwatch.models.swimmer import Lane, swimmer_lanes

Interval = tuple[float | None, float | None]


@dataclass(frozen=True, slots=True)
class Curve:
    """Times in months and their flags (True: the event) for a Kaplan-Meier chart."""

    months: list[float]
    events: list[bool]


@dataclass(frozen=True, slots=True)
class ToxicityTimes:
    """Onset days (per patient) and durations (per resolved event) of CRS or ICANS."""

    onset_days: list[float]
    durations: list[float]


@dataclass(frozen=True, slots=True)
class DmcFigures:
    """One trial's figures as of the cut; `report` is the CONTRACT 5 trial report."""

    trial_id: str
    as_of: float
    fingerprint: str
    n_patients: int  # every patient with data at the cut, infused or not
    report: dict
    dor_ci: Interval  # months
    follow_up_ci: Interval  # months
    dor: Curve
    follow_up: Curve  # reverse Kaplan-Meier: the event is anything but death
    toxicity: dict[str, ToxicityTimes]
    lanes: list[Lane]
    severe: list[SevereEvent]
    deaths: list[Death]
    alerts: list[AlertLine]
    n_alerts: int
    boundary: dict  # `boundary_report`, with the DLT definition's grade and window


def dmc_figures(
    trial_id: str,
    records: Iterable[PatientRecord],
    as_of: float,
    stopping: StoppingConfig,
    alerts: Iterable[dict] = (),
) -> DmcFigures | None:
    """The trial's figures from its records cut at `as_of`; None when it has no data then.
    `alerts` are the trial's alerts raised by the cut (CONTRACT 4 dicts)."""
    cut = records_as_of((r for r in records if r.trial_id == trial_id), as_of)
    if not cut:
        return None
    outcomes = [o for r in cut if (o := derive_outcome(r, as_of)) is not None]
    responders = [p for p in outcomes if p.remission_onset is not None]
    dor = Curve([_months(p.dor_days) for p in responders], [p.dor_event for p in responders])
    follow_up = _follow_up(outcomes)
    shown = list(alerts)
    return DmcFigures(
        trial_id=trial_id,
        as_of=as_of,
        fingerprint=fingerprint(cut),
        n_patients=len(cut),
        report=trial_report(trial_id, outcomes),
        dor_ci=km_median_ci(dor.months, dor.events),
        follow_up_ci=reverse_km_median_ci(follow_up.months, [not e for e in follow_up.events]),
        dor=dor,
        follow_up=follow_up,
        toxicity={t: ToxicityTimes(*toxicity_times(outcomes, t)) for t in ("CRS", "ICANS")},
        lanes=swimmer_lanes(cut, as_of),
        severe=severe_events(cut, as_of),
        deaths=deaths(cut, as_of),
        alerts=alert_lines(shown),
        n_alerts=len(shown),
        boundary=boundary_report(cut, stopping, as_of)
        | {"dlt_min_grade": stopping.dlt_min_grade, "dlt_window_days": stopping.dlt_window_days},
    )


def _follow_up(outcomes: list[PatientOutcome]) -> Curve:
    return Curve(
        [_months(p.follow_up_days) for p in outcomes], [p.follow_up_event for p in outcomes]
    )


def _months(days: float | None) -> float:
    assert days is not None  # a responder's DOR, a patient's follow-up: always set
    return days / DAYS_PER_MONTH
