"""Which record each accepted event's digest went to, in about 12 bytes per event.

A dict of int to str costs about 90 bytes per entry (the 64-bit int object alone is 36),
about 8 KB for a patient's ~90 events, five times the patient's stored record. This map
keeps the digests sorted in a numpy array (8 bytes each) beside the index of their owner
(4 bytes each) and the owners' keys once each; what is added since the last merge waits in
a small dict (claims of whole records in a flat array), merged in when it reaches a 64th of
the array (a quarter for claims): an insertion, O(n) bytes moved, a few milliseconds for
millions of digests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from itertools import repeat

import numpy as np

MERGE_AT_LEAST = 4096  # digests added before a merge, at the smallest
TRIM_FROM = 1 << 16  # digests held from which a merge hands freed memory back (malloc_trim)


def malloc_trim() -> None:
    """Hand the C heap's free pages back to the system (glibc only; elsewhere nothing).

    A merge's temporary arrays are a few times the map's size; glibc serves blocks of that
    size from its heap once such a block was freed (its mmap threshold rises), so without
    this the process would keep them resident after every large merge."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


class DigestOwners:
    """digest -> owner key, with `setdefault` semantics: the first owner stays."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._digests = np.empty(0, np.uint64)  # sorted, unique
        self._owners = np.empty(0, np.uint32)  # index into _keys, beside each digest
        self._view = memoryview(self._digests)
        self._recent: dict[int, int] = {}  # digest -> owner index, not yet merged
        # claims not yet merged, in order: their digests and each digest's owner index
        self._staged, self._staged_owners = array("Q"), array("I")

    def __len__(self) -> int:
        if self._staged:
            self._merge()
        return len(self._digests) + len(self._recent)

    def __contains__(self, digest: object) -> bool:
        return self.get(digest) is not None  # type: ignore[arg-type]

    def get(self, digest: int, default: str | None = None) -> str | None:
        if self._staged:
            self._merge()
        index = self._recent.get(digest)
        if index is None:
            index = self._merged(digest)
        return default if index is None else self._keys[index]

    def setdefault(self, digest: int, key: str) -> str:
        """The digest's owner, `key` when it had none."""
        if self._staged:
            self._merge()
        index = self._recent.get(digest)
        if index is None:
            index = self._merged(digest)
            if index is None:
                index = self._recent[digest] = self._owner_index(key)
                if len(self._recent) >= max(MERGE_AT_LEAST, len(self._digests) >> 6):
                    self._merge()
        return self._keys[index]

    def claim(self, digests: Iterable[int], key: str) -> None:
        """`setdefault(d, key)` for every digest d (merged when next read, or once a
        quarter of the map's size waits)."""
        staged, before = self._staged, len(self._staged)
        staged.extend(digests)
        if len(staged) > before:
            self._staged_owners.extend(repeat(self._owner_index(key), len(staged) - before))
            if len(staged) >= max(MERGE_AT_LEAST, len(self._digests) >> 2):
                self._merge()

    def _owner_index(self, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self._keys)
            self._keys.append(key)
        return index

    def _merged(self, digest: int) -> int | None:
        view = self._view
        i = bisect_left(view, digest)
        if i < len(view) and view[i] == digest:
            return int(self._owners[i])
        return None

    def _merge(self) -> None:
        """The recent digests, then the staged claims, into the sorted arrays (an earlier
        owner stays)."""
        digests, owners = [], []
        if self._recent:
            n = len(self._recent)
            digests.append(np.fromiter(self._recent.keys(), np.uint64, n))
            owners.append(np.fromiter(self._recent.values(), np.uint32, n))
        if self._staged:
            digests.append(np.frombuffer(self._staged, np.uint64))
            owners.append(np.frombuffer(self._staged_owners, np.uint32))
        if not digests:
            return
        new, first = np.unique(np.concatenate(digests), return_index=True)  # first owner
        new_owners = np.concatenate(owners)[first]
        base = self._digests
        at = np.searchsorted(base, new)
        if len(base):
            known = base[np.minimum(at, len(base) - 1)] == new
            new, new_owners, at = new[~known], new_owners[~known], at[~known]
        self._digests = np.insert(base, at, new)
        self._owners = np.insert(self._owners, at, new_owners)
        self._view = memoryview(self._digests)
        del digests, owners, new, new_owners, at, base
        self._recent, self._staged, self._staged_owners = {}, array("Q"), array("I")
        if len(self._digests) >= TRIM_FROM:
            malloc_trim()
