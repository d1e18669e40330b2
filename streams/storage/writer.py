"""`StorageWriter`: the stream's sink into the database, with back-pressure and retries.

The input path awaits `put(item)`; a bounded queue makes it wait when the database
falls behind (back-pressure instead of unbounded memory). One background thread takes
batches (up to `batch_size` items or `max_delay_s` seconds), applies them as idempotent
upserts in one transaction, and when that fails (PostgreSQL down, say) keeps the batch
and retries it with exponential backoff, forever: nothing put is ever dropped. Logs name
the error class only, never a parameter, so no patient identifier reaches them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time

from pydantic import SecretStr
from sqlalchemy import Engine

from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.errors import WriterClosed
from cartwatch.streams.storage.items import StorageItem
from cartwatch.streams.storage.upserts import write_batch

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.1
FLUSH_SLICE_S = 0.5


class StorageWriter:
    """Batches items from the stream into the database; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_pending: int = 10_000,
        batch_size: int = 500,
        max_delay_s: float = 0.1,
        max_backoff_s: float = 5.0,
        owns_engine: bool = False,
    ) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._queue: queue.Queue[StorageItem] = queue.Queue(maxsize=max_pending)
        self._batch_size = batch_size
        self._max_delay_s = max_delay_s
        self._max_backoff_s = max_backoff_s
        self._progress = threading.Condition()
        self._put = 0
        self._committed = 0
        self._flush_waiters = 0
        self._closing = threading.Event()
        self._abandon = threading.Event()
        self.healthy = True
        self.last_error: str | None = None
        self.retries = 0
        self._thread = threading.Thread(target=self._run, name="storage-writer", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, url: str | SecretStr, **options: object) -> StorageWriter:
        """A writer with its own engine for `url` (disposed on `close`)."""
        return cls(make_engine(url), owns_engine=True, **options)  # type: ignore[arg-type]

    @property
    def pending(self) -> int:
        """Items put but not yet committed."""
        return max(0, self._put - self._committed)

    @property
    def committed(self) -> int:
        """Items committed since the writer started."""
        return self._committed

    async def put(self, item: StorageItem) -> None:
        """Queue one item; waits (back-pressure) while the queue is full."""
        if self._closing.is_set():
            raise WriterClosed("the storage writer is closed")
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(self._queue.put, item)
        with self._progress:
            self._put += 1

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything put so far is committed (TimeoutError after `timeout`).

        The waiting thread checks back every `FLUSH_SLICE_S`: a flush cancelled while the
        database is away (SIGTERM) leaves no thread blocked for ever, which would hold the
        process at exit (asyncio waits for its executor's threads)."""
        count = self._put
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = FLUSH_SLICE_S if deadline is None else deadline - time.monotonic()
            try:
                await asyncio.to_thread(self.wait_committed, count, min(FLUSH_SLICE_S, left))
                return
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def wait_committed(self, count: int, timeout: float | None = None) -> None:
        """Block until `count` items in all are committed (TimeoutError after `timeout`)."""
        with self._progress:
            self._flush_waiters += 1  # the writer stops gathering and commits what it has
            try:
                if not self._progress.wait_for(lambda: self._committed >= count, timeout):
                    raise TimeoutError(f"{count - self._committed} items not yet committed")
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write what is queued and stop; False if the database did not take it in time."""
        self._closing.set()
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            self._abandon.set()
            log.error("storage writer closed with %d items not committed", self.pending)
        if self._owns_engine:
            self._engine.dispose()
        return done

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not self._write_until_committed(batch):
                return
            with self._progress:
                self._committed += len(batch)
                self._progress.notify_all()

    def _next_batch(self) -> list[StorageItem] | None:
        """The next batch; None once closing and nothing is left."""
        while True:
            try:
                batch = [self._queue.get(timeout=0.05)]
                break
            except queue.Empty:
                if self._closing.is_set():
                    return None
        # Gather more for up to max_delay_s, but not while someone waits in `flush` and the
        # queue is drained: they would wait out the delay for items that cannot come.
        deadline = time.monotonic() + self._max_delay_s
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if self._flush_waiters or left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(left, 0.005)))
            except queue.Empty:
                continue
        return batch

    def _write_until_committed(self, batch: list[StorageItem]) -> bool:
        """Commit the batch, retrying with capped exponential backoff; False if abandoned."""
        delay = FIRST_BACKOFF_S
        while True:
            try:
                with self._engine.begin() as conn:
                    write_batch(conn, batch)
            except Exception as exc:  # any failure keeps the batch: nothing is dropped
                self._failed(exc, len(batch), delay)
                if self._abandon.wait(delay):
                    return False
                delay = min(delay * 2, self._max_backoff_s)
                continue
            if not self.healthy:
                log.warning("storage writes resumed after %d retries", self.retries)
            self.healthy, self.last_error = True, None
            return True

    def _failed(self, exc: Exception, size: int, delay: float) -> None:
        # The class names only: messages and parameters can hold patient identifiers.
        cause = exc.__cause__ or getattr(exc, "orig", None)
        self.last_error = type(exc).__name__ + (f" ({type(cause).__name__})" if cause else "")
        self.healthy = False
        self.retries += 1
        log.warning(
            "storage write failed: %s; retrying %d items in %.1f s", self.last_error, size, delay
        )
