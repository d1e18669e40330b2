"""Input records are handed to the agent in offset order from the committed offset
(cartwatch.streams.kafka.input_order)."""

from __future__ import annotations

from faust.types import TP

from cartwatch.streams.kafka.input_order import HOLE_GRACE_S, InputOrder

LABS = TP("labs", 0)
AES = TP("adverse-events", 1)


def _started(**starts: int) -> InputOrder:
    order = InputOrder()
    order.restart({LABS: starts.get("labs", 151), AES: starts.get("aes", 7)})
    return order


def _handed(order: InputOrder, tp: TP, offsets: list[int]) -> list[int]:
    return [offset for offset in offsets if order.accept(tp, offset)]


def test_records_from_the_committed_offset_on_are_handed_out_in_order():
    order = _started()
    assert _handed(order, LABS, [151, 152, 153]) == [151, 152, 153]
    assert order.take_rewinds() == {}


def test_nothing_of_a_partition_is_handed_out_before_its_start_is_known():
    order = InputOrder()
    assert _handed(order, LABS, [151, 152]) == []
    assert order.take_rewinds() == {}  # Faust's seek to the committed offsets comes next


def test_records_below_the_next_offset_were_handed_out_already():
    order = _started()
    assert _handed(order, LABS, [151, 152]) == [151, 152]
    assert _handed(order, LABS, [150, 151, 152, 153]) == [153]  # the position went back
    assert order.take_rewinds() == {}


def test_a_jump_ahead_is_not_handed_out_and_the_partition_is_read_again_from_the_gap():
    order = _started()
    assert _handed(order, LABS, [151, 152, 2608, 2609]) == [151, 152]
    assert order.take_rewinds() == {LABS: 153}
    assert order.take_rewinds() == {}  # asked once


def test_a_jump_still_there_after_the_seek_back_is_a_real_gap():
    order = _started()
    _handed(order, LABS, [151, 160])
    order.seek_done(LABS, 152)
    assert _handed(order, LABS, [160, 161]) == [160, 161]  # offsets 152-159 do not exist
    assert _handed(order, LABS, [170]) == []  # the next jump is checked again
    assert order.take_rewinds() == {LABS: 162}


def test_after_the_seek_back_the_missing_records_come_in_order():
    order = _started()
    _handed(order, LABS, [151, 2608])
    order.seek_done(LABS, 152)
    assert _handed(order, LABS, [152, 153, 2608]) == [152, 153]  # 2608 is not next yet


def test_a_seek_done_for_an_older_offset_proves_nothing():
    order = _started()
    _handed(order, LABS, [151, 160])
    order.restart({LABS: 140, AES: 7})  # a rebalance meanwhile: from the committed offset
    order.seek_done(LABS, 152)
    assert _handed(order, LABS, [160]) == []


def test_partitions_are_kept_apart():
    order = _started()
    assert _handed(order, AES, [7, 8]) == [7, 8]
    assert _handed(order, LABS, [151]) == [151]
    assert _handed(order, AES, [12]) == []
    assert order.take_rewinds() == {AES: 9}


def test_a_revoked_partition_hands_out_nothing_until_it_is_started_again():
    order = _started()
    order.forget([LABS])
    assert _handed(order, LABS, [151, 152]) == []
    assert _handed(order, AES, [7]) == [7]
    order.restart({LABS: 151})
    assert _handed(order, LABS, [151]) == [151]
    assert _handed(order, AES, [8]) == []  # not owned after that rebalance


def test_a_failed_batch_is_handed_out_again_from_its_first_record():
    order = _started()
    _handed(order, LABS, [151, 152, 153, 154])
    order.read_again(LABS, 152)
    assert order.take_rewinds() == {LABS: 152}
    order.seek_done(LABS, 152)
    assert _handed(order, LABS, [152, 153, 154, 155]) == [152, 153, 154, 155]


def test_reading_again_ahead_of_what_was_handed_out_changes_nothing():
    order = _started()
    _handed(order, LABS, [151])
    order.read_again(LABS, 170)
    order.read_again(TP("labs", 3), 5)  # not owned
    assert order.take_rewinds() == {}
    assert _handed(order, LABS, [152]) == [152]


def test_a_failed_seek_back_is_asked_again_unless_the_partition_moved_on():
    order = _started()
    _handed(order, LABS, [151, 160])
    order.rewind_again(LABS, *order.take_rewinds().values())
    assert order.take_rewinds() == {LABS: 152}
    order.restart({LABS: 140})  # a rebalance: from the committed offset now
    order.rewind_again(LABS, 152)
    assert order.take_rewinds() == {}


def test_a_hole_below_the_records_handed_out_is_read_again_only_after_the_grace():
    order = InputOrder()
    order.restart({TP("labs", 0): 50})
    tp = TP("labs", 0)
    order.next[tp] = 60
    assert not order.held_back(tp, 50, now=0.0)
    assert not order.held_back(tp, 50, now=HOLE_GRACE_S - 0.1)
    assert order.held_back(tp, 50, now=HOLE_GRACE_S)
    assert order.next[tp] == 50 and order.take_rewinds() == {tp: 50}


def test_no_hole_is_chased_before_its_offset_is_handed_out():
    order = InputOrder()
    tp = TP("labs", 0)
    order.restart({tp: 50})  # next is 50: a failed batch's events are being read again
    assert not order.held_back(tp, 50, now=0.0)
    assert not order.held_back(tp, 50, now=HOLE_GRACE_S * 2)


def test_a_new_hole_starts_its_own_grace():
    order = InputOrder()
    tp = TP("labs", 0)
    order.restart({tp: 50})
    order.next[tp] = 60
    assert not order.held_back(tp, 50, now=0.0)
    assert not order.held_back(tp, 55, now=HOLE_GRACE_S)  # committed 55 meanwhile
    assert order.held_back(tp, 55, now=2 * HOLE_GRACE_S)
