"""The gauges of /metrics that a timer refreshes: the consumer's and the open alerts' on
every tick, the trials' (cohort figures, stopping boundary, patients on study) when due.

The trial work grows with the number of patients and runs in the event loop between
batches: it waits until the pause since its last run is `GAUGE_PAUSE_FACTOR` times that
run's duration, so it never takes more than a fifth of the loop however large the trial
(the trial gauges lag instead), and it yields to the loop every `RECORDS_PER_STEP` records.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cartwatch.models.cohort import trial_report
from cartwatch.models.dlt import toxicity_status
from cartwatch.models.record_codec import decode_record
from cartwatch.models.stopping import StoppingConfig
from cartwatch.streams.storage.operations import open_alert_counts
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.trial_state import TrialState

GAUGE_PAUSE_FACTOR = 4  # pause after a trial-gauge refresh, in multiples of its duration
# Changed records read between two turns of the event loop (~0.35 ms each: parsed, their
# DLT course and cohort summary derived): a batch waits ~10-20 ms at a send meanwhile (25 ms
# with more a step put the alerts' p99 there).
RECORDS_PER_STEP = 50

log = logging.getLogger(__name__)


class GaugeRefresher:
    """Refreshes the gauges; `tick` is the timer's callback."""

    def __init__(
        self,
        metrics: Metrics,
        trial: TrialState,
        toxicity: StoppingConfig,
        consumer_lag: Callable[[], dict[tuple[str, int], int]],
        is_consuming: Callable[[], bool],
        writer: StorageWriter | None = None,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.trial = trial
        self.toxicity = toxicity
        self.consumer_lag = consumer_lag
        self.is_consuming = is_consuming
        self.writer = writer
        self.engine = engine  # the alerts table, for the open alerts of every worker
        self.clock = clock
        self._next_trial_refresh = 0.0  # on self.clock
        # trial -> (the monitor's version of its courses, as of, next evaluable time, status)
        self._statuses: dict[str, tuple[int, float, float, dict]] = {}

    async def tick(self) -> None:
        """The consumer gauges now; the trial gauges and the monitor's reload when due."""
        self.metrics.observe_consumer(self.consumer_lag(), self.is_consuming())
        failing = self.writer is not None and not self.writer.healthy
        self.metrics.database_writes_failing.set(1 if failing else 0)
        await self.refresh_open_alerts()
        started = self.clock()
        if started < self._next_trial_refresh:
            return
        await self.refresh_trials()
        self._next_trial_refresh = started + (self.clock() - started) * (1 + GAUGE_PAUSE_FACTOR)

    async def refresh_open_alerts(self) -> None:
        """Open alerts per trial and severity, from the database (in a thread): the same
        value on every worker, falling as soon as an acknowledgement is stored."""
        if self.engine is None:
            return
        try:
            counts = await asyncio.to_thread(open_alert_counts, self.engine)
        except SQLAlchemyError as exc:  # kept as they were; the writer's gauge shows the outage
            log.warning("open alerts not refreshed: %s", type(exc).__name__)
            return
        self.metrics.observe_open_alerts(counts)

    async def refresh_trials(self) -> None:
        """Every trial's gauges and the trial monitor, from the records changed since the
        last refresh.

        The records whose stored bytes changed are read `RECORDS_PER_STEP` at a time, each
        slice reloaded into the monitor and the cohort summaries in the step that reads it
        (a batch replaces records, it never changes one in place). Each trial's report is
        then computed again only when one of its summaries changed, the patients on study
        are counted from the sorted first infusions, and the boundary status is computed
        again only when the monitor's courses of the trial changed or the clock passed a
        patient's evaluable time.
        """
        trial = self.trial
        now = time.time()
        keys = list(trial.changed())
        if not keys:
            trial.reload([])
        for start in range(0, len(keys), RECORDS_PER_STEP):
            await asyncio.sleep(0)
            trial.reload(trial.read_changed(keys[start : start + RECORDS_PER_STEP]))
        figures, on_study = trial.figures, {}
        figures.move_to(now)
        for trial_id in sorted(figures.trials):
            await asyncio.sleep(0)
            report, outcomes, version, on_study[trial_id] = figures.report_inputs(
                trial_id, now, decode_record
            )
            if report is None:  # in a thread: ~50 ms for 7,000 patients, the loop goes on
                report = await asyncio.to_thread(trial_report, trial_id, outcomes)
                figures.keep_report(trial_id, report, version)
            self.metrics.observe_report(report)
            self.metrics.observe_boundary(trial_id, self._boundary(trial_id, now))
        self.metrics.observe_trial_operations(on_study)

    def _boundary(self, trial_id: str, now: float) -> dict:
        """`toxicity_status` of the monitor's courses of the trial as of `now`, computed again
        only when those courses changed or `now` reached a course's evaluable time."""
        monitor = self.trial.monitor
        version = monitor.version.get(trial_id, 0)
        cached = self._statuses.get(trial_id)
        if cached is not None:
            was_version, was_now, next_due, status = cached
            if was_version == version and was_now <= now < next_due:
                return status
        courses = list(monitor.courses.get(trial_id, {}).values())
        status = toxicity_status(courses, self.toxicity, now).to_dict()
        ahead = (course.evaluable_from(self.toxicity) for course in courses)
        next_due = min((at for at in ahead if at is not None and at > now), default=math.inf)
        self._statuses[trial_id] = (version, now, next_due, status)
        return status
