"""Fetch (1): whole stored batches, long-polled.

For each requested partition the log returns whole batches starting with the one that holds the
fetch offset (the client skips records before its offset inside that batch); records are never
decoded. Limits follow Kafka: `partition_max_bytes` per partition and `max_bytes` for the
response, except that the first batch found is returned whole even if larger (KIP-74), so a
consumer always makes progress.

Long poll: if fewer than `min_bytes` are available and `max_wait` has not passed, the handler
waits for an append to any requested partition (or the deadline, or a broker stop) and reads
again.

Fetch sessions (KIP-227) are not kept: every response carries session id 0, which tells the
client that no session was created, so it keeps sending full fetch requests.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from firth.broker.partition import Partition
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.errors import ErrorCode
from firth.kafka.protocol.fetch import (
    FetchPartitionResult,
    FetchTopicResult,
    encode_fetch_response,
)
from firth.log import OffsetOutOfRange

FETCH_SESSION_ID_NOT_FOUND = 70
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Upper bound on one response, whatever the client asks (fetch.max.bytes is 50 MiB in Kafka)."""


@dataclass(slots=True)
class _Wanted:
    topic_key: Any  # name (v4-12) or topic id (v13+)
    partition_index: int
    fetch_offset: int
    max_bytes: int
    partition: Partition | None
    error_code: int


def _resolve(
    ctx: RequestContext, request: Any
) -> list[tuple[Any, str, uuid.UUID | None, list[_Wanted]]]:
    catalog = ctx.broker.catalog
    by_id = ctx.version >= 13
    resolved = []
    for wanted_topic in request.topics:
        if by_id:
            topic = catalog.by_id.get(wanted_topic.topic_id)
            key = wanted_topic.topic_id
            missing_code = ErrorCode.UNKNOWN_TOPIC_ID
        else:
            topic = catalog.topics.get(wanted_topic.topic)
            key = wanted_topic.topic
            missing_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        name = topic.name if topic is not None else (key if not by_id else "")
        parts = []
        for wanted in wanted_topic.partitions:
            partition = None
            code = 0
            if topic is None:
                code = missing_code
            elif not 0 <= wanted.partition < len(topic.partitions):
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                partition = topic.partitions[wanted.partition]
            parts.append(
                _Wanted(
                    key,
                    wanted.partition,
                    wanted.fetch_offset,
                    wanted.partition_max_bytes,
                    partition,
                    code,
                )
            )
        resolved.append((key, name, topic.topic_id if topic else (key if by_id else None), parts))
    return resolved


def _read(
    resolved: list[tuple[Any, str, uuid.UUID | None, list[_Wanted]]], max_bytes: int
) -> tuple[list[FetchTopicResult], int, bool]:
    """One pass over the partitions. Returns (results, bytes read, any error)."""
    remaining = max_bytes
    total = 0
    any_error = False
    results = []
    for _key, name, topic_id, parts in resolved:
        partition_results = []
        for wanted in parts:
            result = FetchPartitionResult(
                index=wanted.partition_index, error_code=wanted.error_code
            )
            partition = wanted.partition
            if partition is None:
                any_error = True
                partition_results.append(result)
                continue
            log = partition.log
            result.high_watermark = log.log_end_offset
            result.last_stable_offset = log.log_end_offset
            result.log_start_offset = log.log_start_offset
            if wanted.max_bytes <= 0:
                result.error_code = ErrorCode.INVALID_FETCH_SIZE if wanted.max_bytes < 0 else 0
                result.records = b""
            elif remaining > 0 or total == 0:
                try:
                    data = log.read(wanted.fetch_offset, min(wanted.max_bytes, max(remaining, 1)))
                except OffsetOutOfRange:
                    result.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
                    any_error = True
                    result.records = b""
                else:
                    # File slices, not bytes: the server sends them with sendfile.
                    result.records = data.slices
                    total += data.size
                    remaining -= data.size
            else:
                result.records = b""
            partition_results.append(result)
        results.append(FetchTopicResult(name=name, partitions=partition_results, topic_id=topic_id))
    return results, total, any_error


@handles(1)
async def fetch(ctx: RequestContext) -> list[Any]:
    request = ctx.decode()
    session_id = getattr(request, "session_id", 0)
    if session_id != 0:
        return encode_fetch_response(ctx.header, 0, FETCH_SESSION_ID_NOT_FOUND, 0, [])
    max_bytes = min(getattr(request, "max_bytes", MAX_RESPONSE_BYTES), MAX_RESPONSE_BYTES)
    if max_bytes <= 0:
        max_bytes = MAX_RESPONSE_BYTES
    max_wait = max(0.0, request.max_wait.total_seconds())
    min_bytes = request.min_bytes
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    broker = ctx.broker
    while True:
        # Resolved again on every pass: a topic may be deleted while we wait.
        resolved = _resolve(ctx, request)
        results, total, any_error = _read(resolved, max_bytes)
        remaining_wait = deadline - loop.time()
        if total >= min_bytes or any_error or remaining_wait <= 0 or broker.stopping:
            break
        partitions = [w.partition for _, _, _, parts in resolved for w in parts if w.partition]
        if not partitions:
            break
        waiters = {partition.data_waiter(): partition for partition in partitions}
        try:
            await asyncio.wait(waiters, timeout=remaining_wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter, partition in waiters.items():
                if not waiter.done():
                    waiter.cancel()
                    partition.discard_waiter(waiter)
    return encode_fetch_response(ctx.header, 0, 0, 0, results)
