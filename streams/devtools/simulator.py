"""A synthetic CD19 CAR-T trial in adult B-ALL, calibrated to published headline figures.

`simulate_trial(seed)` returns every message of the trial as a producer would send it:
contract events in a realistic arrival order, a few exact re-sends, a few re-used
event_ids with other content, and a few invalid lines. Pure Python, deterministic for a
seed (stdlib `random.Random(seed)` only).

Calibration (what a statistician needs to check it)
---------------------------------------------------
Targets, as `cartwatch.models.cohort.cohort_reports` computes them at `as_of = DATA_CUT`: 94
infused; remission 75/94 (0.798, exact 95% CI 0.702-0.874); 48 of them in remission
(0.64); median duration of remission 17.8 months; median follow-up 12.9 months; CRS in
~90% (~25% grade >= 3, median onset day ~5, median duration ~8 days); ICANS in ~60%
(~25% grade >= 3); every toxicity resolved; deaths from the disease only.

The figures hold by construction, not by luck of the draw. The seed-independent design
(`design_courses`) fixes, for each of 94 infusion slots, the course and every instant a
figure reads, as whole days after that patient's infusion: the response marrow (day
26-31, the first marrow < 5% blasts is the remission onset), the relapse (marrow >= 5% and
blood >= 1% blasts), the last blasts assessment, and the last contact or disposition:

    43 in remission, alive at the cut     (DOR censored at the last visit)
     5 in remission, then off study       (2 withdrawn, 3 lost; DOR censored)
    18 relapsed, alive                    (DOR event)
     9 relapsed, died of the disease      (DOR event; follow-up censored at death)
     9 refractory, alive / 9 refractory, died / 1 refractory, withdrawn

So 75 respond and 48 neither relapse nor die, for any seed. Kaplan-Meier medians depend
only on the order of the times, their event flags, and the time at which the curve first
reaches 0.5. The design fixes all three: durations of remission lie on a grid (censored
ones from the alive patients' last visits, 88-640 days after infusion; 27 relapses
mostly early, a few late); the curve first reaches 0.5 at the 24th relapse (S 0.5435 ->
0.4831, 9 at risk), and that relapse is placed at 542 days = 17.81 months, between
neighbours at 535 and 547 days. For the reverse Kaplan-Meier of follow-up (death
censors, any other end is the event), the curve first reaches 0.5 at a relapsed patient
last seen on day 393 = 12.91 months (S 0.5092 -> 0.4955, 37 at risk; neighbours 390 and
398). Those instants are exact offsets from the infusion, so every seed gives the same
medians.

The seed draws everything else: calendar dates (each patient alive at the cut was last
seen 1 to 27 days before it, so enrolment spans ~18 months), sites, patient ids in screening
order, lab values, bedside readings, report delays, arrival order, and which patient gets
which of the fixed toxicity and response profiles. Toxicities are drawn without
replacement from fixed multisets (`CRS_GRADES`, `CRS_ONSET_DAYS`, ...), so counts, rates
and the medians are seed-independent up to the +/- 6 h (onset) and +/- 4 h (duration)
jitter of the instant: CRS 85/94 (0.904), grade >= 3 23/94 (0.245), median onset day
5.0 +/- 0.25, median duration 8.0 +/- 0.17; ICANS 56/94 (0.596), grade >= 3 23/94
(0.245). Durations are handed out in grade order (worse CRS lasts longer); ICANS goes
preferentially to patients with worse CRS and starts 1-4 days after it. Every episode
resolves by day ~37, before any disposition (day >= 55) or last contact (day >= 88).
Best response: 52 CR (ANC >= 1.0 and PLT >= 100 within 3 days of the marrow), 23 CRi;
70 MRD-negative. Deaths (18) are from progressive disease only; no CRS or ICANS is grade 5.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cartwatch.streams.devtools.simulator_patients import (
    DAY,
    HOUR,
    Course,
    End,
    PatientPlan,
    Site,
    ToxicityPlan,
    patient_events,
)

DEFAULT_SEED = 2026
DEFAULT_TRIAL = "CART19-ALL-01"
DATA_CUT = datetime(2026, 1, 31, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
ENROLMENT_DAYS = 660  # earliest infusion, days before the cut (non-survivors)
SITES = (
    Site("S01", 1, "mg/L", "ng/mL", "10^9/L"),
    Site("S02", 0, "mg/dL", "ug/L", "10^9/L"),
    Site("S03", -5, "mg/L", "µg/L", "K/uL"),
    Site("S04", 2, "mg/dL", "ng/mL", "10^3/uL"),
)

# The course design, in days (see the module docstring). Do not edit one number without
# re-checking the two Kaplan-Meier crossings: tests/unit/test_simulator.py does.
ONGOING_LAST_CONTACT = [round(88 + (640 - 88) * i / 42) for i in range(43)]
# (remission onset to last assessment, then days to the disposition, status)
OFF_STUDY: list[tuple[int, int, End]] = [
    (120, 14, "withdrawn"),
    (200, 30, "lost_to_follow_up"),
    (280, 45, "lost_to_follow_up"),
    (380, 21, "withdrawn"),
    (470, 35, "lost_to_follow_up"),
]
# (remission onset to relapse, infusion to last contact); 542 is the median DOR.
RELAPSED_ALIVE = [
    (35, 150), (55, 200), (70, 240), (86, 270), (105, 300), (128, 330), (155, 360),
    (190, 393), (235, 440), (290, 470), (330, 500), (380, 520), (430, 560), (480, 580),
    (510, 600), (542, 620), (570, 630), (600, 652),
]  # fmt: skip
# (remission onset to relapse, relapse to death)
RELAPSED_DIED = [
    (45, 60), (62, 75), (78, 90), (95, 120), (115, 100), (140, 150), (170, 90),
    (210, 130), (260, 110),
]  # fmt: skip
REFRACTORY_ALIVE = [120, 180, 240, 300, 360, 420, 480, 540, 600]  # last contact
REFRACTORY_DIED = [55, 75, 95, 120, 150, 185, 220, 265, 320]  # death
REFRACTORY_WITHDRAWN = [60]
N_SCREEN_FAILURES = 4

# Toxicity multisets, {value: patients}. CRS: 85 any, 23 grade >= 3; ICANS: 56, 23.
CRS_GRADES = {0: 9, 1: 34, 2: 28, 3: 17, 4: 6}
CRS_ONSET_DAYS = {1: 6, 2: 9, 3: 10, 4: 12, 5: 12, 6: 10, 7: 8, 8: 6, 9: 4, 10: 3, 11: 2, 12: 2}
CRS_ONSET_DAYS |= {13: 1}  # 85 onsets; the 43rd is on day 5
CRS_DURATION_DAYS = {3: 4, 4: 6, 5: 8, 6: 9, 7: 10, 8: 10, 9: 9, 10: 8, 11: 6, 12: 5}
CRS_DURATION_DAYS |= {14: 4, 16: 3, 19: 2, 23: 1}  # 85 durations; the 43rd is 8 days
ICANS_GRADES = {0: 29, 1: 18, 2: 15, 3: 17, 4: 6}  # over the 85 with CRS
ICANS_DURATION_DAYS = {1: 3, 2: 5, 3: 7, 4: 7, 5: 5, 6: 6, 7: 6, 8: 5, 10: 4, 12: 4, 14: 3}
ICANS_DURATION_DAYS |= {18: 1}  # 56 durations; median 6 days
N_CR, N_MRD_NEGATIVE = 52, 70  # of the 75 responders


@dataclass(frozen=True)
class SimulatedTrial:
    """Every message of one simulated trial, in arrival order."""

    trial_id: str
    seed: int
    data_cut: datetime
    plans: list[PatientPlan]
    arrivals: list[dict | bytes]  # a dict is a valid event; bytes an invalid line

    @cached_property
    def events(self) -> list[dict]:
        """The valid messages (duplicates included), in arrival order."""
        return [a for a in self.arrivals if isinstance(a, dict)]

    @cached_property
    def invalid(self) -> list[bytes]:
        """The deliberately invalid lines, in arrival order."""
        return [a for a in self.arrivals if isinstance(a, bytes)]

    def lines(self) -> Iterator[bytes]:
        """One UTF-8 JSON line per message (no newline), invalid ones as their raw bytes."""
        for message in self.arrivals:
            yield message if isinstance(message, bytes) else encode(message)


def encode(event: dict) -> bytes:
    """The wire form of one event."""
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def simulate_trial(seed: int = DEFAULT_SEED, trial_id: str = DEFAULT_TRIAL) -> SimulatedTrial:
    """The calibrated synthetic trial for `seed` (see the module docstring)."""
    rng = random.Random(seed)
    plans = plan_patients(rng)
    written = [event for plan in plans for event in patient_events(plan, trial_id, rng)]
    keyed = _arrival_keys(written, rng)
    keyed += _duplicates(keyed, rng)
    keyed += _invalid_messages(keyed, rng)
    keyed.sort(key=lambda pair: pair[0])
    return SimulatedTrial(trial_id, seed, DATA_CUT, plans, [message for _, message in keyed])


def _marrow_day(slot: int) -> int:
    """The response marrow falls on day 26-31 (the protocol's day-28 window)."""
    return 26 + (7 * slot) % 6


def design_courses() -> list[Course]:
    """The 94 infused courses; seed-independent (see the module docstring)."""
    out: list[Course] = []
    for last in ONGOING_LAST_CONTACT:
        out.append(Course(_marrow_day(len(out)), True, end_day=last))
    for censor, after, status in OFF_STUDY:
        m = _marrow_day(len(out))
        off = m + censor
        out.append(Course(m, True, last_visit_day=off, end=status, end_day=off + after))
    for relapse, last in RELAPSED_ALIVE:
        m = _marrow_day(len(out))
        out.append(Course(m, True, relapse_day=m + relapse, end_day=last))
    for relapse, survival in RELAPSED_DIED:
        m = _marrow_day(len(out))
        out.append(Course(m, True, m + relapse, None, "death", m + relapse + survival))
    for last in REFRACTORY_ALIVE:
        out.append(Course(_marrow_day(len(out)), False, end_day=last))
    for death in REFRACTORY_DIED:
        out.append(Course(_marrow_day(len(out)), False, end="death", end_day=death))
    for day in REFRACTORY_WITHDRAWN:
        out.append(Course(_marrow_day(len(out)), False, end="withdrawn", end_day=day))
    return out


def plan_patients(rng: random.Random) -> list[PatientPlan]:
    """Every screened patient's plan, with ids in screening order within each site."""
    courses = design_courses()
    crs, icans = _toxicities(rng, len(courses))
    responses = _responses(rng, sum(c.responder for c in courses))
    plans = []
    for i, course in enumerate(courses):
        site = rng.choice(SITES)
        t0 = _infusion_time(course, site, rng)
        response, mrd_negative = responses.pop() if course.responder else (None, False)
        screened = t0 - rng.randint(21, 42) * DAY - rng.randint(1, 3) * HOUR
        plans.append(
            PatientPlan(
                "",
                site,
                screened,
                t0,
                course,
                response=response,
                mrd_negative=mrd_negative,
                crs=crs.get(i),
                icans=icans.get(i),
            )
        )
    plans += _screen_failures(rng)
    return _number(_mark_erroneous_report(plans, rng))


def _infusion_time(course: Course, site: Site, rng: random.Random) -> datetime:
    """Alive at the cut: last seen 1-27 days before it; otherwise any date that fits."""
    if course.end == "alive":
        days_before_cut = course.end_day + rng.randint(1, 27)
    else:
        earliest = course.end_day + 20
        days_before_cut = rng.randint(earliest, max(earliest, ENROLMENT_DAYS))
    # Between 09:00 and 15:00 site time, on whole minutes, the day before that date.
    local_clock = rng.randint(9 * 60, 15 * 60) * MINUTE - site.utc_offset_hours * HOUR
    return DATA_CUT - (days_before_cut + 1) * DAY + local_clock


def _screen_failures(rng: random.Random) -> list[PatientPlan]:
    """Screened, never infused; the first withdraws consent."""
    return [
        PatientPlan(
            "",
            rng.choice(SITES),
            DATA_CUT - rng.randint(120, ENROLMENT_DAYS) * DAY - rng.randint(0, 600) * MINUTE,
            screen_withdrawal=i == 0,
        )
        for i in range(N_SCREEN_FAILURES)
    ]


def _number(plans: list[PatientPlan]) -> list[PatientPlan]:
    """Patient ids `<site>-<nnnn>`, numbered in screening order within each site."""
    counters = dict.fromkeys((s.code for s in SITES), 0)
    out = []
    for plan in sorted(plans, key=lambda p: p.screened_at):
        counters[plan.site.code] += 1
        out.append(replace(plan, patient_id=f"{plan.site.code}-{counters[plan.site.code]:04d}"))
    return out


def _mark_erroneous_report(plans: list[PatientPlan], rng: random.Random) -> list[PatientPlan]:
    """One infused patient without ICANS gets an ICANS report later entered in error."""
    candidates = [i for i, p in enumerate(plans) if p.t0 is not None and p.icans is None]
    chosen = rng.choice(candidates)
    plans[chosen] = replace(plans[chosen], erroneous_report=True)
    return plans


def _expand(counts: dict[int, int]) -> list[int]:
    """A multiset {value: count} as a sorted list."""
    return [value for value, count in sorted(counts.items()) for _ in range(count)]


def _jittered(days: int, hours: float, rng: random.Random) -> timedelta:
    return days * DAY + rng.uniform(-hours, hours) * HOUR


def _toxicities(
    rng: random.Random, n: int
) -> tuple[dict[int, ToxicityPlan], dict[int, ToxicityPlan]]:
    """CRS and ICANS by infusion slot, drawn without replacement from the multisets."""
    grades = _expand(CRS_GRADES)
    rng.shuffle(grades)
    onsets = _expand(CRS_ONSET_DAYS)
    rng.shuffle(onsets)
    with_crs = [i for i in range(n) if grades[i]]
    durations = _durations_by_grade(with_crs, grades, CRS_DURATION_DAYS, rng)
    crs = {
        i: ToxicityPlan(grades[i], _jittered(onset, 6, rng), _jittered(durations[i], 4, rng))
        for i, onset in zip(with_crs, onsets, strict=True)
    }
    # ICANS follows CRS, more often after severe CRS, and worse when CRS was worse.
    ranked = sorted(with_crs, key=lambda i: grades[i] + rng.uniform(0, 2.5), reverse=True)
    icans_grades = dict(zip(ranked, sorted(_expand(ICANS_GRADES), reverse=True), strict=True))
    with_icans = [i for i in with_crs if icans_grades[i]]
    durations = _durations_by_grade(with_icans, icans_grades, ICANS_DURATION_DAYS, rng)
    icans = {
        i: ToxicityPlan(
            icans_grades[i],
            crs[i].onset + _jittered(rng.randint(1, 4), 3, rng),
            _jittered(durations[i], 4, rng),
        )
        for i in with_icans
    }
    return crs, icans


def _durations_by_grade(
    patients: list[int], grades: dict[int, int] | list[int], days: dict[int, int], rng
) -> dict[int, int]:
    """Sorted durations handed out in grade order (random order within a grade)."""
    by_grade = sorted(patients, key=lambda i: (grades[i], rng.random()))
    return dict(zip(by_grade, _expand(days), strict=True))


def _responses(rng: random.Random, n: int) -> list[tuple[str, bool]]:
    """(best response, MRD-negative) for each responder, drawn without replacement."""
    best = ["CR"] * N_CR + ["CRi"] * (n - N_CR)
    mrd = [True] * N_MRD_NEGATIVE + [False] * (n - N_MRD_NEGATIVE)
    rng.shuffle(best)
    rng.shuffle(mrd)
    return list(zip(best, mrd, strict=True))


def _arrival_keys(events: list[dict], rng: random.Random) -> list[tuple[float, dict | bytes]]:
    """Arrival = event time + 1 min-3 h; about 0.5% arrive 1-6 days late."""
    keyed: list[tuple[float, dict | bytes]] = []
    for event in events:
        delay = rng.uniform(60, 3 * 3600)
        if rng.random() < 0.005:
            delay += rng.uniform(1, 6) * 86400
        keyed.append((datetime.fromisoformat(event["occurred_at"]).timestamp() + delay, event))
    return keyed


def _duplicates(keyed: list, rng: random.Random) -> list[tuple[float, dict | bytes]]:
    """Six exact re-sends, and three cytokine results re-sent later with another value."""
    out: list[tuple[float, dict | bytes]] = []
    for key, event in rng.sample(keyed, 6):
        out.append((key + rng.uniform(60, 2 * 86400), event))
    cytokines = [(k, e) for k, e in keyed if e["type"] == "lab" and e["analyte"] in ("IL6", "IFNG")]
    for key, event in rng.sample(cytokines, 3):
        changed = {**event, "value": round(event["value"] * rng.uniform(1.05, 1.3), 1)}
        out.append((key + rng.uniform(3600, 86400), changed))
    return out


# One line for each way a message can break the contract (CONTRACT 1).
BREAKAGES: dict[str, Callable[[dict], dict]] = {
    "not JSON": lambda e: e,  # the line is cut in half
    "timestamp without offset": lambda e: {**e, "occurred_at": e["occurred_at"][:19]},
    "unknown analyte": lambda e: {**e, "analyte": "IL2R", "unit": "U/mL"},
    "unit not accepted": lambda e: {**e, "unit": "mg/mL"},
    "value as a string": lambda e: {**e, "value": str(e["value"])},
}


def _invalid_messages(keyed: list, rng: random.Random) -> list[tuple[float, dict | bytes]]:
    """One line per breakage, next to a real CRP result of a real patient."""
    labs = [(k, e) for k, e in keyed if e["type"] == "lab" and e["analyte"] == "CRP"]
    picked = rng.sample(labs, len(BREAKAGES))
    out: list[tuple[float, dict | bytes]] = []
    for n, ((key, event), (name, breakage)) in enumerate(
        zip(picked, BREAKAGES.items(), strict=True), 1
    ):
        plain = {k: v for k, v in event.items() if k != "loinc"}
        raw = encode(breakage({**plain, "event_id": f"{event['event_id']}-bad{n}"}))
        if name == "not JSON":
            raw = raw[: len(raw) // 2]
        out.append((key + rng.uniform(1, 600), raw))
    return out
