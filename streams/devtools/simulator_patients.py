"""One simulated patient's messages: a plan in, contract events (JSON objects) out.

The plan (see `cartwatch.streams.devtools.simulator`) fixes every instant a cohort figure reads: the
infusion, the response marrow, the relapse, the last assessment and the disposition sit
at whole-day offsets from the infusion. Only the details around them are drawn from the
caller's `random.Random`: lab values, bedside readings, escalation steps, report delays.
Pure Python, no I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MONTH_DAYS = 30.4375  # CONTRACT 2
# Protocol: monthly visits from month 2; bone marrow at months 3, 6, 12 and 18.
MARROW_MONTHS = (3, 6, 12, 18)
CYTOKINE_DAYS = (0, 1, 2, 3, 5, 7, 10, 14)
# Peak values by CRS grade 0-4 (published CAR-T kinetics, order of magnitude only).
IL6_PEAK = (15.0, 150.0, 600.0, 2500.0, 8000.0)  # pg/mL
IFNG_PEAK = (10.0, 60.0, 250.0, 900.0, 3000.0)  # pg/mL
CRP_PEAK = (15.0, 80.0, 150.0, 230.0, 300.0)  # mg/L
FERRITIN_PEAK = (300.0, 1500.0, 4000.0, 12000.0, 30000.0)  # ng/mL
LOINC = {"IL6": "26881-3", "IFNG": "27415-9", "CRP": "1988-5", "FERRITIN": "2276-4"}
End = Literal["alive", "death", "withdrawn", "lost_to_follow_up"]


@dataclass(frozen=True, slots=True)
class Site:
    """A trial site: its clock and the units its laboratory reports in."""

    code: str
    utc_offset_hours: int
    crp_unit: str  # "mg/L" or "mg/dL" (x10 on intake)
    ferritin_unit: str
    count_unit: str

    @property
    def tz(self) -> timezone:
        """The site's fixed UTC offset."""
        return timezone(timedelta(hours=self.utc_offset_hours))


@dataclass(frozen=True, slots=True)
class Course:
    """The seed-independent disease course of one infused patient (days after infusion)."""

    marrow_day: int  # the first post-infusion marrow: remission onset for responders
    responder: bool
    relapse_day: int | None = None
    last_visit_day: int | None = None  # last blasts assessment when it precedes end_day
    end: End = "alive"
    end_day: int = 0  # last contact when alive, otherwise the disposition


@dataclass(frozen=True, slots=True)
class ToxicityPlan:
    """One CRS or ICANS episode: worst grade, onset after infusion, onset to resolution."""

    grade: int
    onset: timedelta
    duration: timedelta


@dataclass(frozen=True, slots=True)
class PatientPlan:
    """Everything the simulator decided for one patient."""

    patient_id: str
    site: Site
    screened_at: datetime
    t0: datetime | None = None  # None: screened, never infused
    course: Course | None = None
    response: Literal["CR", "CRi"] | None = None
    mrd_negative: bool = False
    crs: ToxicityPlan | None = None
    icans: ToxicityPlan | None = None
    erroneous_report: bool = False  # an ICANS report later marked entered_in_error
    screen_withdrawal: bool = False


class _Chart:
    """Collects one patient's events in the order they were written, numbering them."""

    def __init__(self, plan: PatientPlan, trial_id: str, rng: random.Random) -> None:
        self.plan, self.trial_id, self.rng = plan, trial_id, rng
        self.events: list[dict] = []

    def day(self, days: float) -> datetime:
        """The instant `days` after the infusion."""
        assert self.plan.t0 is not None
        return self.plan.t0 + days * DAY

    def stamp(self, at: datetime) -> str:
        """RFC 3339 in the site's local offset."""
        return at.astimezone(self.plan.site.tz).isoformat(timespec="seconds")

    def add(self, kind: str, at: datetime, **fields: object) -> None:
        """Append one event of type `kind` that occurred at `at`."""
        n = len(self.events) + 1
        self.events.append(
            {
                "event_id": f"{self.trial_id}/{self.plan.patient_id}/{n:04d}",
                "type": kind,
                "trial_id": self.trial_id,
                "patient_id": self.plan.patient_id,
                "occurred_at": self.stamp(at),
                **fields,
            }
        )

    def lab(self, at: datetime, analyte: str, value: float, unit: str) -> None:
        """A lab result, with its LOINC code when the contract names one."""
        extra = {"loinc": LOINC[analyte]} if analyte in LOINC else {}
        self.add("lab", at, analyte=analyte, value=value, unit=unit, **extra)

    def observe(self, at: datetime, code: str, value: object) -> None:
        """A bedside observation."""
        self.add("observation", at, code=code, value=value)


