"""Produce (0): validate each partition's batch, append it, answer after the fsync for acks=all.

Validation is Kafka's (firth.kafka.protocol.records.validate_produce_records): one v2 batch per
partition, a correct CRC, baseOffset 0, count matching the offset delta, within the topic's
max.message.bytes, not a control batch. Then the idempotent-producer sequence rules
(firth.broker.producers) decide: append, answer a duplicate with its original offset, or refuse.

Appends happen synchronously, in request order, before the handler first awaits; only the
durability wait (acks=all) is asynchronous, and it is shared with every other writer by the
group commit. acks=1 answers once appended (the background flush syncs it within a second);
acks=0 gets no response at all, as in Kafka.
"""

from __future__ import annotations

import asyncio
import logging

from firth.broker.producers import ProducerStateError
from firth.kafka.handlers import handles
from firth.kafka.handlers.context import CloseConnection, RequestContext
from firth.kafka.protocol.errors import ErrorCode, KafkaError
from firth.kafka.protocol.produce import (
    PartitionProduceResult,
    decode_produce,
    encode_produce_response,
)
from firth.kafka.protocol.validation import validate_produce_records

logger = logging.getLogger(__name__)

ACKS_NONE, ACKS_LEADER, ACKS_ALL = 0, 1, -1


@handles(0)
async def produce(ctx: RequestContext) -> bytes | None:
    request = decode_produce(ctx.header, ctx.frame, ctx.body_offset)
    broker = ctx.broker
    catalog = broker.catalog
    acks = request.acks
    results: list[tuple[str, list[PartitionProduceResult]]] = []
    # (topic index, result index, future resolved when the append is on disk)
    durable: list[tuple[int, int, asyncio.Future[None]]] = []
    group_commit = broker.group_commit
    for topic_data in request.topics:
        topic = catalog.topics.get(topic_data.name)
        topic_results: list[PartitionProduceResult] = []
        for part in topic_data.partitions:
            if acks not in (ACKS_NONE, ACKS_LEADER, ACKS_ALL):
                topic_results.append(
                    PartitionProduceResult(part.index, ErrorCode.INVALID_REQUIRED_ACKS)
                )
                continue
            if topic is None or not 0 <= part.index < len(topic.partitions):
                topic_results.append(
                    PartitionProduceResult(part.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                )
                continue
            partition = topic.partitions[part.index]
            log = partition.log
            try:
                if part.records is None:
                    raise KafkaError(ErrorCode.INVALID_RECORD, "no records")
                header = validate_produce_records(
                    part.records, log.config.max_message_bytes, api_version=ctx.version
                )
                if header.is_transactional or request.transactional_id is not None:
                    raise KafkaError(
                        ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                        "transactions are not implemented in Firth yet",
                    )
                # A large request frame is a bytearray: patch its batch in place rather than
                # copy it; a small frame is immutable bytes and is copied.
                records = part.records
                batch = bytearray(records) if records.readonly else records
                base_offset, _duplicate = partition.append(batch, header)
            except KafkaError as exc:
                topic_results.append(
                    PartitionProduceResult(
                        part.index, int(exc.code), error_message=str(exc) or None
                    )
                )
                continue
            except ProducerStateError as exc:
                topic_results.append(
                    PartitionProduceResult(part.index, exc.code, error_message=str(exc))
                )
                continue
            topic_results.append(
                PartitionProduceResult(
                    part.index, 0, base_offset=base_offset, log_start_offset=log.log_start_offset
                )
            )
            if acks == ACKS_ALL:
                future = group_commit.durable_future(log, log.log_end_offset)
                if future is not None:
                    durable.append((len(results), len(topic_results) - 1, future))
            else:
                group_commit.mark_dirty(log)
        results.append((topic_data.name, topic_results))
    if durable:
        outcomes = await asyncio.gather(*(f for _, _, f in durable), return_exceptions=True)
        for (topic_index, result_index, _future), outcome in zip(durable, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.error("fsync failed: %s", outcome)
                old = results[topic_index][1][result_index]
                results[topic_index][1][result_index] = PartitionProduceResult(
                    old.index, ErrorCode.KAFKA_STORAGE_ERROR, error_message="fsync failed"
                )
    if acks == ACKS_NONE:
        failed = [r for _, topic_results in results for r in topic_results if r.error_code]
        if failed:
            # acks=0 gets no response, so the only way to tell the producer is to hang up.
            raise CloseConnection(
                f"acks=0 produce failed with error {failed[0].error_code}: {failed[0].error_message}"
            )
        return None
    return encode_produce_response(ctx.header, results)
