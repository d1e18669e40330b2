"""Which input records the consumer may hand to the agent: each partition's, in offset order.

`InputOrder` keeps, per input partition, the next offset to hand out. It starts at the
committed offset once Faust has sought there after an assignment (before that nothing of the
partition is handed out), and moves one offset per record handed out. A record below it was
handed out already (the position went back): dropped. A record above it means records in
between were pulled from the client and never handed out (Faust drops records when a
rebalance begins, for paused partitions, and during a seek): dropped, and the partition is
sought back to the next offset (`rewinds`). Only when the first record after that seek is
still above it do the offsets in between not exist (compacted, transaction markers, removed
by retention): the record is handed out and Faust records the gap. So the agent sees every
record of an owned partition once per read, in order, from the committed offset on, and
Faust never acknowledges an offset twice or past one it never handed out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from faust.types import TP

# How long a partition's commit may wait on an offset handed out and never acknowledged
# before that offset is read again (`held_back`): longer than a batch takes to be processed
# and acknowledged (well under a second here, a few under load), short enough that a worker
# whose offset was lost in a rebalance catches up within seconds instead of never.
HOLE_GRACE_S = 10.0


class InputOrder:
    """The next offset to hand out per input partition; see the module docstring."""

    def __init__(self) -> None:
        self.first: dict[TP, int] = {}  # where each partition started (after an assignment)
        self.next: dict[TP, int] = {}
        self.sought: dict[TP, int] = {}  # partitions sought back to `next`, seek completed
        self.rewinds: dict[TP, int] = {}  # partitions to seek back to `next`
        self.holes: dict[TP, tuple[int, float]] = {}  # offset a commit waits on, since when

    def restart(self, starts: Mapping[TP, int]) -> None:
        """The owned input partitions and their committed offsets, after a seek to them."""
        self.first = dict(starts)
        self.next = dict(starts)
        self.sought.clear()
        self.rewinds.clear()
        self.holes.clear()

    def forget(self, partitions: Iterable[TP]) -> None:
        """Partitions revoked: nothing of theirs is handed out until the next `restart`."""
        for tp in partitions:
            self.first.pop(tp, None)
            self.next.pop(tp, None)
            self.sought.pop(tp, None)
            self.rewinds.pop(tp, None)
            self.holes.pop(tp, None)

    def read_again(self, tp: TP, offset: int) -> None:
        """Hand the partition out again from `offset` (records not acknowledged)."""
        if tp in self.next and offset < self.next[tp]:
            self.next[tp] = offset
            self.sought.pop(tp, None)
            self.rewinds[tp] = offset

    def accept(self, tp: TP, offset: int) -> bool:
        """Whether to hand out the record at `offset`; a record skipped queues a rewind."""
        expected = self.next.get(tp)
        if expected is None or offset < expected:
            return False
        if offset == expected or self.sought.get(tp) == expected:
            self.next[tp] = offset + 1
            self.sought.pop(tp, None)
            return True
        self.rewinds[tp] = expected
        return False

    def take_rewinds(self) -> dict[TP, int]:
        """The seeks to make now; call `seek_done` once each is done."""
        rewinds, self.rewinds = self.rewinds, {}
        return rewinds

    def rewind_again(self, tp: TP, offset: int) -> None:
        """A seek back to `offset` failed: ask again at the next fetch (if still wanted)."""
        if self.next.get(tp) == offset:
            self.rewinds[tp] = offset

    def held_back(self, tp: TP, start: int, now: float) -> bool:
        """The commit of `tp` waits on `start`, which is not acknowledged. True, and `start`
        read again, once it has waited `HOLE_GRACE_S` while the partition was handed out past
        it: the record was handed out and lost on its way (a rebalance's seek overtaking a
        delivery, a stale committed offset), and would otherwise hold the commit for good.
        Reading it again is safe: the events after it come again and are duplicates."""
        if self.next.get(tp, start) <= start or tp in self.rewinds:
            self.holes.pop(tp, None)  # not handed out yet, or about to be read again
            return False
        offset, since = self.holes.setdefault(tp, (start, now))
        if offset != start:
            self.holes[tp] = (start, now)
            return False
        if now - since < HOLE_GRACE_S:
            return False
        del self.holes[tp]
        self.read_again(tp, start)
        return True

    def seek_done(self, tp: TP, offset: int) -> None:
        """A seek to `offset` completed: the next record of `tp` fetched comes from there."""
        if self.next.get(tp) == offset:
            self.sought[tp] = offset
