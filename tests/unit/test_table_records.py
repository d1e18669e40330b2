"""Patient records in the global table (streams.tables.TableRecords): a commit is owned at
once, in the table's data once confirmed (its changelog records acknowledged), and undone
by a roll-back until then."""

from __future__ import annotations

from pathlib import Path

from models.record_codec import decode_record
from streams.app import Worker
from streams.pipeline import record_key
from streams.settings import Settings
from tests.unit.builders import at, crs, infusion, record_of

P1, P2 = record_key("T1", "P1"), record_key("T1", "P2")


def _store(tmp_path: Path):
    return Worker(Settings(embedded_broker=False, data_dir=str(tmp_path))).store


def test_a_commit_is_read_at_once_and_reaches_the_table_data_when_confirmed(tmp_path: Path):
    store = _store(tmp_path)
    store[P1] = record_of(infusion(at(0)))
    writes = store.commit({P1: 3})

    assert [w.partition for w in writes] == [3]
    assert store.read(P1) is not None and P1 not in store.table.data
    assert [r.patient_id for r in store.all()] == ["P1"] and len(store) == 1 and list(store) == [P1]
    store.confirm()
    assert decode_record(store.table.data[P1]).to_dict() == store.read(P1).to_dict()
    assert len(store) == 1 and list(store) == [P1]


def test_a_roll_back_undoes_every_unconfirmed_commit_and_keeps_the_confirmed(tmp_path: Path):
    store = _store(tmp_path)
    store[P1] = record_of(infusion(at(0)))
    store.commit({P1: 3})
    store.confirm()
    confirmed = store.read(P1)

    store[P1] = record_of(infusion(at(0)), crs(2, at(1)))  # a later batch changes P1
    store[P2] = record_of(infusion(at(0), patient="P2"))  # and adds P2
    store.commit({P1: 3, P2: 3})
    store[P1] = record_of(infusion(at(0)), crs(2, at(1)), crs(3, at(2)))  # and the next one
    store.commit({P1: 3})
    store[P2] = record_of(infusion(at(0), patient="P2"), crs(1, at(1), patient="P2"))  # pending
    assert len(store.read(P1).seen) == 3

    store.roll_back()
    assert store.read(P1) is confirmed
    assert store.read(P2) is None and P2 not in store.pending
    assert [r.patient_id for r in store.all()] == ["P1"] and len(store) == 1


def test_confirmations_come_oldest_first(tmp_path: Path):
    store = _store(tmp_path)
    store[P1] = record_of(infusion(at(0)))
    store.commit({P1: 3})
    first = store.read(P1)
    store[P1] = record_of(infusion(at(0)), crs(2, at(1)))
    store.commit({P1: 3})

    store.confirm()  # the first commit's bytes, though the second is already owned
    assert len(decode_record(store.table.data[P1]).seen) == len(first.seen) == 1
    store.confirm()
    assert len(decode_record(store.table.data[P1]).seen) == 2
