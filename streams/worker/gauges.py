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
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cartwatch.models.cohort import add_outcomes, trial_report
from cartwatch.models.dlt import toxicity_status
from cartwatch.models.on_study import on_study_by_days
from cartwatch.models.outcomes import PatientOutcome
from cartwatch.models.stopping import StoppingConfig
from cartwatch.streams.storage.operations import open_alert_counts
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.trial_state import RECORDS_PER_TURN, TrialState

GAUGE_PAUSE_FACTOR = 4  # pause after a trial-gauge refresh, in multiples of its duration
# Records whose outcome and on-study bucket are derived between two turns of the event loop
# (~60 µs each): a batch waits ~6 ms at each of its sends meanwhile (25 ms with 500 a step
# put the alerts' p99 there).
RECORDS_PER_STEP = 100

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
        """Every trial's gauges and the trial monitor, from one listing of the records.

        The listing and the monitor's reload are one step, so no batch changes records
        between them; the figures are then computed over that listing while batches go on
        (a batch replaces records, it never changes one in place). The boundary status comes
        from the monitor's courses, current after the reload.
        """
        store = self.trial.store
        await store.decode_all(RECORDS_PER_TURN)  # all bytes after a restart
        now = time.time()
        records = list(store.all())
        self.trial.reload(records)
        outcomes: dict[str, list[PatientOutcome]] = {}
        on_study: dict[str, dict[str, int]] = {}
        for start in range(0, len(records), RECORDS_PER_STEP):
            await asyncio.sleep(0)
            add_outcomes(outcomes, records[start : start + RECORDS_PER_STEP], now)
            on_study_by_days(records[start : start + RECORDS_PER_STEP], now, into=on_study)
        for trial in sorted(outcomes):
            await asyncio.sleep(0)
            self.metrics.observe_report(trial_report(trial, outcomes[trial]))
            courses = self.trial.monitor.courses.get(trial, {}).values()
            status = toxicity_status(courses, self.toxicity, now).to_dict()
            self.metrics.observe_boundary(trial, status)
        self.metrics.observe_trial_operations(on_study)
