"""The compact digest -> owner map behaves as the dict it replaces (`dict.setdefault`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cartwatch.models import digest_owners
from cartwatch.models.digest_owners import DigestOwners

digests = st.one_of(st.integers(0, 40), st.integers(2**63 - 3, 2**63 + 3), st.just(2**64 - 1))
keys = st.sampled_from(["T1:P1", "T1:P2", "T2:P1"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("setdefault"), digests, keys),
        st.tuples(st.just("claim"), st.lists(digests, max_size=8), keys),
        st.tuples(st.just("clear"), st.none(), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=operations, merge_at=st.sampled_from([1, 2, 5, 4096]))
def test_it_answers_as_a_dict_does(ops, merge_at):
    original = digest_owners.MERGE_AT_LEAST
    digest_owners.MERGE_AT_LEAST = merge_at  # merges as often as every digest
    try:
        owners, oracle = DigestOwners(), {}
        for op, arg, key in ops:
            if op == "setdefault":
                assert owners.setdefault(arg, key) == oracle.setdefault(arg, key)
            elif op == "claim":
                owners.claim(arg, key)
                for digest in arg:
                    oracle.setdefault(digest, key)
            else:
                owners.clear()
                oracle.clear()
            assert len(owners) == len(oracle)
        for digest in range(45):
            assert owners.get(digest) == oracle.get(digest)
            assert (digest in owners) == (digest in oracle)
        for digest in (2**63 - 3, 2**63, 2**63 + 3, 2**64 - 1):
            assert owners.get(digest) == oracle.get(digest)
    finally:
        digest_owners.MERGE_AT_LEAST = original


def test_a_million_digests_take_about_twelve_bytes_each():
    owners = DigestOwners()
    for patient in range(10_000):
        owners.claim(range(patient * 100, patient * 100 + 100), f"T1:P{patient}")
    assert owners.setdefault(5, "T9:P9") == "T1:P0"
    held = owners._digests.nbytes + owners._owners.nbytes
    assert len(owners) == 1_000_000 and held == 12 * 1_000_000
