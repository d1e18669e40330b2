"""The cohort figures of every trial kept as records change, from a small summary per patient.

`cohort.trial_report`, `on_study.on_study_by_days` and `add_outcomes` over every record
give the figures as of an instant; this module gives the same figures without holding or
walking the records. A patient's `PatientSummary` is derived once per version of their
record: the outcome counting every event, the first infusion while on study, and the
record's horizon (its latest instant that a cut at `as_of` compares against: an event, or
an adverse event's resolution). As of any instant at or after the horizon the record's
outcome is the one counting every event, so only the rare patients whose horizon is still
ahead (events dated in the future) are derived again as of each instant, from their
record.

Per trial, a report is computed again only when a summary of the trial changed (or one of
its patients is still ahead of the instant), from the kept outcomes, so it can be computed
off the event loop; the patients on study by days since first
infusion are counted by bisecting the sorted first infusions.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cartwatch.models.cohort import trial_report
from cartwatch.models.on_study import DAY_BUCKETS, ENDS_STUDY, _bucket_name, on_study_by_days
from cartwatch.models.outcomes import PatientOutcome, Toxicity, derive_outcome
from cartwatch.models.patient import PatientRecord

BUCKET_NAMES = tuple(map(_bucket_name, DAY_BUCKETS))
# The adverse-event terms `cohort.trial_report` reads (its safety section); a summary keeps
# only their toxicities.
REPORTED_TERMS = frozenset({"CRS", "ICANS"})


@dataclass(slots=True)
class PatientSummary:
    """What the cohort gauges need of one version of a patient's record."""

    data: object  # the stored version this summary is of (compared by identity)
    trial_id: str
    outcome: PatientOutcome | None  # every event counted (toxicities: REPORTED_TERMS only)
    on_study_t0: float | None  # first infusion, when infused and no ending disposition
    horizon: float  # from this instant on, `outcome` and `on_study_t0` hold as of any instant


def summarize(record: PatientRecord, data: object) -> PatientSummary:
    """The summary of `record`, stored as `data`."""
    times = [*record.event_times]
    times += [r.resolved for reports in record.adverse_events.values() for r in reports]
    horizon = max((t for t in times if t is not None), default=-math.inf)
    ended = any(status in ENDS_STUDY for _, status in record.dispositions)
    outcome = derive_outcome(record, None)
    if outcome is not None and outcome.toxicities:  # one string per term, not per patient
        kept = tuple(  # read only (`trial_report`): a tuple, () shared when none is kept
            Toxicity(sys.intern(t.term), t.grade, t.onset, t.resolved)
            for t in outcome.toxicities
            if t.term in REPORTED_TERMS
        )
        outcome = replace(outcome, toxicities=kept)  # type: ignore[arg-type]
    return PatientSummary(
        data=data,
        trial_id=sys.intern(record.trial_id),
        outcome=outcome,
        on_study_t0=None if ended or outcome is None else outcome.t0,  # the first infusion
        horizon=horizon,
    )


@dataclass
class _Trial:
    ahead: set[str] = field(default_factory=set)  # keys whose horizon is after `as_of`
    t0s: list[float] = field(default_factory=list)  # sorted on-study t0 of the others
    version: int = 0  # changes whenever a member or the split at `as_of` changes
    report: tuple[int, dict] | None = None  # (version, report) when none was ahead