def patient_events(plan: PatientPlan, trial_id: str, rng: random.Random) -> list[dict]:
    """All of one patient's messages, in the order they were written."""
    chart = _Chart(plan, trial_id, rng)
    _screening(chart)
    if plan.t0 is None or plan.course is None:
        if plan.screen_withdrawal:
            chart.add("disposition", plan.screened_at + 20 * DAY, status="withdrawn")
        return chart.events
    chart.add("infusion", plan.t0, product="CD19 CAR-T", dose_cells_per_kg=1.0e6, lot=_lot(rng))
    _cytokines(chart)
    _temperatures(chart)
    for number, (term, tox) in enumerate((("CRS", plan.crs), ("ICANS", plan.icans)), 1):
        if tox is not None:
            _toxicity(chart, f"{plan.patient_id}-AE{number}", term, tox)
    if plan.erroneous_report:
        _erroneous_report(chart)
    _response_marrow(chart)
    _follow_up(chart, plan.course)
    return chart.events


def _lot(rng: random.Random) -> str:
    return f"L-{rng.randint(1000, 9999)}"


def _screening(chart: _Chart) -> None:
    """Screening labs: a high marrow blast burden, LDH and blood counts."""
    rng, at, unit = chart.rng, chart.plan.screened_at, chart.plan.site.count_unit
    chart.lab(at, "BM_BLASTS", round(rng.uniform(20, 95), 1), "%")
    chart.lab(at + HOUR, "LDH", round(rng.uniform(180, 900)), "U/L")
    chart.lab(at + HOUR, "ANC", round(rng.uniform(0.2, 2.5), 2), unit)
    chart.lab(at + HOUR, "PLT", round(rng.uniform(15, 160)), unit)


def _surge(day: float, peak_day: float, width: float) -> float:
    return math.exp(-(((day - peak_day) / width) ** 2))


def _cytokines(chart: _Chart) -> None:
    """IL-6, IFN-gamma, CRP and ferritin over two weeks, peaking a day after CRS onset."""
    plan, rng = chart.plan, chart.rng
    grade = plan.crs.grade if plan.crs else 0
    peak_day = plan.crs.onset / DAY + 1 if plan.crs else 4.0
    scale = rng.uniform(0.6, 1.5)
    crp_factor = 0.1 if plan.site.crp_unit == "mg/dL" else 1.0
    for day in CYTOKINE_DAYS:
        at = chart.day(day) - 2 * HOUR  # day 0: before the infusion
        fast, slow = _surge(day, peak_day, 2.0), _surge(day, peak_day + 1, 5.0)
        chart.lab(at, "IL6", round(3 + IL6_PEAK[grade] * scale * fast, 1), "pg/mL")
        chart.lab(at, "IFNG", round(2 + IFNG_PEAK[grade] * scale * fast, 1), "pg/mL")
        crp = (4 + CRP_PEAK[grade] * scale * slow) * crp_factor
        chart.lab(at, "CRP", round(crp, 2), plan.site.crp_unit)
        ferritin = 500 + FERRITIN_PEAK[grade] * scale * slow
        chart.lab(at, "FERRITIN", round(ferritin), plan.site.ferritin_unit)


def _temperatures(chart: _Chart) -> None:
    """A morning temperature each day to day 14: febrile during the first days of CRS."""
    crs, rng = chart.plan.crs, chart.rng
    for day in range(15):
        at = chart.day(day) + 6 * HOUR
        since = (at - chart.day(0) - crs.onset) / DAY if crs else -1.0
        febrile = crs is not None and 0 <= since < min(crs.duration / DAY, 4)
        temp = rng.uniform(38.1, 39.8) if febrile else rng.uniform(36.3, 37.5)
        chart.observe(at, "temperature_c", round(temp, 1))


