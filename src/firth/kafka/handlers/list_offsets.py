"""ListOffsets (2): earliest, latest, max-timestamp, and offset-for-timestamp lookups.

Special timestamps, as Kafka defines them: -1 latest (the high watermark), -2 earliest (the log
start offset), -3 the record with the largest timestamp (v7+), -4 earliest local (v8+; Firth has
no tiered storage, so it equals earliest), -5 earliest pending upload (v9+; nothing is ever
pending, so no offset). A timestamp >= 0 asks for the first record whose timestamp is at least
that; the log's time index finds the batch and this handler decodes that one batch to find the
record, so the answer is exact, not per batch.
"""

from __future__ import annotations

from typing import Any

from firth.kafka.handlers import handles
from firth.kafka.handlers.context import RequestContext
from firth.kafka.protocol.errors import ErrorCode
from firth.kafka.protocol.records import decode_batch
from firth.log import Log

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, EARLIEST_PENDING_UPLOAD = -1, -2, -3, -4, -5


def _first_at_or_after(log: Log, timestamp: int) -> tuple[int, int]:
    """(timestamp, offset) of the first record with timestamp >= `timestamp`, or (-1, -1)."""
    found = log.offset_for_timestamp(timestamp)
    if found is None:
        return -1, -1
    for header, data in log.batches(found.offset):
        if header.max_timestamp < timestamp:
            continue
        _, records = decode_batch(data)
        for record in records:
            record_ts = header.base_timestamp + record.timestamp_delta
            offset = header.base_offset + record.offset_delta
            if record_ts >= timestamp and offset >= log.log_start_offset:
                return record_ts, offset
    return -1, -1


def _max_timestamp(log: Log) -> tuple[int, int]:
    """(timestamp, offset) of the first record with the largest timestamp.

    The log knows which batch holds its largest timestamp without scanning; this decodes that
    one batch to name the record."""
    found = log.max_timestamp()
    if found is None:
        return -1, -1
    for header, data in log.batches(found.offset):
        _, records = decode_batch(data)
        for record in records:
            if header.base_timestamp + record.timestamp_delta == found.timestamp:
                return found.timestamp, header.base_offset + record.offset_delta
        break
    return found.timestamp, found.offset


def _lookup(log: Log, timestamp: int) -> tuple[int, int]:
    if timestamp == LATEST:
        return -1, log.log_end_offset
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, log.log_start_offset
    if timestamp == MAX_TIMESTAMP:
        return _max_timestamp(log)
    if timestamp == EARLIEST_PENDING_UPLOAD:
        return -1, -1
    return _first_at_or_after(log, timestamp)


@handles(2)
async def list_offsets(ctx: RequestContext) -> bytes:
    request = ctx.decode()
    catalog = ctx.broker.catalog
    topics: list[dict[str, Any]] = []
    for wanted_topic in request.topics:
        topic = catalog.topics.get(wanted_topic.name)
        partitions = []
        for wanted in wanted_topic.partitions:
            entry: dict[str, Any] = {
                "partition_index": wanted.partition_index,
                "error_code": 0,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": 0,
            }
            if topic is None or not 0 <= wanted.partition_index < len(topic.partitions):
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif wanted.timestamp < EARLIEST_PENDING_UPLOAD:
                entry["error_code"] = ErrorCode.INVALID_REQUEST
            else:
                log = topic.partitions[wanted.partition_index].log
                entry["timestamp"], entry["offset"] = _lookup(log, wanted.timestamp)
                if ctx.version == 0:
                    entry["old_style_offsets"] = [entry["offset"]]
            partitions.append(entry)
        topics.append({"name": wanted_topic.name, "partitions": partitions})
    return ctx.respond({"throttle_time": 0, "topics": topics})
