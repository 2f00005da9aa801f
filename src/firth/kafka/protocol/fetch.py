"""Hand-written Fetch response encoder (the consume hot path).

The response is returned as a list of buffers for `transport.writelines` (or `socket.sendmsg`):
the fixed parts are small `bytes`/`bytearray` pieces we build, and each partition's record data is
passed through untouched — `bytes`, `memoryview`, or a list of chunks, where a chunk may also be
any object with a `size` attribute (such as a log `FileSlice`) that the server sends with
`sendfile`. Megabytes of records are never concatenated. `b"".join(segments)` is the whole frame
when every chunk is a buffer.

Layout by version (v4-v11 legacy encodings; v12+ compact encodings and tagged fields [f]):

```
throttle_time_ms int32
error_code int16, session_id int32                     v7+
responses array of
  topic string (v4-v12) | topic_id uuid (v13+)
  partitions array of
    partition_index int32, error_code int16, high_watermark int64
    last_stable_offset int64
    log_start_offset int64                             v5+
    aborted_transactions nullable array of (producer_id int64, first_offset int64) [f tags]
    preferred_read_replica int32                       v11+
    records nullable bytes
    [f] tagged fields (diverging_epoch, current_leader, snapshot_id: never sent)
  [f] tagged fields
[f] tagged fields (node_endpoints v16+: never sent)
```
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from firth.kafka.protocol.codec import check_version
from firth.kafka.protocol.header import RequestHeader, encode_response_header
from firth.kafka.protocol.primitives import (
    EMPTY_TAGS,
    INT32,
    INT64,
    array_length,
    bytes_length,
    string,
)

FETCH_KEY = 1
_PARTITION_FIXED = struct.Struct(">ihqq")  # index, error_code, high_watermark, last_stable
_ABORTED = struct.Struct(">qq")
_TOP_V7 = struct.Struct(">ihi")  # throttle, error_code, session_id


class SizedChunk(Protocol):
    """A piece of record data the server sends itself (e.g. with sendfile)."""

    @property
    def size(self) -> int: ...


RecordData = bytes | bytearray | memoryview | Sequence[Any] | None


@dataclass(slots=True)
class FetchPartitionResult:
    """One partition of a Fetch response. `records` is not copied."""

    index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted_transactions: list[tuple[int, int]] | None = None
    """(producer_id, first_offset) pairs, for read_committed consumers."""
    preferred_read_replica: int = -1
    records: RecordData = None


@dataclass(slots=True)
class FetchTopicResult:
    """One topic of a Fetch response: named up to v12, by id from v13."""

    name: str
    partitions: list[FetchPartitionResult]
    topic_id: uuid.UUID | None = None


def chunk_size(chunk: Any) -> int:
    """Bytes in a record chunk: a buffer's length or a slice object's `size`."""
    if isinstance(chunk, bytes | bytearray | memoryview):
        return memoryview(chunk).nbytes
    return int(chunk.size)


def encode_fetch_response(
    header: RequestHeader,
    throttle_ms: int,
    error_code: int,
    session_id: int,
    topics: Sequence[FetchTopicResult],
) -> list[Any]:
    """The framed Fetch response as a list of buffers (and pass-through record chunks)."""
    version = header.api_version
    check_version(FETCH_KEY, version)
    flexible = version >= 12
    by_id = version >= 13
    out: list[Any] = []
    buf = bytearray(encode_response_header(header.correlation_id, header.response_header_version))
    if version >= 7:
        buf += _TOP_V7.pack(throttle_ms, error_code, session_id)
    else:
        buf += INT32.pack(throttle_ms)
    buf += array_length(len(topics), flexible)
    total = 0
    for topic in topics:
        if by_id:
            if topic.topic_id is None:
                raise ValueError(f"Fetch v{version} needs a topic id for {topic.name!r}")
            buf += topic.topic_id.bytes
        else:
            buf += string(topic.name, flexible)
        buf += array_length(len(topic.partitions), flexible)
        for part in topic.partitions:
            buf += _PARTITION_FIXED.pack(
                part.index, part.error_code, part.high_watermark, part.last_stable_offset
            )
            if version >= 5:
                buf += INT64.pack(part.log_start_offset)
            aborted = part.aborted_transactions
            buf += array_length(None if aborted is None else len(aborted), flexible)
            if aborted:
                for producer_id, first_offset in aborted:
                    buf += _ABORTED.pack(producer_id, first_offset)
                    if flexible:
                        buf += EMPTY_TAGS
            if version >= 11:
                buf += INT32.pack(part.preferred_read_replica)
            records = part.records
            if records is None:
                buf += bytes_length(None, flexible)
            elif isinstance(records, bytes | bytearray | memoryview):
                size = memoryview(records).nbytes
                buf += bytes_length(size, flexible)
                if size:
                    out.append(buf)
                    total += len(buf)
                    out.append(records)
                    total += size
                    buf = bytearray()
            else:
                size = sum(chunk_size(chunk) for chunk in records)
                buf += bytes_length(size, flexible)
                out.append(buf)
                total += len(buf)
                for chunk in records:
                    out.append(chunk)
                total += size
                buf = bytearray()
            if flexible:
                buf += EMPTY_TAGS
        if flexible:
            buf += EMPTY_TAGS
    if flexible:
        buf += EMPTY_TAGS
    out.append(buf)
    total += len(buf)
    out.insert(0, INT32.pack(total))
    return out