def _toxicity(chart: _Chart, ae_id: str, term: str, tox: ToxicityPlan) -> None:
    """Reports that escalate one grade at a time to the worst grade, then one that resolves."""
    rng, onset = chart.rng, chart.day(0) + tox.onset
    resolved = onset + tox.duration
    step = min(tox.duration / (2 * tox.grade), rng.uniform(6, 20) * HOUR)
    base = {"ae_id": ae_id, "term": term, "onset_at": chart.stamp(onset)}
    for grade in range(1, tox.grade + 1):
        at = onset + (grade - 1) * step
        _bedside(chart, term, grade, at)
        treatments = _treatments(term, grade)
        extra = {"treatments": treatments} if treatments else {}
        report_at = at + rng.uniform(0.5, 3) * HOUR
        chart.add("adverse_event", report_at, grade=grade, **base, **extra)
    _bedside(chart, term, 0, resolved)
    report_at = resolved + rng.uniform(2, 20) * HOUR
    chart.add(
        "adverse_event", report_at, grade=tox.grade, resolved_at=chart.stamp(resolved), **base
    )


def _treatments(term: str, grade: int) -> list[str]:
    """ASTCT-era practice: tocilizumab from CRS grade 2, steroids from CRS 3 / ICANS 2."""
    if term == "CRS":
        return ["tocilizumab", "corticosteroids"][: (grade >= 2) + (grade >= 3)]
    return ["corticosteroids"] if grade >= 2 else []


def _bedside(chart: _Chart, term: str, grade: int, at: datetime) -> None:
    """Observations that support the grade (ASTCT 2019 consensus); grade 0 = recovered."""
    if term == "CRS":
        _crs_bedside(chart, grade, at)
    else:
        _icans_bedside(chart, grade, at)


def _crs_bedside(chart: _Chart, grade: int, at: datetime) -> None:
    # ASTCT CRS: 1 fever; 2 hypotension without vasopressors and/or O2 <= 6 L/min;
    # 3 one vasopressor and/or high-flow O2 > 6 L/min; 4 several vasopressors and/or
    # positive pressure.
    rng = chart.rng
    oxygen = [
        {"device": "room_air", "flow_lpm": None},
        {"device": "room_air", "flow_lpm": None},
        {"device": "low_flow_cannula", "flow_lpm": rng.choice([2, 3, 4, 5])},
        {"device": "high_flow_cannula", "flow_lpm": rng.choice([10, 15, 20, 30])},
        {"device": rng.choice(["bipap", "mechanical_ventilation"]), "flow_lpm": None},
    ][grade]
    temp = rng.uniform(36.4, 37.3) if grade == 0 else rng.uniform(38.3, 40.1)
    sbp = rng.randint(105, 135) if grade <= 1 else rng.randint(72, 88)
    chart.observe(at, "temperature_c", round(temp, 1))
    chart.observe(at, "systolic_bp_mmhg", sbp)
    chart.observe(at, "vasopressors", (0, 0, 0, 1, 2)[grade])
    chart.observe(at, "oxygen", oxygen)
    if grade >= 2:
        chart.observe(at, "anti_cytokine_given", True)


def _icans_bedside(chart: _Chart, grade: int, at: datetime) -> None:
    # ASTCT ICANS: ICE 7-9 grade 1, 3-6 grade 2, 0-2 grade 3, 0 (unarousable) grade 4;
    # a self-limiting seizure is grade 3, diffuse cerebral edema grade 4.
    rng = chart.rng
    ice = (10, rng.randint(7, 9), rng.randint(3, 6), rng.randint(0, 2), 0)[grade]
    level = ("awake", "awake", "awakens_to_voice", "awakens_to_touch", "unarousable")[grade]
    chart.observe(at, "ice_score", ice)
    chart.observe(at, "consciousness", level)
    if grade >= 3:
        chart.observe(at, "seizure", "self_limiting" if grade == 3 else "none")
    if grade == 4:
        chart.observe(at, "cerebral_edema", rng.choice(["none", "diffuse"]))


def _erroneous_report(chart: _Chart) -> None:
    """An ICANS report filed against the wrong patient, withdrawn the next day."""
    onset = chart.day(6) + 3 * HOUR
    base = {"ae_id": f"{chart.plan.patient_id}-AE9", "term": "ICANS", "grade": 1}
    base["onset_at"] = chart.stamp(onset)
    chart.add("adverse_event", onset + 2 * HOUR, **base)
    chart.add("adverse_event", onset + 26 * HOUR, status="entered_in_error", **base)


def _response_marrow(chart: _Chart) -> None:
    """The day-28 marrow with its blood counts; MRD for responders."""
    plan, rng = chart.plan, chart.rng
    assert plan.course is not None
    at = chart.day(plan.course.marrow_day)
    if not plan.course.responder:
        chart.lab(at, "BM_BLASTS", round(rng.uniform(8, 90), 1), "%")
        _counts(chart, at - rng.randint(0, 2) * DAY, recovered=False)
        return
    chart.lab(at, "BM_BLASTS", round(rng.uniform(0, 3.5), 1), "%")
    _mrd(chart, at)
    _counts(chart, at - rng.randint(0, 3) * DAY, recovered=plan.response == "CR")


def _mrd(chart: _Chart, at: datetime) -> None:
    # Flow MRD negativity is < 0.01% (CONTRACT 2).
    rng = chart.rng
    value = rng.uniform(0, 0.008) if chart.plan.mrd_negative else rng.uniform(0.02, 1.5)
    chart.lab(at, "MRD", round(value, 4), "%")


def _counts(chart: _Chart, at: datetime, recovered: bool) -> None:
    """ANC and platelets: both recovered (CR), or platelets short of 100 (CRi)."""
    rng, unit = chart.rng, chart.plan.site.count_unit
    anc = rng.uniform(1.1, 4.0) if recovered else rng.uniform(0.3, 2.0)
    plt = rng.uniform(105, 260) if recovered else rng.uniform(20, 95)
    chart.lab(at, "ANC", round(anc, 2), unit)
    chart.lab(at, "PLT", round(plt), unit)


def _visit_days(after: int, before: int) -> list[int]:
    """Protocol visit days (monthly from month 2) at least a week clear of both bounds."""
    days = (round(MONTH_DAYS * month) for month in range(2, 30))
    return [d for d in days if after + 7 <= d <= before - 7]


def _follow_up(chart: _Chart, course: Course) -> None:
    """Visits in remission, the relapse, visits after it, and how follow-up ends."""
    remission_until = course.relapse_day or course.last_visit_day or course.end_day
    if course.responder:
        for day in _visit_days(course.marrow_day, remission_until):
            _remission_visit(chart, day)
    if course.relapse_day is not None:
        _relapse_visit(chart, course.relapse_day)
    if course.last_visit_day is not None:
        _remission_visit(chart, course.last_visit_day)
    elif course.relapse_day is not None or not course.responder:
        start = course.relapse_day or course.marrow_day
        for day in _visit_days(start, course.end_day):
            chart.lab(chart.day(day), "PB_BLASTS", round(chart.rng.uniform(0, 60), 1), "%")
    _end_of_follow_up(chart, course)


def _remission_visit(chart: _Chart, day: int) -> None:
    """Blood blasts every visit; marrow, MRD and counts at the protocol marrow months."""
    at = chart.day(day)
    chart.lab(at, "PB_BLASTS", 0.0, "%")
    if any(abs(day - round(MONTH_DAYS * m)) < 1 for m in MARROW_MONTHS):
        chart.lab(at, "BM_BLASTS", round(chart.rng.uniform(0, 2.5), 1), "%")
        _mrd(chart, at)
        _counts(chart, at, recovered=chart.plan.response == "CR")


def _relapse_visit(chart: _Chart, day: int) -> None:
    """Blasts back in blood (>= 1%) and marrow (>= 5%): relapse (CONTRACT 2)."""
    at, rng = chart.day(day), chart.rng
    chart.lab(at, "PB_BLASTS", round(rng.uniform(2, 40), 1), "%")
    chart.lab(at, "BM_BLASTS", round(rng.uniform(15, 85), 1), "%")


def _end_of_follow_up(chart: _Chart, course: Course) -> None:
    """Last contact while alive, or the disposition (deaths are from the disease only)."""
    at = chart.day(course.end_day)
    if course.end == "alive":
        remission = course.responder and course.relapse_day is None
        value = 0.0 if remission else round(chart.rng.uniform(0, 60), 1)
        chart.lab(at, "PB_BLASTS", value, "%")
    elif course.end == "death":
        cause = "relapsed B-ALL" if course.relapse_day else "refractory B-ALL"
        chart.add("disposition", at, status="death", cause=f"progressive disease ({cause})")
    elif course.end == "withdrawn":
        chart.add("disposition", at, status="withdrawn", cause="consent withdrawn")
    else:
        chart.add("disposition", at, status="lost_to_follow_up")
