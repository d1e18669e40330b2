"""Pure helpers of `cartwatch bench`: percentiles, steady-state rates, targets and the table."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from rich.markup import escape
from rich.table import Table


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation as numpy's default); None if empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def rate_between(
    samples: Sequence[tuple[float, float]], total: float, low: float = 0.1, high: float = 0.9
) -> float:
    """Events/s between the last sample at or below `low` of `total` and the first at or
    above `high`.

    `samples` are (seconds, events done so far) in time order; timing from 10% to 90% leaves
    out the group join and start-up at one end and the drain of the last batches at the other.
    The count moves in steps (events are counted at checkpoints), so the two samples bracket
    the steps that cross 10% and 90%.
    """
    last = next(((t, n) for t, n in samples if n >= high * total), None)
    before = [(t, n) for t, n in samples if n <= low * total and last and t < last[0]]
    first = before[-1] if before else None
    if first is None or last is None or last[0] <= first[0]:
        raise ValueError(f"no samples span {low:.0%}-{high:.0%} of {total:g} events")
    return (last[1] - first[1]) / (last[0] - first[0])


def histogram_buckets(samples: Mapping[tuple[str, tuple], float], name: str) -> dict[float, float]:
    """{upper bound: cumulative count} of an unlabelled histogram in `/metrics` samples
    (`ApiClient.metric_samples`: (sample name, sorted labels) -> value)."""
    return {
        float(dict(labels)["le"]): value
        for (sample, labels), value in samples.items()
        if sample == f"{name}_bucket"
    }


def bucket_increase(before: Mapping[float, float], after: Mapping[float, float]) -> dict:
    """The observations between two readings of the same histogram, bucket by bucket."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile (0-1) of cumulative bucket counts, as Prometheus' histogram_quantile:
    linear within the bucket that holds the rank, from 0 below the first bound; a rank in
    the +Inf bucket gives the highest finite bound. None with no observation."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if not bounds or not math.isinf(bounds[-1]) or total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


_LOG_TIME = re.compile(r"^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3})\]")


def first_log_time(log: str, needle: str) -> float | None:
    """Epoch seconds of the first Faust log line containing `needle` (local time), or None."""
    for line in log.splitlines():
        match = _LOG_TIME.match(line)
        if match and needle in line:
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


@dataclass(frozen=True)
class Target:
    """One figure against its goal: `at_least` (higher is better) or `at_most`."""

    name: str
    value: float | None
    goal: float
    at_least: bool
    unit: str

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.goal if self.at_least else self.value <= self.goal


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:,.2f} {unit}"


def target_rows(targets: Sequence[Target]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, verdict) for each target, as printed."""
    rows = []
    for t in targets:
        goal = ("\u2265 " if t.at_least else "\u2264 ") + _number(t.goal, t.unit)
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t.met]
        rows.append((t.name, _number(t.value, t.unit), goal, verdict))
    return rows


def info_rows(figures: dict[str, tuple[float | None, str]]) -> list[tuple[str, str, str, str]]:
    """Rows for figures that have no target of their own (reported for context)."""
    return [(name, _number(value, unit), "", "") for name, (value, unit) in figures.items()]


def render_table(rows: Sequence[tuple[str, str, str, str]], title: str) -> Table:
    """A rich table of the rows; verdicts coloured."""
    table = Table(title=title)
    for column, justify in (("figure", "left"), ("measured", "right"), ("target", "right")):
        table.add_column(column, justify=justify)
    table.add_column("verdict")
    colour = {"met": "green", "NOT met": "red"}
    for name, value, goal, verdict in rows:
        style = colour.get(verdict)
        # Names hold brackets ("[trials]"), which rich would take for markup.
        cells = (escape(name), escape(value), escape(goal))
        table.add_row(*cells, f"[{style}]{verdict}[/]" if style else verdict)
    return table


_LINE_NUMBER = re.compile(r":\d+\)$")


def top_frames(
    collapsed: str, n: int = 15
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(self, inclusive) shares of samples per frame, from py-spy's raw (collapsed) output.

    Each line is `frame;frame;...;leaf count`; frames are grouped without their line number.
    """
    own: dict[str, float] = {}
    total_in: dict[str, float] = {}
    samples = 0.0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE_NUMBER.sub(")", f) for f in stack.split(";")]
        samples += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            total_in[frame] = total_in.get(frame, 0) + int(count)

    def ranked(counts: dict[str, float]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:n]
        return [(frame, count / samples) for frame, count in best]

    return (ranked(own), ranked(total_in)) if samples else ([], [])