class CohortFigures:
    """Every trial's report and patients on study, kept from per-patient summaries.

    `put(key, summary)` replaces a patient's summary (a new version of the record);
    `figures(as_of, decode)` gives, per trial, the trial report and the on-study
    counts as `trial_report`/`on_study_by_days` over every record give them as of `as_of`
    (`decode(summary.data)`: the record of a patient whose horizon is after `as_of`).
    """

    def __init__(self) -> None:
        self.trials: dict[str, _Trial] = {}
        self.summaries: dict[str, PatientSummary] = {}
        self.as_of = -math.inf  # the instant `t0s` and `ahead` are split at

    def __len__(self) -> int:
        return len(self.summaries)

    def get(self, key: str) -> PatientSummary | None:
        return self.summaries.get(key)

    def put(self, key: str, summary: PatientSummary) -> None:
        old = self.summaries.get(key)
        if old is not None:
            self._leave(key, old)
        self.summaries[key] = summary
        trial = self.trials.setdefault(summary.trial_id, _Trial())
        trial.version += 1
        if summary.horizon > self.as_of:
            trial.ahead.add(key)
        elif summary.on_study_t0 is not None:
            insort(trial.t0s, summary.on_study_t0)

    def _leave(self, key: str, old: PatientSummary) -> None:
        trial = self.trials[old.trial_id]
        trial.version += 1
        if key in trial.ahead:
            trial.ahead.discard(key)
        elif old.on_study_t0 is not None:
            del trial.t0s[bisect_left(trial.t0s, old.on_study_t0)]

    def _move_to(self, as_of: float) -> None:
        """Split every trial's patients at `as_of`: those whose horizon it has reached
        count from their summary."""
        if as_of < self.as_of:  # the clock went back: split again from scratch
            self.as_of = as_of
            for trial in self.trials.values():
                trial.t0s.clear()
                trial.ahead.clear()
                trial.version += 1
            for key, s in self.summaries.items():
                trial = self.trials[s.trial_id]
                if s.horizon > as_of:
                    trial.ahead.add(key)
                elif s.on_study_t0 is not None:
                    trial.t0s.append(s.on_study_t0)
            for trial in self.trials.values():
                trial.t0s.sort()
            return
        self.as_of = as_of
        for trial in self.trials.values():
            reached = [key for key in trial.ahead if self.summaries[key].horizon <= as_of]
            for key in reached:
                trial.ahead.discard(key)
                trial.version += 1
                t0 = self.summaries[key].on_study_t0
                if t0 is not None:
                    insort(trial.t0s, t0)

    def move_to(self, as_of: float) -> None:
        """Split every trial's patients at `as_of` (call before `trial_figures` at it)."""
        self._move_to(as_of)

    def report_inputs(
        self, trial_id: str, as_of: float, decode: Callable[[object], PatientRecord]
    ) -> tuple[dict | None, list[PatientOutcome], int, dict[str, int]]:
        """As of `as_of`, the instant of the last `move_to`: the trial's report when it is
        current, else None and the outcomes to compute it from (`trial_report`, then
        `keep_report` with the version given); and its patients on study by days bucket.
        `decode`: a stored version to its record, for the patients whose horizon is after
        `as_of`."""
        trial = self.trials[trial_id]
        ahead = {key: decode(self.summaries[key].data) for key in trial.ahead}
        counts = _on_study_counts(trial.t0s, as_of)
        for record in ahead.values():
            extra = on_study_by_days([record], as_of)[trial_id]
            counts = {b: n + extra[b] for b, n in counts.items()}
        if not ahead and trial.report is not None and trial.report[0] == trial.version:
            return trial.report[1], [], trial.version, counts
        outcomes = [
            o
            for key, s in self.summaries.items()
            if s.trial_id == trial_id
            if (o := derive_outcome(ahead[key], as_of) if key in ahead else s.outcome) is not None
        ]
        return None, outcomes, -1 if ahead else trial.version, counts

    def keep_report(self, trial_id: str, report: dict, version: int) -> None:
        """Keep the report computed from `report_inputs` of `version` (-1: not to keep)."""
        if version >= 0:
            self.trials[trial_id].report = (version, report)

    def trial_figures(
        self, trial_id: str, as_of: float, decode: Callable[[object], PatientRecord]
    ) -> tuple[dict, dict[str, int]]:
        """The trial's report and its patients on study by days bucket (`report_inputs`)."""
        report, outcomes, version, counts = self.report_inputs(trial_id, as_of, decode)
        if report is None:
            report = trial_report(trial_id, outcomes)
            self.keep_report(trial_id, report, version)
        return report, counts

    def figures(
        self, as_of: float, decode: Callable[[object], PatientRecord]
    ) -> tuple[dict[str, dict], dict[str, dict[str, int]]]:
        """(trial -> report, trial -> days bucket -> patients on study) as of `as_of`."""
        self._move_to(as_of)
        reports, on_study = {}, {}
        for trial_id in sorted(self.trials):
            reports[trial_id], on_study[trial_id] = self.trial_figures(trial_id, as_of, decode)
        return reports, on_study


def _on_study_counts(t0s: list[float], as_of: float) -> dict[str, int]:
    """Patients by days-since-infusion bucket, `t0s` sorted, each at or before `as_of`
    (days counted as `on_study_by_days` counts them)."""

    def minus_days(t0: float) -> int:
        return -int((as_of - t0) / 86400)  # non-decreasing in t0

    counts, total, below = {}, len(t0s), 0
    for name, (_, high) in zip(BUCKET_NAMES, DAY_BUCKETS, strict=True):
        if high is None:
            counts[name] = total - below
            continue
        within = total - bisect_left(t0s, -high, key=minus_days)  # days <= high
        counts[name] = within - below
        below = within
    return counts
