"""Test helper: small, valid Kafka record batch v2 byte strings.

The records section is opaque filler (the log never looks inside), but the header is complete
and the CRC-32C is right, so recovery's validation accepts these batches and catches any byte
flipped in the CRC-covered part.
"""

from __future__ import annotations

import struct

import crc32c

from firth.wire.recordbatch import BatchHeader, parse_header

_HEADER = struct.Struct(">qiibIhiqqqhii")


def make_batch(
    records: int = 1,
    *,
    timestamp: int = 1_700_000_000_000,
    max_timestamp: int | None = None,
    payload_size: int = 20,
    fill: int = 0x61,
) -> tuple[bytearray, BatchHeader]:
    """A batch of `records` records (`payload_size` opaque bytes), baseOffset 0."""
    body = bytes([fill]) * payload_size
    last_delta = records - 1
    max_ts = timestamp if max_timestamp is None else max_timestamp
    batch_length = _HEADER.size - 12 + len(body)
    head = bytearray(
        _HEADER.pack(
            0, batch_length, 0, 2, 0, 0, last_delta, timestamp, max_ts, -1, -1, -1, records
        )
    )
    batch = head + body
    struct.pack_into(">I", batch, 17, crc32c.crc32c(memoryview(batch)[21:]))
    return batch, parse_header(batch)


class FakeClock:
    """Injected `Log` clock: milliseconds that only move when a test moves them."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms
