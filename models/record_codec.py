"""The bytes a patient record is stored as in the table and its changelog.

Layout (version 2): the byte 0x02, the number n of accepted events (uint32, little-endian),
their n event digests (uint64 each, ascending), then the rest of `PatientRecord.to_dict()`
as zlib-compressed JSON. The digests are random bytes that would not compress; the rest is
mostly repeated keys and timestamps, which compress about fourfold. A record of the bench's
simulated trials takes about 1.7 KB this way against 6 KB as plain JSON (docs/BENCHMARKS.md).

Records written before this layout are plain JSON objects (Faust's json serializer); they
are still read, so a changelog written by an earlier version restores.
"""

from __future__ import annotations

import json
import struct
import zlib

from cartwatch.models.patient import PatientRecord

VERSION = 2
_HEADER = struct.Struct("<BI")
_LEVEL = 6  # zlib's default; level 1 is 6% larger for a tenth less time (measured on the bench)


class CorruptRecord(ValueError):
    """Stored bytes that are not a patient record."""


def encode_record(record: PatientRecord) -> bytes:
    """The stored form of a record."""
    rest = record.to_dict()
    digests = sorted(rest.pop("s"))
    body = zlib.compress(json.dumps(rest, separators=(",", ":")).encode(), _LEVEL)
    return _HEADER.pack(VERSION, len(digests)) + struct.pack(f"<{len(digests)}Q", *digests) + body


def decode_record(data: bytes) -> PatientRecord:
    """The record stored as `data` (this layout or the earlier plain JSON)."""
    if data[:1] == b"{":
        return PatientRecord.from_dict(json.loads(data))
    try:
        version, n = _HEADER.unpack_from(data)
        if version != VERSION:
            raise CorruptRecord(f"unknown patient record layout {version}")
        end = _HEADER.size + 8 * n
        rest = json.loads(zlib.decompress(data[end:]))
        rest["s"] = struct.unpack_from(f"<{n}Q", data, _HEADER.size)
    except (struct.error, zlib.error, ValueError) as exc:
        raise CorruptRecord(f"not a patient record: {exc}") from exc
    return PatientRecord.from_dict(rest)
