"""Dose-limiting toxicities of a trial, counted against its stopping boundary.

A DLT (default) is a CRS or ICANS of grade >= 4, or any toxicity of grade 5, with onset
within 28 days of the patient's first infusion (t0), as the adverse-event reports stand
(CONTRACT 2: counted, not withdrawn). A patient becomes evaluable at the onset of a DLT,
or without one once the trial's clock has passed t0 + 28 days; a patient whose follow-up
ended (death, withdrawal, loss) earlier without a DLT is not evaluable. Patients count in
the order they became evaluable; patients evaluable at the same instant count together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby

from cartwatch.models.outcomes import DAY, counted_toxicities
from cartwatch.models.patient import PatientRecord
from cartwatch.models.stopping import StoppingConfig, boundary_table, compute_boundary

GRADED_TERMS = ("CRS", "ICANS")


@dataclass(frozen=True, slots=True)
class DltCourse:
    """One infused patient's part in the monitoring, as of their latest event."""

    t0: float
    dlt_at: float | None  # onset of the first dose-limiting toxicity
    follow_up_ended: float | None  # earliest disposition
    last_event: float

    def evaluable_from(self, config: StoppingConfig) -> float | None:
        """When the patient counts: at the DLT, or at the end of the DLT window."""
        if self.dlt_at is not None:
            return self.dlt_at
        window_end = self.t0 + config.dlt_window_days * DAY
        if self.follow_up_ended is not None and self.follow_up_ended < window_end:
            return None
        return window_end


@dataclass(frozen=True, slots=True)
class ToxicityStatus:
    """Where the trial stands against its boundary as of `as_of`."""

    as_of: float | None
    n_evaluable: int
    n_dlt: int
    stop_at_dlt: int | None  # the boundary at n_evaluable
    crossed_at: tuple[int, int] | None  # (evaluable, DLTs) where the path first crossed

    def to_dict(self) -> dict:
        crossed = self.crossed_at
        return {
            "n_evaluable": self.n_evaluable,
            "n_dlt": self.n_dlt,
            "stop_at_dlt": self.stop_at_dlt,
            "crossed": crossed is not None,
            "crossed_at": None
            if crossed is None
            else {"n_evaluable": crossed[0], "n_dlt": crossed[1]},
        }


def dlt_course(record: PatientRecord, config: StoppingConfig) -> DltCourse | None:
    """The patient's DLT course from every event of the record; None when not infused."""
    if not record.infusions:
        return None
    t0 = min(record.infusions)
    onsets = [
        tox.onset
        for tox in counted_toxicities(record, t0, None)
        if tox.onset <= t0 + config.dlt_window_days * DAY
        and (tox.grade >= 5 or (tox.term in GRADED_TERMS and tox.grade >= config.dlt_min_grade))
    ]
    return DltCourse(
        t0=t0,
        dlt_at=min(onsets, default=None),
        follow_up_ended=min((t for t, _ in record.dispositions), default=None),
        last_event=max(record.event_times),
    )


def toxicity_status(
    courses: Iterable[DltCourse], config: StoppingConfig, as_of: float | None = None
) -> ToxicityStatus:
    """Walk the evaluable patients in order and check the boundary after each instant."""
    courses = list(courses)
    clock = as_of if as_of is not None else max((c.last_event for c in courses), default=None)
    boundary = compute_boundary(config)
    timeline = sorted(
        (at, course.dlt_at is not None)
        for course in courses
        if (at := course.evaluable_from(config)) is not None and clock is not None and at <= clock
    )
    n = dlts = 0
    crossed = None
    for _, group in groupby(timeline, key=lambda row: row[0]):
        for _, is_dlt in group:
            n, dlts = n + 1, dlts + is_dlt
        stop = boundary.stop_at(n)
        if crossed is None and stop is not None and dlts >= stop:
            crossed = (n, dlts)
    return ToxicityStatus(clock, n, dlts, boundary.stop_at(n), crossed)


def boundary_report(
    records: Iterable[PatientRecord], config: StoppingConfig, as_of: float | None = None
) -> dict:
    """The trial's stopping boundary (its table and settings) and where the trial stands."""
    courses = [c for r in records if (c := dlt_course(r, config)) is not None]
    return {
        "method": config.method,
        "p0": config.p0,
        "max_patients": config.max_patients,
        "status": toxicity_status(courses, config, as_of).to_dict(),
        "table": boundary_table(config),
    }
