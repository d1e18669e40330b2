"""Patients on study: infused, with no ending disposition, by days since first infusion."""

from __future__ import annotations

from collections.abc import Iterable

from cartwatch.models.patient import PatientRecord

# Days since first infusion: 0-7 the CRS window, 8-28 ICANS and the post-infusion monitoring
# period (FDA REMS, 4 weeks), 29-90 the response assessments, then follow-up.
DAY_BUCKETS = ((0, 7), (8, 28), (29, 90), (91, 180), (181, 365), (366, None))
# The dispositions that end a patient's time on study (CONTRACT 2, follow-up time).
ENDS_STUDY = frozenset({"death", "withdrawn", "lost_to_follow_up"})


def on_study_by_days(
    records: Iterable[PatientRecord], as_of: float, into: dict[str, dict[str, int]] | None = None
) -> dict[str, dict[str, int]]:
    """trial_id -> days bucket -> infused patients with no ending disposition at `as_of`
    (added to `into`, when given, so records can be counted a slice at a time)."""
    counts: dict[str, dict[str, int]] = {} if into is None else into
    for record in records:
        by_bucket = counts.setdefault(
            record.trial_id, dict.fromkeys(map(_bucket_name, DAY_BUCKETS), 0)
        )
        t0 = min((t for t in record.infusions if t <= as_of), default=None)
        ended = any(t <= as_of and status in ENDS_STUDY for t, status in record.dispositions)
        if t0 is not None and not ended:
            by_bucket[_bucket_name(_bucket_of((as_of - t0) / 86400))] += 1
    return counts


def _bucket_of(days: float) -> tuple[int, int | None]:
    whole = int(days)  # day 0 is the infusion day (CONTRACT 1)
    return next(b for b in DAY_BUCKETS if b[1] is None or whole <= b[1])


def _bucket_name(bucket: tuple[int, int | None]) -> str:
    low, high = bucket
    return f"{low}+" if high is None else f"{low}-{high}"
